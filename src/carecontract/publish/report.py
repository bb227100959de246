"""One self-contained HTML report of a contract: terms, data, flows, outcomes, money, viability.

Plotly's JavaScript is inlined once, so the file opens offline and can be emailed or published
as it is. The ``public`` variant is for campaigners and the press: every count goes through
disclosure control (below 8 suppressed, others rounded to 5, secondary suppression), rates are
shown only where safe, and no patient-level data or pseudonyms appear anywhere.

The report is made in two steps so each can be read (and tested) alone: :func:`gather_report` reads
the store into a :class:`ReportData` of plain rows, in the shapes the service's API returns, with
the public edition's suppression already applied; :func:`render_report` draws its charts and lays
it out with the Jinja2 templates in ``publish/templates/`` (autoescaped, so no value can inject
markup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup

from carecontract.baseline.accountability import accountability
from carecontract.baseline.compute import build_baseline
from carecontract.measures import funnel, stats
from carecontract.measures.compute import BREAKDOWNS
from carecontract.measures.definitions import measures
from carecontract.payments.book import PaymentBook
from carecontract.payments.components import PAID, WENT, by_group, component_table, payment_components
from carecontract.payments.ledger import net_by_account
from carecontract.publish import fair_charts
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.disclosure import (
    PublicPeriodError,
    PublicTables,
    default_period,
    protect_line,
    public_accountability,
    public_quality,
    published_periods,
)
from carecontract.publish.money import money_by_kind
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract
from carecontract.terms.names import named
from carecontract.terms.targets import contract_targets, label_rows, targets_rule
from carecontract.terms.years import year_label
from carecontract.viability.charts import fan_figure, tornado_figure
from carecontract.viability.simulate import stress

FUNNEL_MEASURES = ("cwt_62", "fds_28")  # the measures drawn as a funnel plot by provider
#: Measures that are a mean score, shown on their own scale rather than as a percentage.
SCORE_MEASURES = frozenset(m.id for m in measures().values() if m.kind == "mean")


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, gathered from the store; counts already suppressed if ``public``."""

    terms: Terms
    public: bool
    start: date
    end: date
    generated: datetime
    years: list[dict[str, Any]]  # each contract year: year, value_gbp, scope (tumour sites)
    quality: dict[str, Any]  # quality(store).as_dict(); public: public_quality of it, as the API's
    cost_by_year: dict[int, float]  # recorded cost by contract year, £
    flows: list[dict[str, Any]]  # pathways from_provider → to_provider; public: protected; none empty
    outcomes: list[dict[str, Any]]  # measure rows, as the API's (public: public_measures)
    outcomes_by_provider: list[dict[str, Any]]  # the funnel measures by provider, likewise
    payments: dict[tuple[int, str], int]  # net pence by (contract year, account) of the closed ledger
    runs: int
    viability: dict[str, Any]  # the stress test's result
    accountability: list[dict[str, Any]]  # public: events suppressed
    decisions: list[dict[str, Any]]  # the decision log's records (none if there is no log)
    decision_problems: list[str]  # why the log fails verification (none if it verifies)
    fair: dict[str, Any] = field(default_factory=dict)  # adjusted funnel rows and SPC chart (not public)
    components: list[dict[str, Any]] = field(default_factory=list)  # payments.components.payment_components
    by_kind: list[dict[str, Any]] = field(default_factory=list)  # publish.money.money_by_kind


