"""One self-contained HTML report of a contract: terms, data, flows, outcomes, money, viability.

Plotly's JavaScript is inlined once, so the file opens offline and can be emailed or published
as it is. The ``public`` variant is for campaigners and the press: every count goes through
disclosure control (below 8 suppressed, others rounded to 5, secondary suppression), rates are
shown only where safe, and no patient-level data or pseudonyms appear anywhere.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from carecontract.baseline.accountability import accountability
from carecontract.baseline.compute import build_baseline
from carecontract.measures import stats
from carecontract.measures.compute import compute_measures
from carecontract.payments.book import PaymentBook
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.disclosure import protect_line, public_count, public_measures
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.terms.loader import Terms
from carecontract.viability.charts import fan_figure, tornado_figure
from carecontract.viability.simulate import stress

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3} td.n{text-align:right} .note{color:#555;font-size:.9em} .bad{color:#b00}.good{color:#070}
"""


class _Figures:
    """Plotly figures as HTML fragments; the library is inlined with the first one only."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig: go.Figure, element_id: str) -> str:
        fragment = fig.to_html(full_html=False, include_plotlyjs="inline" if self.first else False, div_id=element_id)
        self.first = False
        return fragment


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        text = "*" if v is None else (f"{v:,.1f}" if isinstance(v, float) else (f"{v:,}" if numeric else str(v)))
        return f'<td class="{"n" if numeric or v is None else ""}">{html.escape(text)}</td>'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _shown(value: int | None) -> str:
    return "*" if value is None else f"{value:,}"


def _count(value: int | None, public: bool) -> int | None:
    return public_count(value) if public else value


def build_report(terms: Terms, store: str | Path | Store, public: bool = False, runs: int = 5000, seed: int = 0,
                 period: tuple[date, date] | None = None, decision_log: str | Path | None = None) -> str:  # fmt: skip
    store = store if isinstance(store, Store) else Store(store)
    c = terms.contract
    figure = _Figures()
    first, last = store.event_range()
    start, end = period or (first or c.term.start, last or c.term.end)
    parts = [f"<h1>{html.escape(c.name)}</h1>"]
    audience = "Public edition: small numbers suppressed" if public else "Restricted edition: not for publication"
    parts.append(
        f'<p class="note">{audience}. Terms {html.escape(terms.source)} (fingerprint {terms.fingerprint}'
        f"{', what-ifs: ' + html.escape(', '.join(terms.overrides)) if terms.overrides else ''}); data {start} to "
        f"{end}; generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by carecontract.</p>"
    )

    # -- the contract
    parts.append("<h2>The contract</h2>")
    parts.append(_table(["", ""], [
        ["Prime provider", f"{c.prime.name} ({c.prime.code})"],
        ["Commissioners", ", ".join(f"{x.name} ({x.share:.0%})" for x in c.commissioners)],
        ["Subcontractors", ", ".join(f"{x.name} ({x.code})" for x in c.subcontractors) or "—"],
        ["Term", f"{c.term.start} to {c.term.end} ({c.term.years} years)"],
        ["Value", f"£{c.value.total_gbp:,.0f}"],
        ["Stages", "; ".join(f"{s.name} ({s.kind})" for s in c.stages)],
    ]))  # fmt: skip
    values = c.value_per_year()
    parts.append(_table(["contract year", "value £m", "tumour sites in scope"],
                        [[str(d.year), float(values[d.year]) / 1e6, "all" if len(c.scope_at(d)) > 10 else
                          ", ".join(c.scope_at(d))] for d in c.contract_years()]))  # fmt: skip

    # -- data quality
    q = quality(store).as_dict()
    rows = q["rows"]
    parts.append("<h2>Data quality</h2>")
    shown = {k: _shown(_count(rows[k], public)) for k in ("read", "accepted", "quarantined")}
    parts.append(f"<p>{shown['read']} rows read; {shown['accepted']} accepted; {shown['quarantined']} quarantined "
                 f"with reasons. Latest event {q['timeliness']['latest_event']}.</p>")  # fmt: skip
    parts.append(_table(["column", "completeness %", "validity %"],
                        [[x["column"], None if x["completeness"] is None else 100 * x["completeness"],
                          None if x["validity"] is None else 100 * x["validity"]] for x in q["columns"]]))  # fmt: skip

    # -- baseline and flows
    base = build_baseline(store, terms)
    by_year: dict[int, list[float]] = {}
    for a in base.activity:
        by_year.setdefault(a["year"], [0, 0.0])
        by_year[a["year"]][0] += a["events"]
        by_year[a["year"]][1] += a["cost_gbp"]
    parts.append("<h2>Activity, cost and patient flows</h2>")
    years = sorted(by_year)
    parts.append(figure(go.Figure(go.Bar(x=[str(y) for y in years], y=[by_year[y][1] / 1e6 for y in years]),
                                  layout={"title": "Recorded cost by contract year, £m",
                                          "xaxis": {"type": "category"}}), "cost"))  # fmt: skip
    flows = base.patient_flows
    if public:
        kept = protect_line({(f["from_provider"], f["to_provider"]): f["pathways"] for f in flows})["cells"]
        flows = [{**f, "pathways": kept[f["from_provider"], f["to_provider"]]} for f in flows]
    flows = [f for f in flows if f["pathways"]]
    # providers twice, "from" on the left and "to" on the right: flows back and forth read as bands, not loops
    sources = sorted({f["from_provider"] for f in flows})
    targets = sorted({f["to_provider"] for f in flows})
    if flows:
        sankey = go.Sankey(node={"label": [f"{p} →" for p in sources] + [f"→ {p}" for p in targets]}, link={
            "source": [sources.index(f["from_provider"]) for f in flows],
            "target": [len(sources) + targets.index(f["to_provider"]) for f in flows],
            "value": [f["pathways"] for f in flows]})  # fmt: skip
        parts.append(figure(go.Figure(sankey, layout={"title": "Pathways moving between providers"}), "flows"))

    # -- outcomes
    parts.append(f"<h2>Outcomes, {start} to {end}</h2>")
    targets = {o.measure: o.target for o in c.outcomes}
    overall = compute_measures(store, start, end, targets=targets)
    by_provider = compute_measures(store, start, end, by=["provider"], targets=targets, only=["cwt_62", "fds_28"])
    if public:
        overall, by_provider = public_measures(overall, []), public_measures(by_provider, ["provider"])

    def level(measure: str, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.2f}" if measure == "patient_experience" else f"{value:.1%}"

    parts.append(_table(["measure", "rate", "95% interval", "numerator", "denominator", "target", "met"], [
        [r["measure"], level(r["measure"], r["rate"]),
         "—" if r["ci_low"] is None else f"{level(r['measure'], r['ci_low'])}–{level(r['measure'], r['ci_high'])}",
         r.get("numerator") if isinstance(r.get("numerator"), int) or r.get("suppressed") else "—",
         r["denominator"], level(r["measure"], r["target"]),
         {True: "yes", False: "no", None: "—"}[r["met"]]] for r in overall]))  # fmt: skip
    for measure in ("cwt_62", "fds_28"):
        points = [r for r in by_provider if r["measure"] == measure and r["rate"] is not None]
        if points:
            fig = go.Figure(go.Scatter(x=[r["denominator"] for r in points], y=[r["rate"] for r in points],
                                       mode="markers+text", text=[r["provider"] for r in points],
                                       textposition="top center", name="providers"))  # fmt: skip
            total_n = sum(r["denominator"] or 0 for r in points)
            if total_n and all(r.get("numerator") is not None for r in points):
                p = sum(r["numerator"] for r in points) / total_n
                xs = list(
                    range(max(10, min(r["denominator"] for r in points) // 2), total_n + 1, max(1, total_n // 200))
                )
                for z, dash in ((stats.Z95, "dash"), (stats.Z998, "dot")):
                    limits = [stats.funnel_limits(p, n, z) for n in xs]
                    for side in (0, 1):
                        fig.add_trace(go.Scatter(x=xs, y=[lim[side] for lim in limits], mode="lines",
                                                 line={"dash": dash}, showlegend=False))  # fmt: skip
            fig.update_layout(title=f"{measure}: funnel plot by provider", xaxis_title="cases", yaxis_title="rate")
            parts.append(figure(fig, f"funnel-{measure}"))

    # -- money
    book = PaymentBook(store, terms)
    closed = book.ledger_rows()
    parts.append("<h2>Payments</h2>")
    if closed:
        # where the money ends up: each account's net receipts (the prime passes money on, so nets to zero)
        net: dict[str, dict[int, int]] = {}
        for row in closed:
            net.setdefault(row["account"], {}).setdefault(row["period"], 0)
            net[row["account"]][row["period"]] += row["pence"]
        periods = sorted({r["period"] for r in closed})
        kept = sorted(a for a in net if any(v > 0 for v in net[a].values()))
        fig = go.Figure([go.Bar(name=a, x=[str(y) for y in periods], y=[net[a].get(y, 0) / 1e8 for y in periods])
                         for a in kept])  # fmt: skip
        fig.update_layout(barmode="relative", title="Where the money went, by party and contract year, £m (net)",
                          xaxis={"type": "category"})  # fmt: skip
        parts.append(figure(fig, "payments"))
    else:
        parts.append(f'<p class="note">No closed periods yet: run <code>carecontract pay {html.escape(terms.source)} '
                     "--store …</code>.</p>")  # fmt: skip

    # -- viability
    result = stress(c, runs, seed)
    parts.append("<h2>Viability</h2>")
    parts.append(f"<p>Over {runs:,} simulated contract lives: probability of a deficit "
                 f"<b>{result['deficit_probability']:.0%}</b>, expected funding gap "
                 f"<b>£{result['expected_gap_gbp'] / 1e6:,.1f}m</b> (90th percentile "
                 f"£{result['gap_p90_gbp'] / 1e6:,.1f}m).</p>")  # fmt: skip
    years_run = [y["year"] for y in result["by_year"]]
    parts.append(
        figure(fan_figure("Cumulative surplus (+) / deficit (−), £m", years_run, result["_cumulative"]), "fan")
    )
    if result["sensitivity"]:
        title = "Expected funding gap with each risk at its 10th / 90th percentile, £m"
        parts.append(figure(tornado_figure(title, result["sensitivity"], result["expected_gap_gbp"]), "tornado"))

    # -- accountability
    parts.append("<h2>Who did what for whom</h2>")
    acc = accountability(store, terms, start, end, activity=base.activity)
    parts.append(_table(["commissioner", "subcontractor", "events", "cost £m", "paid £m"], [
        [a["commissioner"], a["subcontractor"], _count(a["events"], public), a["cost_gbp"] / 1e6,
         a["payment_received_gbp"] / 1e6] for a in acc]))  # fmt: skip

    # -- decisions
    parts.append("<h2>Decision log</h2>")
    log = DecisionLog(decision_log) if decision_log else None
    if log and log.records():
        problems = log.verify()
        status = '<span class="good">verified intact</span>' if not problems else (
            f'<span class="bad">FAILS verification: {html.escape(str(problems[0]))}</span>')  # fmt: skip
        parts.append(f"<p>{len(log.records())} decision(s), {status}.</p>")
        parts.append(_table(["#", "date", "kind", "decision", "hash"], [
            [str(r["seq"]), r["at"][:10], r["kind"], r["text"], r["hash"][:16]] for r in log.records()]))  # fmt: skip
    else:
        parts.append('<p class="note">No decisions recorded: no business case, options appraisal or consultation is '
                     "on record for this contract.</p>")  # fmt: skip
    title = html.escape(c.name)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")  # fmt: skip
