"""The dashboard in a real browser: Debian's chromium, driven headless by Playwright."""

from __future__ import annotations

import os
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
def offline_page(browser, url: str) -> Iterator:
    """A page at ``url``; on leaving, every request it made must have been answered by the service."""
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(url)
    yield page
    assert not failed, failed  # nothing from a CDN or the internet: Plotly and Swagger UI included
    page.close()


@pytest.mark.parametrize("token", ["", "audit-token"], ids=["public", "auditor"])
def test_the_dashboard_shows_the_main_charts(server: str, browser, token: str, tmp_path: Path) -> None:
    with offline_page(browser, f"{server}/?token={token}") as page:
        _check_dashboard(page, token, tmp_path)


def _check_dashboard(page, token: str, tmp_path: Path) -> None:
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)
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
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_the_api_docs_render_offline(server: str, browser) -> None:
    with offline_page(browser, f"{server}/docs") as page:
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_text_contents()
        assert any("/api/contracts/{name}/measures" in p for p in paths)