def gather_report(
    terms: Terms,
    store: str | Path | Store | Run,
    public: bool = False,
    runs: int = 5000,
    seed: int = 0,
    period: tuple[date, date] | None = None,
    decision_log: str | Path | None = None,
) -> ReportData:
    """Read the report's figures from the store (and the stress test and decision log).

    Everything is read through one :class:`~carecontract.run.Run`, so the quality report, the
    measures, the baseline and the payments come from the same snapshot and each is computed once.
    """
    run = Run.of(store).with_terms(terms)
    c = terms.contract
    first, last = run.event_range()
    start, end = period or (first or c.term.start, last or c.term.last_day)
    if public:
        start, end = _public_period(c, period, first, last)
    values = c.value_per_year()
    years = [{"year": d.year, "value_gbp": float(values[d.year]), "scope": c.scope_at(d)} for d in c.contract_years()]

    q = run.quality_report()
    if public:
        q = public_quality(q)

    base = build_baseline(run, terms)
    cost_by_year: dict[int, float] = {}
    for a in base.activity:
        cost_by_year[a["year"]] = cost_by_year.get(a["year"], 0.0) + a["cost_gbp"]
    flows = base.patient_flows
    if public:
        kept = protect_line({(f["from_provider"], f["to_provider"]): f["pathways"] for f in flows})["cells"]
        flows = [{**f, "pathways": kept[f["from_provider"], f["to_provider"]]} for f in flows]

    targets = contract_targets(c)  # the one rule (terms.targets): the contract's, else England's standard
    if public:  # the same linked tables, for the same published period, as the service's public answers
        tables = PublicTables(run.measures(start, end, by=BREAKDOWNS, targets=targets), BREAKDOWNS)
        overall = tables.rows([])
        by_provider = [r for r in tables.rows(["provider"]) if r["measure"] in FUNNEL_MEASURES]
    else:
        overall = run.measures(start, end, targets=targets)
        by_provider = run.measures(start, end, by=["provider"], targets=targets, only=list(FUNNEL_MEASURES))
    overall, by_provider = label_rows(overall, c), label_rows(by_provider, c)  # where each target came from

    acc = accountability(run, terms, start, end, activity=base.activity)
    if public:
        acc = public_accountability(acc)

    log = DecisionLog(decision_log) if decision_log else None
    records = log.records() if log else []
    ledger = PaymentBook(run, terms).paid_rows()  # what was paid: the journal, else the statements
    return ReportData(
        terms=terms,
        public=public,
        start=start,
        end=end,
        generated=datetime.now(UTC),
        years=years,
        quality=q,
        cost_by_year=cost_by_year,
        flows=[f for f in flows if f["pathways"]],
        outcomes=overall,
        outcomes_by_provider=by_provider,
        payments=net_by_account(ledger),
        runs=runs,
        viability=stress(c, runs, seed),
        accountability=acc,
        decisions=records,
        decision_problems=[str(p) for p in log.verify()] if records else [],
        fair={} if public else fair_charts.gather(run, start, end, targets),  # no disclosure control yet
        components=payment_components(ledger, c),  # the one place the table's source is chosen
        by_kind=money_by_kind(ledger, c),
    )


def _public_period(
    contract: Any, period: tuple[date, date] | None, first: date | None, last: date | None
) -> tuple[date, date]:
    """The public edition covers one published period (the latest with data unless one is asked for),
    as the service's public answers do: never an arbitrary window."""
    periods = published_periods(contract)
    if period is not None:
        if tuple(period) not in periods:
            raise PublicPeriodError(
                f"the public report covers a published period only ({contract.publication.period}s, "
                f"e.g. {periods[0][0]}..{periods[0][1]}), not {period[0]}..{period[1]}"
            )
        return period
    return default_period(contract, first, last) or periods[0]


# -- charts


