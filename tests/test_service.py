"""The web service: every role sees what it is entitled to, and patient-level rows only their provider."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carecontract.publish.decisions import DecisionLog
from carecontract.service import ACCESS, Principal, Tokens, create_app
from carecontract.service.access import TokenFileError
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

TOKENS = {"commissioner": "t-comm-05D", "provider": "t-prov-RJE", "prime": "t-prime-PRIME1", "auditor": "t-audit"}
# the role matrix, written out independently of the app's own ACCESS table: 200 = allowed, 403 = refused
EXPECTED = {
    "/api/whoami": {"public": 200, "commissioner": 200, "provider": 200, "prime": 200, "auditor": 200},
    "/api/contracts": {"public": 200, "commissioner": 200, "provider": 200, "prime": 200, "auditor": 200},
    "/api/contracts/{name}/measures": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/contracts/{name}/adjusted": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/contracts/{name}/spc": {"public": 200, "commissioner": 200, "provider": 200, "prime": 200, "auditor": 200},
    "/api/contracts/{name}/money-by-kind": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/contracts/{name}/prime": {"public": 403, "commissioner": 403, "provider": 403, "prime": 200, "auditor": 200},
    "/api/contracts/{name}/payments": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/contracts/{name}/accountability": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/contracts/{name}/viability": {
        "public": 200,
        "commissioner": 200,
        "provider": 200,
        "prime": 200,
        "auditor": 200,
    },
    "/api/quality": {"public": 200, "commissioner": 200, "provider": 200, "prime": 200, "auditor": 200},
    "/api/decisions": {"public": 403, "commissioner": 403, "provider": 403, "prime": 403, "auditor": 200},
    "/api/events": {"public": 403, "commissioner": 403, "provider": 200, "prime": 403, "auditor": 403},
    "/api/quarantine": {"public": 403, "commissioner": 403, "provider": 200, "prime": 403, "auditor": 403},
}
NAME = "staffordshire-cancer-care"


@pytest.fixture(scope="module")
def client(paid_store: Path, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    log = DecisionLog(tmp_path_factory.mktemp("log") / "decisions.jsonl")
    log.append("business_case", "Business case approved", "c", "fp")
    tokens = Tokens(
        {
            TOKENS["commissioner"]: Principal("commissioner", "05D"),
            TOKENS["provider"]: Principal("provider", "RJE"),
            TOKENS["prime"]: Principal("prime", "PRIME1"),
            TOKENS["auditor"]: Principal("auditor"),
        }
    )
    app = create_app(paid_store, [load_terms(CANCER_TERMS)], tokens, decision_log=log.path, stress_runs=300)
    return TestClient(app)


def get(client: TestClient, path: str, role: str, **params):
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role != "public" else {}
    return client.get(path.format(name=NAME), headers=headers, params=params)


def test_the_contract_is_served_under_its_slug(client: TestClient) -> None:
    assert [c["id"] for c in get(client, "/api/contracts", "public").json()] == [NAME]


def test_the_role_matrix_covers_every_route(client: TestClient) -> None:
    routes = {r.path for r in client.app.routes if getattr(r, "path", "").startswith("/api/")}
    assert routes == set(EXPECTED)
    allowed = {r: {role for role, code in m.items() if code == 200} for r, m in EXPECTED.items()}
    assert allowed == {r: ACCESS[r.split("/")[-1]] for r in EXPECTED}


@pytest.mark.parametrize("role", ["public", "commissioner", "provider", "prime", "auditor"])
@pytest.mark.parametrize("path", EXPECTED)
def test_role_matrix(client: TestClient, path: str, role: str) -> None:
    response = get(client, path, role)
    assert response.status_code == EXPECTED[path][role], response.text
    if response.status_code == 403:
        assert "may not see" in response.json()["detail"]


def test_an_unknown_token_is_refused(client: TestClient) -> None:
    response = client.get("/api/whoami", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


def test_a_provider_cannot_ask_for_another_providers_patients(client: TestClient) -> None:
    for path in ("/api/events", "/api/quarantine"):
        assert get(client, path, "provider", provider="RL4").status_code == 403
        rows = get(client, path, "provider", provider="RJE", limit=50).json()["rows"]
        assert rows and {r["provider_code"] for r in rows} == {"RJE"}


def test_the_public_sees_no_small_numbers(client: TestClient) -> None:
    rows = get(client, "/api/contracts/{name}/measures", "public", by="provider").json()
    assert rows
    for r in rows:
        for key in ("numerator", "denominator"):
            value = r.get(key)
            assert value is None or (value >= 8 and value % 5 == 0), r
    table = get(client, "/api/contracts/{name}/accountability", "public").json()
    assert all(r["events"] is None or (r["events"] >= 8 and r["events"] % 5 == 0) for r in table)
    text = json.dumps(get(client, "/api/quality", "public").json())
    assert not re.search(r"\b[0-9a-f]{64}\b", text)


def test_a_commissioner_sees_its_own_patients_at_every_subcontractor(client: TestClient) -> None:
    rows = get(client, "/api/contracts/{name}/measures", "commissioner", by="provider").json()
    assert {r["commissioner"] for r in rows} == {"05D"}
    assert len({r["provider"] for r in rows}) > 2
    unsuppressed = get(client, "/api/contracts/{name}/measures", "auditor", by="commissioner").json()
    mine = {r["measure"]: r["numerator"] for r in unsuppressed if r["commissioner"] == "05D"}
    own = get(client, "/api/contracts/{name}/measures", "commissioner").json()
    assert {r["measure"]: r["numerator"] for r in own} == mine  # exact counts, not rounded
    paid = get(client, "/api/contracts/{name}/payments", "commissioner").json()["by_year_and_account"]
    accounts = {r["account"] for r in paid}
    assert "commissioner:05D" in accounts and not any(a.startswith("commissioner:05G") for a in accounts)
    assert any(a.startswith("subcontractor:") for a in accounts)
    table = get(client, "/api/contracts/{name}/accountability", "commissioner").json()
    assert table and {r["commissioner"] for r in table} == {"05D"}


def test_a_provider_sees_its_own_figures(client: TestClient) -> None:
    rows = get(client, "/api/contracts/{name}/measures", "provider", by="tumour_site").json()
    assert rows and {r["provider"] for r in rows} == {"RJE"}
    payments = get(client, "/api/contracts/{name}/payments", "provider").json()
    assert {r["account"] for r in payments["by_year_and_account"]} == {"subcontractor:RJE"}
    assert "entries" not in payments


def test_the_auditor_sees_everything_aggregate_and_the_log(client: TestClient) -> None:
    payments = get(client, "/api/contracts/{name}/payments", "auditor").json()
    assert payments["balanced"] and sum(e["pence"] for e in payments["entries"]) == 0
    log = get(client, "/api/decisions", "auditor").json()
    assert log["verified"] and [r["kind"] for r in log["records"]] == ["business_case"]


def test_openapi_docs_are_served_without_a_cdn(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and not [a for a in assets if a.startswith("http")], assets  # all served by the service itself
    assert all(client.get(a).status_code == 200 for a in assets)
    paths = client.get("/openapi.json").json()["paths"]
    assert set(EXPECTED) <= set(paths)


def test_bad_requests_get_clear_errors(client: TestClient) -> None:
    response = get(client, "/api/contracts/{name}/measures", "auditor", by="postcode")
    assert response.status_code == 422 and "unknown breakdown postcode" in response.text
    assert client.get("/api/contracts/nope/payments").status_code == 404


def test_tokens_are_made_once_per_organisation(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    tokens = Tokens.load_or_create(path, [load_terms(CANCER_TERMS)])
    described = [p.describe() for _, p in tokens.listing()]
    assert "auditor" in described and "commissioner 05D" in described and "provider RJE" in described
    assert path.stat().st_mode & 0o777 == 0o600
    assert Tokens.load_or_create(path, [load_terms(CANCER_TERMS)]).listing() == tokens.listing()
    path.write_text(json.dumps({"x": {"role": "public"}}))
    with pytest.raises(TokenFileError, match="needs no token"):
        Tokens.load(path)


def _all_figures_at_once(ctx) -> list:
    from concurrent.futures import ThreadPoolExecutor

    first, last = ctx.period(None, None)
    asks = [
        lambda: ctx.measures(NAME, [], first, last),
        lambda: ctx.measures(NAME, ["provider"], first, last),
        lambda: ctx.measures(NAME, ["commissioner"], first, last),
        lambda: ctx.measures(NAME, ["tumour_site"], first, last),
        lambda: ctx.accountability(NAME, first, last),
        lambda: ctx.ledger(NAME),
        lambda: ctx.quality(),
    ]
    with ThreadPoolExecutor(len(asks)) as pool:
        return [f.result() for f in [pool.submit(a) for a in asks]]


def test_concurrent_requests_share_one_run_without_colliding(paid_store: Path) -> None:
    """The dashboard asks for several figures at once; they share one Run's DuckDB connection,
    which serves one query at a time, so a second caller must wait, not fail."""
    from carecontract.records.store import Store
    from carecontract.service.context import ServiceContext

    for _ in range(3):  # a fresh context each round: every figure computed again, all at once
        ctx = ServiceContext(Store(paid_store), [load_terms(CANCER_TERMS)])
        results = _all_figures_at_once(ctx)
        assert all(results)
        first, last = ctx.period(None, None)
        assert results[0] == ctx.measures(NAME, [], first, last)


# -- issue 21 (2, 6) and issue 23: the service hardened ------------------------------------------


def test_from_and_to_as_the_cli_with_start_and_end_still_read(client: TestClient) -> None:
    path = "/api/contracts/{name}/measures"
    new = get(client, path, "auditor", **{"from": "2018-04-01", "to": "2019-03-31"})
    old = get(client, path, "auditor", start="2018-04-01", end="2019-03-31")
    assert new.status_code == 200 and new.json() == old.json()
    everything = get(client, path, "auditor").json()
    assert new.json() != everything  # the window was not ignored
    both = get(client, path, "auditor", **{"from": "2018-04-01", "start": "2018-04-01"})
    assert both.status_code == 422


def test_unknown_query_parameters_are_refused(client: TestClient) -> None:
    response = get(client, "/api/contracts/{name}/measures", "auditor", frm="2018-04-01")
    assert response.status_code == 422 and "unknown query parameter frm" in response.text
    assert get(client, "/api/quality", "public", by="provider").status_code == 422
    assert client.get("/", params={"token": "x"}).status_code == 200  # the dashboard drops it itself


def _raw_get(app, path: str, query: bytes, token: str) -> tuple[int, bytes]:
    """One GET straight to the ASGI app (the test client refuses a query over 64 KB)."""
    import asyncio

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"test"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_422_never_echoes_a_long_query(client: TestClient) -> None:
    huge = b"x" * 100_000
    path = f"/api/contracts/{NAME}/measures"
    for query in (b"by=" + huge, b"from=" + huge, huge + b"=1", b"by=provider&" + huge + b"=1"):
        status, body = _raw_get(client.app, path, query, TOKENS["auditor"])
        assert status == 422, query[:12]
        assert len(body) < 1_000, len(body)
    status, body = _raw_get(client.app, f"/api/contracts/{'x' * 100_000}/payments", b"", TOKENS["auditor"])
    assert status == 404 and len(body) < 1_000
    status, body = _raw_get(client.app, "/api/events", b"provider=" + huge, TOKENS["provider"])
    assert status == 403 and len(body) < 1_000


def test_bad_date_order_is_a_422_everywhere(client: TestClient) -> None:
    for path in ("/api/contracts/{name}/accountability", "/api/contracts/{name}/measures"):
        for role in ("auditor", "public"):
            response = get(client, path, role, start="2025-01-01", end="2024-01-01")
            assert response.status_code == 422, (path, role, response.text)


def test_an_authorization_header_that_is_not_bearer_is_refused(client: TestClient) -> None:
    for header in ("Basic abc", "Token t-audit", "t-audit", "Bearer"):
        response = client.get("/api/whoami", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_no_store_on_every_response_and_a_csp_on_the_dashboard(client: TestClient) -> None:
    for path in ("/api/whoami", "/api/contracts/{name}/payments", "/api/decisions"):
        response = get(client, path, "auditor")
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["x-content-type-options"] == "nosniff"
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script for the policy to allow
    assert client.get("/favicon.ico").status_code == 200
    assert client.get("/static/dashboard.js").status_code == 200


def test_every_authenticated_request_is_in_the_access_log(paid_store: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    tokens = Tokens({"t-audit": Principal("auditor"), "t-prov": Principal("provider", "RJE")})
    app = create_app(paid_store, [load_terms(CANCER_TERMS)], tokens, stress_runs=50, access_log=log)
    with TestClient(app) as local:
        local.get("/api/whoami", headers={"Authorization": "Bearer t-audit"})
        local.get("/api/events", headers={"Authorization": "Bearer t-prov"}, params={"limit": 3})
        local.get("/api/whoami")  # the public: not logged
        local.get("/api/decisions", headers={"Authorization": "Bearer t-prov"})  # refused, still logged
        local.get("/api/quality", headers={"Authorization": "Bearer forged"})  # a guess at a token
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["role"], e["organisation"], e["route"], e["status"]) for e in entries] == [
        ("auditor", None, "/api/whoami", 200),
        ("provider", "RJE", "/api/events", 200),
        ("provider", "RJE", "/api/decisions", 403),
        ("refused", None, "/api/quality", 401),
    ]
    text = log.read_text()
    assert (
        "t-audit" not in text
        and "t-prov" not in text
        and "forged" not in text
        and not re.search(r"\b[0-9a-f]{64}\b", text)
    )
    assert all(set(e) == {"at", "role", "organisation", "method", "route", "status", "ms"} for e in entries)


def test_a_broken_decision_log_is_reported_not_a_500(client: TestClient, tmp_path: Path) -> None:
    log = Path(client.app.state.context.decision_log)
    saved = log.read_bytes()
    try:
        log.write_bytes(saved + b"1\n")
        body = get(client, "/api/decisions", "auditor").json()
        assert not body["verified"] and any("line 2" in p for p in body["problems"])
        log.with_name(log.name + ".head").write_text("{not json")
        assert get(client, "/api/decisions", "auditor").status_code == 200
    finally:
        log.write_bytes(saved)
        DecisionLog(log).head_path.write_text(json.dumps({"count": 1, "head": DecisionLog(log).records()[0]["hash"]}))


def test_patient_rows_carry_no_server_paths(client: TestClient) -> None:
    for path in ("/api/events", "/api/quarantine"):
        rows = get(client, path, "provider", limit=20).json()["rows"]
        assert rows and all("/" not in str(r.get("source_file") or "") for r in rows), rows[0].get("source_file")


def test_the_public_sees_published_periods_and_small_tables_only(client: TestClient) -> None:
    path = "/api/contracts/{name}/measures"
    assert get(client, path, "public", **{"from": "2018-04-01", "to": "2019-03-31"}).status_code == 200
    assert get(client, path, "public", **{"from": "2018-04-01"}).status_code == 200
    for window in ({"from": "2018-04-02", "to": "2019-03-31"}, {"from": "2018-04-01", "to": "2019-03-30"}):
        response = get(client, path, "public", **window)
        assert response.status_code == 422 and "published periods only" in response.text
    three = get(client, path, "public", by=["provider", "commissioner", "tumour_site"])
    assert three.status_code == 422
    assert get(client, path, "public", by=["provider", "provider"]).status_code == 422


def test_fair_comparisons_are_limited_to_ones_own(client: TestClient) -> None:
    rows = get(client, "/api/contracts/{name}/adjusted", "provider", measure="early_stage").json()
    assert rows and {r["provider"] for r in rows} == {"RJE"} and {r["measure"] for r in rows} == {"early_stage_oe"}
    rows = get(client, "/api/contracts/{name}/adjusted", "commissioner").json()
    assert rows and {r["commissioner"] for r in rows} == {"05D"}
    assert get(client, "/api/contracts/{name}/adjusted", "auditor", measure="cwt_62").status_code == 422
    assert get(client, "/api/contracts/{name}/spc", "provider", provider="RL4").status_code == 403
    months = get(client, "/api/contracts/{name}/spc", "provider", measure="early_stage").json()
    assert months and {m["measure"] for m in months} == {"early_stage"}
    assert get(client, "/api/contracts/{name}/spc", "auditor", measure="equity_gap").status_code == 422
    assert (
        get(client, "/api/contracts/{name}/spc", "auditor", bogus="1").status_code == 422
    )  # undeclared params refused
