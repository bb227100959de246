"""The web service: the same figures as the CLI and report, each caller seeing what their role allows.

``create_app(store, terms)`` builds a FastAPI app (OpenAPI at /docs); ``carecontract serve`` runs it
with uvicorn. Every route under /api declares its roles in :data:`ACCESS`; the role rules themselves
are in :mod:`carecontract.service.access`. Figures are computed once per store state and cached,
so a dashboard refresh does not recompute measures.
"""

import threading
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline

from carecontract.baseline.accountability import accountability
from carecontract.measures.compute import BREAKDOWNS, MeasureError, compute_measures
from carecontract.payments.book import PaymentBook, slug
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.disclosure import protect_table, public_count, public_measures
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.service.access import PUBLIC, Principal, Role, Tokens
from carecontract.terms.loader import Terms
from carecontract.viability.simulate import stress

PATIENT_LEVEL_LIMIT = 1000
# which roles may call each route; the role-matrix test holds every /api route to this table
ACCESS: dict[str, set[Role]] = {
    "whoami": {"public", "commissioner", "provider", "auditor"},
    "contracts": {"public", "commissioner", "provider", "auditor"},
    "measures": {"public", "commissioner", "provider", "auditor"},
    "payments": {"public", "commissioner", "provider", "auditor"},
    "accountability": {"public", "commissioner", "provider", "auditor"},
    "viability": {"public", "commissioner", "provider", "auditor"},
    "quality": {"public", "commissioner", "provider", "auditor"},
    "decisions": {"auditor"},
    "events": {"provider"},  # patient-level: only the provider's own rows
    "quarantine": {"provider"},  # patient-level: only the provider's own rows
}
bearer = HTTPBearer(auto_error=False, description="An API token; without one you are the public.")


class _Cache:
    """Results keyed by the store's committed state, so new data is never served stale."""

    def __init__(self, store: Store) -> None:
        self.store, self._lock, self._values = store, threading.Lock(), {}

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        full = (self.store.fingerprint(), *key)
        with self._lock:
            if full in self._values:
                return self._values[full]
        value = make()
        with self._lock:
            self._values[full] = value
        return value