class _Figures:
    """Plotly figures as HTML fragments; the library is inlined with the first one only."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig: go.Figure, element_id: str) -> Markup:
        fragment = fig.to_html(full_html=False, include_plotlyjs="inline" if self.first else False, div_id=element_id)
        self.first = False
        return Markup(fragment)


def _sankey(flows: list[dict[str, Any]], contract: Contract) -> go.Figure:
    # providers twice, "from" on the left and "to" on the right: flows back and forth read as bands, not loops
    sources = sorted({f["from_provider"] for f in flows})
    targets = sorted({f["to_provider"] for f in flows})
    link = {
        "source": [sources.index(f["from_provider"]) for f in flows],
        "target": [len(sources) + targets.index(f["to_provider"]) for f in flows],
        "value": [f["pathways"] for f in flows],
    }
    labels = [f"{named(p, contract)} →" for p in sources] + [f"→ {named(p, contract)}" for p in targets]
    sankey = go.Sankey(node={"label": labels}, link=link)
    return go.Figure(sankey, layout={"title": "Pathways moving between providers (width: pathways)"})


#: The funnel plot's control limits: (z, line style, legend label), inner first.
FUNNEL_LIMITS = ((stats.Z95, "dash", "95% limits"), (stats.Z998, "dot", "99.8% limits"))


def _funnel(measure: str, points: list[dict[str, Any]], contract: Contract) -> go.Figure:
    """Providers' rates against their case numbers, inside the 95% and 99.8% limits around the overall rate.

    Every line is named in the legend; rates are percentages, as in the tables; the target (if
    any) is drawn across, labelled with where it came from.
    """
    score = measure in SCORE_MEASURES
    fig = go.Figure(
        go.Scatter(
            x=[r["denominator"] for r in points],
            y=[r["rate"] for r in points],
            mode="markers+text",
            text=[r["provider"] for r in points],
            hovertext=[named(r["provider"], contract) for r in points],
            textposition="top center",
            name="providers",
        )
    )
    total_n = sum(r["denominator"] or 0 for r in points)
    if total_n and all(r.get("numerator") is not None for r in points):
        p = sum(r["numerator"] for r in points) / total_n
        xs = list(range(max(10, min(r["denominator"] for r in points) // 2), total_n + 1, max(1, total_n // 200)))
        fig.add_trace(
            go.Scatter(
                x=[xs[0], xs[-1]], y=[p, p], mode="lines", name="overall rate", line={"width": 1, "color": "#333"}
            )
        )
        # the limits widened for overdispersion, as the rows' own (none in the public edition's rows)
        tau2 = next((r["funnel"].get("tau2", 0.0) for r in points if r.get("funnel")), 0.0)
        for z, dash, label in FUNNEL_LIMITS:
            limits = [funnel.proportion_limits(p, n, z, tau2) for n in xs]
            for side in (0, 1):
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=[lim[side] for lim in limits],
                        mode="lines",
                        line={"dash": dash, "color": "#888"},
                        name=label,
                        legendgroup=label,
                        showlegend=side == 0,
                    )
                )
                fig.add_annotation(x=xs[-1], y=limits[-1][side], text=label, showarrow=False, xanchor="left")
    target = next((r.get("target") for r in points if r.get("target") is not None), None)
    if target is not None:
        source = next((r.get("target_source") for r in points if r.get("target_source")), None)
        label = f"target {_level(target, measure)}" + (f" ({source})" if source else "")
        fig.add_hline(y=target, line={"color": "#b00", "width": 1}, annotation_text=label)
    fig.update_layout(
        title=f"{measure}: funnel plot by provider",
        xaxis_title="cases (denominator)",
        yaxis_title="mean score" if score else "rate, %",
        yaxis={"tickformat": ".2f" if score else ".0%"},
        legend_title_text="",
    )
    return fig


#: The groups a payment chart stacks: where the commissioners' money went (they add up to what they paid)
CHART_GROUPS = (
    ("fee", "Prime's management fee (or Stage 1 fee)"),
    ("gain_loss_prime", "Prime's share of the under- or overspend"),
    ("vat", "VAT the prime cannot recover (to HMRC)"),
    ("subcontractor", "Paid to subcontractors for care"),
    ("suspense", "Held in suspense (an open dispute)"),
    ("held", "With the prime, not yet passed on"),
)


def _payments(components: list[dict[str, Any]], contract: Contract) -> go.Figure:
    """Where the commissioners' money went each year, group by group: the bars stack to what the
    commissioners paid, net (drawn as markers); a bar below zero carries its reason in the hover text
    (the prime bearing its share of an overspend). The same rows as the table above it."""
    del contract
    groups = by_group(components)
    notes = {(c["year"], c["group"]): c["note"] for c in components if c["note"]}
    years = sorted(groups)
    labels = [year_label(y) for y in years]
    bars = []
    for key, label in CHART_GROUPS:
        values = [groups[y].get(key, 0) / 1e8 for y in years]
        if not any(values):
            continue
        hover = [notes.get((y, key), "") for y in years]
        bars.append(go.Bar(name=label, x=labels, y=values, hovertext=hover))
    paid = {y: sum(c["pence"] for c in components if c["year"] == y and c["section"] == PAID) for y in years}
    net = go.Scatter(name="Paid by the commissioners, net", x=labels, y=[paid[y] / 1e8 for y in years], mode="markers")
    fig = go.Figure([*bars, net])
    fig.update_layout(
        barmode="relative",
        title="Where the commissioners' money went, by component and contract year",
        xaxis={"type": "category", "title": {"text": "contract year"}},
        yaxis={"title": {"text": "£ million"}},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def payment_table(components: list[dict[str, Any]], contract: Contract) -> dict[str, Any]:
    """The report's payment table: :func:`component_table`'s lines as cells (£m, a note's number in
    brackets), each section's total, the price for reference, and whether the year adds up."""
    t = component_table(components, contract)
    ys = t["years"]

    def money(pence: int | None, note: int | None = None) -> str:
        return "—" if pence is None else f"{pence / 1e8:,.2f}" + (f" ({note})" if note else "")

    rows: list[list[Any]] = []
    for section in (PAID, WENT):
        for line in (x for x in t["lines"] if x["section"] == section):
            indent = "\u2003" if section == WENT else ""
            rows.append([indent + line["component"], *(money(line["pence"][y], line["note"][y]) for y in ys)])
        rows.append([f"total {section}", *(money(t["totals"][y][section]) for y in ys)])
    rows.append(["price (planned, for reference)", *(money(t["price"][y]) for y in ys)])
    rows.append(["adds up", *("yes" if t["balanced"][y] else "NO" for y in ys)])
    return {"headers": ["£m", *(year_label(y) for y in ys)], "rows": rows, "notes": t["notes"]}


