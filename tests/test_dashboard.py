"""The dashboard in a real browser: Debian's chromium, driven headless by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from carecontract.service import Principal, Tokens, create_app
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without these, chromium on a closed network keeps trying to reach Google's services (Playwright adds
# --headless and a fresh profile itself)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CARECONTRACT_REQUIRE_BROWSER"):  # set by .ci/run, which installs chromium
        pytest.fail(f"no chromium at {CHROMIUM}: install Debian's chromium package", pytrace=False)
    pytest.skip("the dashboard test needs Debian's chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(paid_store: Path) -> Iterator[str]:
    tokens = Tokens({"audit-token": Principal("auditor")})
    app = create_app(paid_store, [load_terms(CANCER_TERMS)], tokens, stress_runs=300)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@contextmanager
def offline_page(browser, url: str, viewport: dict[str, int] | None = None) -> Iterator:
    """A page at ``url``; on leaving, every request it made must have been answered by the service,
    none with an error status (a missing /favicon.ico included), and the console must hold no error
    (a content-security-policy violation included)."""
    page = browser.new_page(viewport=viewport or {"width": 1280, "height": 800})
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "response",
        lambda response: failed.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    page.on("console", lambda message: failed.append(f"console: {message.text}") if message.type == "error" else None)
    page.goto(url)
    yield page
    assert not failed, failed  # nothing from a CDN or the internet: Plotly and Swagger UI included
    page.close()


def sign_in(page, token: str) -> None:
    """Type the token into the form, as a user does (never in the URL)."""
    if token:
        page.fill("#token", token)
        page.click("#apply")


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# every visible element of each card, with its box, that lies outside the card's box
OUTSIDE = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.card')) {
    const c = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
      if (r.left < c.left - 1 || r.right > c.right + 1 || r.top < c.top - 1 || r.bottom > c.bottom + 1) {
        const name = `<${el.tagName.toLowerCase()} class="${el.getAttribute('class') || ''}">`;
        out.push(`${card.querySelector('[id]')?.id}: ${name}` +
                 ` ${(el.textContent || '').slice(0, 30)} at ${Math.round(r.left)}..${Math.round(r.right)}` +
                 ` in ${Math.round(c.left)}..${Math.round(c.right)}`);
      }
    }
  }
  return out;
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
@pytest.mark.parametrize("token", ["", "audit-token"], ids=["public", "auditor"])
def test_the_dashboard_shows_the_main_charts(server: str, browser, token: str, viewport: str, tmp_path: Path) -> None:
    with offline_page(browser, f"{server}/", VIEWPORTS[viewport]) as page:
        sign_in(page, token)
        _check_dashboard(page, token, tmp_path)
        page.screenshot(path=str(tmp_path / f"dashboard-{viewport}.png"), full_page=True)
        assert page.evaluate(OUTSIDE) == []
        labels = page.locator("#chart-measures .xtick text").all_text_contents()
        assert labels and not [t for t in labels if "…" in t or "..." in t], labels  # no outcome label cut


def test_a_token_in_the_address_bar_is_dropped_not_used(server: str, browser) -> None:
    with offline_page(browser, f"{server}/?token=audit-token") as page:
        page.wait_for_function("() => document.querySelector('#role').textContent !== '…'", timeout=60_000)
        assert page.locator("#role").text_content() == "public"  # never read from the URL
        assert "token" not in page.url
        sign_in(page, "audit-token")
        page.wait_for_function("() => document.querySelector('#role').textContent === 'auditor'", timeout=60_000)
        stored = page.evaluate(
            "[sessionStorage.getItem('carecontract-token'), localStorage.getItem('carecontract-token')]"
        )
        assert stored == ["audit-token", None]  # this tab only, never kept across sessions
        assert page.locator("#token").input_value() == ""
        page.click("#forget")
        page.wait_for_function("() => document.querySelector('#role').textContent === 'public'", timeout=60_000)


def _check_dashboard(page, token: str, tmp_path: Path) -> None:
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)
    role = "auditor" if token else "public"
    page.wait_for_function(f"() => document.querySelector('#status').textContent.includes('as {role}')", timeout=60_000)
    titles = page.locator(".gtitle").all_text_contents()
    assert any("Where the money went" in t for t in titles)
    assert any("Outcomes with 95% intervals" in t for t in titles)
    assert any("deficit probability" in t for t in titles)
    assert page.locator("#accountability table tr").count() > 1
    status = page.locator("#status").text_content()
    assert ("suppressed" in status) == (token == ""), status
    assert page.locator("#role").text_content() == ("auditor" if token else "public")
    # the bars were drawn from data, not left empty
    assert page.locator("#chart-payments .bars path").count() > 0
    # the payment components (public and auditor see them): every row adds up; money by kind listed
    components = page.locator("#payment-components table.components tbody tr")
    assert components.count() > 0
    assert page.locator("#payment-components table.components tbody td", has_text=re.compile(r"^yes$")).count() > 0
    assert page.locator("#payment-components table.components tbody td", has_text=re.compile(r"^NO$")).count() == 0
    assert page.locator("#payment-components", has_text="NHS trusts").count() == 1
    _check_fair(page)


def _check_fair(page) -> None:
    """The fair-comparison block: a funnel of O/E with labelled limits and axis titles, and an SPC chart."""
    page.wait_for_function("() => document.querySelector('#fair-status').textContent !== ''", timeout=60_000)
    assert "error" not in (page.locator("#fair-status").inner_html() or ""), page.locator("#fair-status").text_content()
    funnel_titles = page.locator("#chart-fair-funnel .gtitle").all_text_contents()
    assert any("observed / expected" in t for t in funnel_titles), funnel_titles
    legend = page.locator("#chart-fair-funnel .legendtext").all_text_contents()
    assert {"95% limit", "99.8% limit", "O/E = 1"} <= set(legend), legend
    axes = page.locator("#chart-fair-funnel .xtitle, #chart-fair-funnel .ytitle").all_text_contents()
    assert axes == ["expected cases (for these patients)", "observed / expected"], axes
    assert any("XmR chart" in t for t in page.locator("#chart-fair-spc .gtitle").all_text_contents())
    spc_legend = set(page.locator("#chart-fair-spc .legendtext").all_text_contents())
    assert {"mean", "limits"} <= spc_legend, spc_legend
    ticks = page.locator("#chart-fair-spc .ytick text").all_text_contents()
    assert ticks and all(t.endswith("%") for t in ticks), ticks  # percent, as the tables show it


def test_the_api_docs_render_offline(server: str, browser) -> None:
    with offline_page(browser, f"{server}/docs") as page:
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_text_contents()
        assert any("/api/contracts/{name}/measures" in p for p in paths)