def create_app(store: str | Path, terms: list[Terms], tokens: Tokens, decision_log: str | Path | None = None,
               stress_runs: int = 5000) -> FastAPI:  # fmt: skip
    store = Store(store)
    contracts = {slug(t.contract.name): t for t in terms}
    cache = _Cache(store)
    # FastAPI's /docs loads Swagger UI from a CDN; FastAPIOffline serves it from the package, so the
    # docs work on a closed NHS network too
    app = FastAPIOffline(title="carecontract", version="1", description=(
        "Outcomes, payments and viability of prime-provider care contracts. Send an API token as "
        "`Authorization: Bearer …`; without one you see the public, disclosure-controlled figures."))  # fmt: skip

    def principal(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        if credentials is None:
            return PUBLIC
        found = tokens.principal(credentials.credentials)
        if found is None:
            raise HTTPException(401, "unknown API token", headers={"WWW-Authenticate": "Bearer"})
        return found

    def allowed(name: str) -> Callable[..., Principal]:
        def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
            if who.role not in ACCESS[name]:
                raise HTTPException(403, f"the {who.role} role may not see {name}" + (
                    " (patient-level rows go only to the provider that recorded them)"
                    if name in ("events", "quarantine") else ""))  # fmt: skip
            return who

        return check

    def contract(name: str) -> Terms:
        if name not in contracts:
            raise HTTPException(404, f"no contract {name!r} (known: {', '.join(contracts)})")
        return contracts[name]

    def period(start: date | None, end: date | None) -> tuple[date, date]:
        first, last = store.event_range()
        if first is None:
            raise HTTPException(409, "the store has no accepted events yet")
        return start or first, end or last

    @app.get("/api/whoami", tags=["access"])
    def whoami(who: Annotated[Principal, Depends(allowed("whoami"))]) -> dict[str, Any]:
        """Your role and organisation, as your token says."""
        return {"role": who.role, "organisation": who.organisation}

    @app.get("/api/contracts", tags=["contracts"])
    def list_contracts(who: Annotated[Principal, Depends(allowed("contracts"))]) -> list[dict[str, Any]]:
        """The contracts served: parties, term and value."""
        return [{"id": key, "name": t.contract.name, "prime": t.contract.prime.code,
                 "commissioners": [c.code for c in t.contract.commissioners],
                 "subcontractors": [s.code for s in t.contract.subcontractors],
                 "start": t.contract.term.start, "years": t.contract.term.years,
                 "value_gbp": float(t.contract.value.total_gbp),
                 "targets": {o.measure: o.target for o in t.contract.outcomes}}
                for key, t in contracts.items()]  # fmt: skip

    @app.get("/api/contracts/{name}/measures", tags=["outcomes"])
    def measures(who: Annotated[Principal, Depends(allowed("measures"))], name: str,
                 by: Annotated[list[str] | None, Query()] = None, start: date | None = None,
                 end: date | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Outcome measures with 95% intervals: the public's suppressed, the others' limited to their own."""
        t = contract(name)
        by = list(dict.fromkeys(by or []))
        if bad := [b for b in by if b not in BREAKDOWNS]:
            raise HTTPException(422, f"unknown breakdown {', '.join(bad)} (valid: {', '.join(BREAKDOWNS)})")
        own = {"commissioner": "commissioner", "provider": "provider"}.get(who.role)
        keys = [own, *[b for b in by if b != own]] if own else by
        first, last = period(start, end)
        targets = {o.measure: o.target for o in t.contract.outcomes}
        try:
            rows = cache.get(("measures", name, tuple(keys), first, last),
                             lambda: compute_measures(store, first, last, by=keys, targets=targets))  # fmt: skip
        except MeasureError as exc:
            raise HTTPException(422, str(exc)) from None
        if own:
            rows = [r for r in rows if r.get(own) == who.organisation]
        if who.role == "public":
            rows = public_measures(rows, keys)
        return rows

    @app.get("/api/contracts/{name}/payments", tags=["payments"])
    def payments(who: Annotated[Principal, Depends(allowed("payments"))], name: str) -> dict[str, Any]:
        """Money by contract year and account from the closed ledger; the auditor also gets every posting."""
        t = contract(name)
        rows = cache.get(("ledger", name), lambda: PaymentBook(store, t).ledger_rows())
        mine = {"commissioner": f"commissioner:{who.organisation}",
                "provider": (f"subcontractor:{who.organisation}", f"prime:{who.organisation}",
                             f"management:{who.organisation}")}.get(who.role)  # fmt: skip

        def visible(account: str) -> bool:
            if who.role == "commissioner":  # its own account and everyone it pays through the prime, not peers
                return not account.startswith("commissioner:") or account == mine
            if who.role == "provider":
                return account in mine
            return True

        totals: dict[tuple[int, str], int] = {}
        for r in rows:
            if visible(r["account"]):
                totals[r["period"], r["account"]] = totals.get((r["period"], r["account"]), 0) + r["pence"]
        net = [{"year": y, "account": a, "net_gbp": p / 100} for (y, a), p in sorted(totals.items())]
        out: dict[str, Any] = {"by_year_and_account": net, "balanced": sum(r["pence"] for r in rows) == 0}
        if who.role == "auditor":
            out["entries"] = rows
        return out

    @app.get("/api/contracts/{name}/accountability", tags=["payments"])
    def accountability_table(who: Annotated[Principal, Depends(allowed("accountability"))], name: str,
                             start: date | None = None, end: date | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Each subcontractor's activity, cost, payment and outcomes for each commissioner's patients."""
        t = contract(name)
        first, last = period(start, end)
        rows = cache.get(("accountability", name, first, last), lambda: accountability(store, t, first, last))
        if who.role == "commissioner":
            return [r for r in rows if r["commissioner"] == who.organisation]
        if who.role == "provider":
            return [r for r in rows if who.organisation in (r["subcontractor"], t.contract.prime.code)]
        if who.role == "public":
            kept = protect_table({(r["commissioner"], r["subcontractor"]): r["events"] for r in rows})["cells"]
            return [{**{k: v for k, v in r.items() if k != "outcomes"},
                     "events": kept[r["commissioner"], r["subcontractor"]]} for r in rows]  # fmt: skip
        return rows

    @app.get("/api/contracts/{name}/viability", tags=["viability"])
    def viability(who: Annotated[Principal, Depends(allowed("viability"))], name: str) -> dict[str, Any]:
        """The Monte Carlo stress test of the contract's whole life (no patient data in it)."""
        t = contract(name)
        result = cache.get(("stress", name), lambda: stress(t.contract, stress_runs, 0))
        return {k: v for k, v in result.items() if not k.startswith("_")}

    @app.get("/api/quality", tags=["data"])
    def data_quality(who: Annotated[Principal, Depends(allowed("quality"))]) -> dict[str, Any]:
        """Completeness, validity, timeliness and duplicates; the public's counts suppressed."""
        report = cache.get(("quality",), lambda: quality(store).as_dict())
        if who.role == "public":
            rows = {k: public_count(v) for k, v in report["rows"].items()}
            columns = [{k: c[k] for k in ("column", "completeness", "validity")} for c in report["columns"]]
            return {"rows": rows, "columns": columns, "timeliness": report["timeliness"]}
        return report

    @app.get("/api/decisions", tags=["accountability"])
    def decisions(who: Annotated[Principal, Depends(allowed("decisions"))]) -> dict[str, Any]:
        """The decision log and whether it verifies (auditors only)."""
        if decision_log is None or not Path(decision_log).exists():
            return {"records": [], "problems": [], "verified": True}
        log = DecisionLog(decision_log)
        problems = [str(p) for p in log.verify()]
        return {"records": log.records(), "problems": problems, "verified": not problems}

    def patient_rows(view: str, who: Principal, provider: str | None, limit: int) -> dict[str, Any]:
        if provider is not None and provider != who.organisation:
            raise HTTPException(403, f"provider {who.organisation} may not see {provider}'s patient-level rows")
        con = store.connect()
        try:
            cursor = con.execute(f"SELECT * FROM {view} WHERE provider_code = ? LIMIT ?", [who.organisation, limit])
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()
        return {"provider": who.organisation, "rows": rows, "limit": limit}

    @app.get("/api/events", tags=["patient-level"])
    def events(who: Annotated[Principal, Depends(allowed("events"))], provider: str | None = None,
               limit: Annotated[int, Query(ge=1, le=PATIENT_LEVEL_LIMIT)] = 100) -> dict[str, Any]:  # fmt: skip
        """Pseudonymised event rows the calling provider recorded (providers only, their own)."""
        return patient_rows("events", who, provider, limit)

    @app.get("/api/quarantine", tags=["patient-level"])
    def quarantined(who: Annotated[Principal, Depends(allowed("quarantine"))], provider: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=PATIENT_LEVEL_LIMIT)] = 100) -> dict[str, Any]:  # fmt: skip
        """The calling provider's quarantined rows with their reasons, to correct and resubmit."""
        return patient_rows("quarantine", who, provider, limit)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return resources.files("carecontract.service").joinpath("dashboard.html").read_text()

    @app.get("/static/plotly.js", include_in_schema=False)
    def plotly_js() -> Response:
        from plotly.offline import get_plotlyjs

        return Response(get_plotlyjs(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip

    return app