def subcontractor_pay_notes(components: list[dict[str, Any]], cost_by_year: dict[int, float]) -> list[str]:
    """Why subcontractors were paid more or less than their recorded cost, year by year, from the
    payment's own components: what the price left for care after the prime's fee and VAT, and whether
    the gain/loss share paid them their in-scope cost instead."""
    notes = []
    for year, g in sorted(by_group(components).items()):
        cost = cost_by_year.get(year)
        if not cost:
            continue
        paid = g.get("subcontractor", 0) / 100
        head = f"{year_label(year)}: subcontractors were paid £{paid / 1e6:,.1f}m, {paid / cost:.0%} of the "
        head += f"£{cost / 1e6:,.1f}m of care recorded for them. "
        if g.get("gain_loss_prime") or g.get("gain_share") or g.get("loss_share"):
            why = (
                "Under the gain/loss share they are paid their recorded cost of in-scope care (tumour sites in the "
                "contract's scope that year); care outside the scope is in the recorded cost but not paid by "
                "this contract, and the difference from the money for care is shared between the commissioners "
                "and the prime."
            )
        elif not paid:
            why = "Nothing has been passed on to them yet: the year has been paid on account and not reconciled."
        else:
            into = sum(v for k, v in g.items() if k in ("contract_payment", "on_account", "true_up"))
            why = (
                f"The price of £{into / 1e8:,.1f}m, less the prime's fee of "
                f"£{g.get('fee', 0) / 1e8:,.1f}m and £{g.get('vat', 0) / 1e8:,.1f}m of VAT the prime cannot recover, "
                f"left £{paid / 1e6:,.1f}m for care, shared in proportion to each subcontractor's in-scope recorded "
                "cost: a fixed price pays what it pays, whatever the care cost."
            )
        notes.append(head + why)
    return notes


def _charts(data: ReportData) -> dict[str, Markup]:
    """Each chart's HTML by id, made in the order the report shows them (the first carries Plotly's library)."""
    figure = _Figures()
    contract = data.terms.contract
    charts = dict.fromkeys(["flows", *[f"funnel-{m}" for m in FUNNEL_MEASURES], "payments", "tornado"], Markup(""))
    years = sorted(data.cost_by_year)
    cost = go.Bar(x=[year_label(y) for y in years], y=[data.cost_by_year[y] / 1e6 for y in years])
    layout = {
        "title": "Recorded cost by contract year",
        "xaxis": {"type": "category", "title": {"text": "contract year"}},
        "yaxis": {"title": {"text": "£ million"}},
    }
    charts["cost"] = figure(go.Figure(cost, layout=layout), "cost")
    if data.flows:
        charts["flows"] = figure(_sankey(data.flows, contract), "flows")
    for measure in FUNNEL_MEASURES:
        points = [r for r in data.outcomes_by_provider if r["measure"] == measure and r["rate"] is not None]
        if points:
            charts[f"funnel-{measure}"] = figure(_funnel(measure, points, contract), f"funnel-{measure}")
    for key, fig in fair_charts.figures(data.fair).items():
        charts[key] = figure(fig, key)
    if data.components:
        charts["payments"] = figure(_payments(data.components, contract), "payments")
    result = data.viability
    years_run = [y["year"] for y in result["by_year"]]
    fan = fan_figure("Cumulative surplus (+) / deficit (−), £m", years_run, result["_cumulative"])
    charts["fan"] = figure(fan, "fan")
    if result["sensitivity"]:
        title = "Expected funding gap with each risk at its 10th / 90th percentile, £m"
        charts["tornado"] = figure(tornado_figure(title, result["sensitivity"], result["expected_gap_gbp"]), "tornado")
    return charts


# -- layout


def _cell(value: Any) -> Any:
    """A table cell's text: numbers with thousands separators (floats to one place), None as "*"."""
    if value is None:
        return "*"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if _numeric(value):
        return f"{value:,}"
    return value if isinstance(value, str) else str(value)  # str keeps Markup as it is


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: int | None) -> str:
    """A count in running text: "*" if suppressed."""
    return "*" if value is None else f"{value:,}"


def _level(value: float | None, measure: str) -> str:
    """A measure's rate or target: a mean score to two places, a proportion as a percentage."""
    if value is None:
        return "—"
    return f"{value:.2f}" if measure in SCORE_MEASURES else f"{value:.1%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("carecontract.publish", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cell=_cell, shown=_shown, level=_level, fmt=format, year_label=year_label)
    env.tests["numeric"] = _numeric
    return env


_TEMPLATES = _environment()


def render_report(data: ReportData) -> str:
    """The report's HTML from its data."""
    contract = data.terms.contract
    charts = _charts(data)
    return _TEMPLATES.get_template("report.html").render(
        data=data,
        charts=charts,
        funnels=FUNNEL_MEASURES,
        fair_charts=[k for k in charts if k.endswith("-oe") or k.startswith("spc-")],
        targets_rule=targets_rule(contract, Path(data.terms.source).name),
        named=lambda code, role="provider": named(code, contract, role),
        payment_table=payment_table(data.components, contract),
        subcontractor_notes=subcontractor_pay_notes(data.components, data.cost_by_year),
    )


def build_report(
    terms: Terms,
    store: str | Path | Store,
    public: bool = False,
    runs: int = 5000,
    seed: int = 0,
    period: tuple[date, date] | None = None,
    decision_log: str | Path | None = None,
) -> str:
    """The report as one HTML document: :func:`gather_report` then :func:`render_report`."""
    return render_report(gather_report(terms, store, public, runs, seed, period, decision_log))
