"""``carecontract appraise``: an options appraisal in HM Treasury's five-case structure.

The seeds record that no business case or options appraisal was published for the Staffordshire
contracts. This module writes one from the terms (and, if given, the store), in the structure the
Green Book's business-case guidance uses (HM Treasury, *The Green Book* 2022, and *Guide to
developing the project business case*, 2018): the **strategic** case (what is bought and why),
the **economic** case (the options and their net present cost at the social time preference
rate, with optimism bias), the **commercial** case (the payment mechanism, risk allocation and
the levers that would make the contract safe), the **financial** case (affordability: the price,
the chance and size of a funding gap and where it comes from) and the **management** case (the
gate, the decision log, what is monitored) — and a section on what the model cannot know.

Every figure is computed here, from the viability package and the baseline, never typed in;
:func:`gather_appraisal` builds plain blocks (paragraphs, tables, lists, charts) and two Jinja2
templates lay the same blocks out as HTML (autoescaped, charts inlined, works offline) and as
Markdown. :func:`appraise` writes both and records the appraisal, with the HTML attached by its
SHA-256, in the hash-chained decision log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from carecontract.baseline.compute import OUT_OF_SCOPE, activity_rows, scope_split, totals_by_year
from carecontract.errors import UserError
from carecontract.publish.decisions import DecisionLog
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.gate import evaluate_gate
from carecontract.terms.loader import Terms
from carecontract.terms.model import MEASURES
from carecontract.viability.discount import OUTSOURCING_OPTIMISM_BIAS, STPR_SCHEDULE
from carecontract.viability.levers import APPETITE
from carecontract.viability.simulate import resolve_inputs
from carecontract.viability.summary import (
    break_even_summary,
    calibrate,
    options_summary,
    stress_summary,
    waterfall_summary,
)

CASES = ("strategic", "economic", "commercial", "financial", "management")


def _m(pounds: float | None) -> str:
    return "—" if pounds is None else f"£{pounds / 1e6:,.1f}m"


def _p(share: float | None, places: int = 1) -> str:
    return "—" if share is None else f"{share:.{places}%}"


@dataclass
class Section:
    """One case of the business case: a title and its blocks, in order."""

    key: str
    title: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append({"kind": "p", "text": text})

    def table(self, headers: list[str], rows: list[list[str]], caption: str = "") -> None:
        self.blocks.append({"kind": "table", "headers": headers, "rows": rows, "caption": caption})

    def items(self, items: list[str]) -> None:
        self.blocks.append({"kind": "list", "items": items})

    def chart(self, figure: Any, element_id: str, caption: str) -> None:
        self.blocks.append({"kind": "chart", "figure": figure, "id": element_id, "caption": caption})


@dataclass
class AppraisalData:
    """The appraisal's sections and the results they were computed from (for --json and the log)."""

    terms: Terms
    generated: datetime
    runs: int
    seed: int
    appetite: float
    optimism_bias: float
    store: str | None
    sections: list[Section]
    results: dict[str, Any]
    unknowns: list[str]

    @property
    def preferred(self) -> str | None:
        return self.results.get("preferred")


def _strategic(terms: Terms, run: Run | None) -> Section:
    c = terms.contract
    s = Section("strategic", "1. Strategic case: what is bought, and why")
    s.p(c.description or f"{c.name}.")
    s.table(
        ["", ""],
        [
            ["Commissioners", ", ".join(f"{x.name} ({x.share:.0%})" for x in c.commissioners)],
            ["Prime provider", f"{c.prime.name} ({c.prime.code})"],
            ["Subcontractors", ", ".join(f"{x.name} ({x.code})" for x in c.subcontractors) or "—"],
            ["Term", f"{c.term.years} years from {c.term.start.isoformat()}"],
            ["Value", f"{_m(float(c.value.total_gbp))} in total"],
        ],
    )
    if c.scope:
        s.table(
            ["from the contract year starting", "tumour sites in scope"],
            [[str(y), "all" if sites == "all" else ", ".join(sites)] for y, sites in sorted(c.scope.items())],
        )
    if c.outcomes:
        s.p("Outcomes the contract pays for (the at-risk share is released on these):")
        s.table(
            ["measure", "target", "weight", "threshold"],
            [
                [o.measure, f"{o.target:g}", f"{o.weight:.0%}", "—" if o.threshold is None else f"{o.threshold:g}"]
                for o in c.outcomes
            ],
        )
    if run is None:
        s.p("No store was given: the baseline of activity and cost is not part of this appraisal.")
        return s
    activity = activity_rows(run.events, terms)
    totals = totals_by_year(activity)
    split = {r["year"]: r for r in scope_split(activity, terms)}
    rows = []
    for year, (events, cost) in totals.items():
        r = split.get(year)
        rows.append(
            [
                str(year),
                f"{events:,}",
                _m(cost),
                _m(r["in_scope_gbp"]) if r else "—",
                *([_m(r["out_of_scope_gbp"][k]) for k in OUT_OF_SCOPE] if r else ["—"] * len(OUT_OF_SCOPE)),
                _m(r["price_gbp"]) if r else "—",
                f"{r['ratio']:.2f}" if r and r["ratio"] is not None else "—",
            ]
        )
    s.p(
        "The baseline recorded in the store, by contract year: all recorded cost, the part in the contract's "
        "scope (subcontractors' activity on tumour sites in scope that year) and why the rest is not, beside "
        "the price."
    )
    s.table(
        [
            "year",
            "events",
            "recorded cost",
            "in scope",
            *(f"out: {k}" for k in OUT_OF_SCOPE),
            "price",
            "in scope ÷ price",
        ],
        rows,
    )
    totals: dict[str, dict[str, float]] = {}
    for r in split.values():
        for provider, cell in r["by"]["provider"].items():
            t = totals.setdefault(provider, {"in scope": 0.0, "out of scope": 0.0})
            t["in scope"] += cell["in scope"]
            t["out of scope"] += cell["out of scope"]
    if totals:
        s.p("By provider, over the contract years recorded:")
        s.table(
            ["provider", "in scope", "out of scope"],
            [[code, _m(t["in scope"]), _m(t["out of scope"])] for code, t in sorted(totals.items())],
        )
    return s


def _economic(options: dict[str, Any], appetite: float) -> tuple[Section, str | None]:
    s = Section("economic", "2. Economic case: the options and what each would cost")
    rate = ", ".join(f"{r:.1%} from year {y}" for y, r in STPR_SCHEDULE[:3])
    low, high = OUTSOURCING_OPTIMISM_BIAS
    s.p(
        "Each option is a set of terms, simulated on the same random draws. Net present cost (NPC) to the "
        f"commissioners is discounted at the Green Book's social time preference rate ({rate}, declining further "
        "after; HM Treasury, The Green Book 2022, Annex A6). 'With bail-out' adds the funding gap, paid as it "
        "opens, as UnitingCare's commissioners faced. First-year care cost is uplifted by an optimism bias of "
        f"{options['optimism_bias']:.0%} (the supplementary guidance gives {low:.0%}–{high:.0%} for outsourcing "
        "operating costs). Benefits (outcomes for patients) are not valued in money: this is a cost and risk "
        "comparison of options that buy the same outcomes."
    )
    rows, safe = [], []
    for r in options["options"]:
        rows.append(
            [
                r["label"],
                f"{_p(r['deficit_probability'])} "
                f"({_p(r['deficit_probability_low'])}–{_p(r['deficit_probability_high'])})",
                _m(r["expected_gap_gbp"]),
                _m(r["gap_p90_gbp"]),
                _m(r["npc_payments_gbp"]),
                _m(r["npc_with_bailout_gbp"]),
            ]
        )
        if r["deficit_probability"] <= appetite:
            safe.append(r)
    s.table(
        [
            "option",
            "P(deficit) (95% interval)",
            "expected gap",
            "90th percentile gap",
            "NPC payments",
            "NPC with bail-out",
        ],
        rows,
    )
    labels = [r["label"] for r in options["options"]]
    years = [y["year"] for y in options["options"][0]["by_year"]]
    s.p("Period by period: the commissioners' mean payment each contract year, and the chance of a deficit so far.")
    s.table(
        ["year", *(f"{x}: payment" for x in labels), *(f"{x}: P(deficit)" for x in labels)],
        [
            [
                str(year),
                *(_m(_year(r, year)["payments_mean_gbp"]) for r in options["options"]),
                *(_p(_year(r, year)["deficit_probability"]) for r in options["options"]),
            ]
            for year in years
        ],
    )
    from types import SimpleNamespace

    from carecontract.viability.charts import options_figure

    figure = options_figure([SimpleNamespace(**r) for r in options["options"]])
    s.chart(figure, "options", "The options side by side: chance of a deficit, expected and 90th-percentile gap")
    preferred = min(safe, key=lambda r: r["npc_with_bailout_gbp"])["label"] if safe else None
    if preferred:
        s.p(
            f"Preferred option: {preferred}, the lowest net present cost with bail-out among the options whose "
            f"chance of a deficit is within the {appetite:.0%} risk appetite."
        )
    else:
        s.p(
            f"No option is within the {appetite:.0%} risk appetite: none should be signed as it stands. The "
            "commercial case gives what each lever would have to be."
        )
    return s, preferred


def _year(option: dict[str, Any], year: int) -> dict[str, Any]:
    """An option's row for a contract year (options of different terms may span different years)."""
    return next(
        (y for y in option["by_year"] if y["year"] == year), {"payments_mean_gbp": None, "deficit_probability": None}
    )


def _commercial(terms: Terms, levers: dict[str, Any]) -> Section:
    c = terms.contract
    s = Section("commercial", "3. Commercial case: payment mechanism, risk allocation, and what would make it safe")
    stages = []
    for st in c.stages:
        if st.kind == "fee":
            stages.append(
                f"{st.name}: fee of {_m(float(st.fee_gbp_per_year))} a year for up to {st.max_years} year(s), "
                "then the gate"
            )
        else:
            stages.append(f"{st.name}: outcomes-based, {st.at_risk_share:.0%} of the budget at risk on the outcomes")
    p = c.payments
    stages.append(f"demand growth funded by the price: {'yes' if p.fund_demand_growth else 'no'}")
    if p.gain_loss_share:
        stages.append(f"gain/loss share: the prime bears {p.gain_loss_share.prime_share:.0%} of an under- or overspend")
    if p.vat:
        stages.append("VAT: " + ", ".join(f"{code} {t}" for code, t in p.vat.items()))
    if p.contingency_share:
        stages.append(f"contingency reserve: {p.contingency_share:.1%} of the price a year")
    if p.risk_corridor:
        stages.append(
            f"risk corridor: ±{p.risk_corridor.width:.1%} of the price, commissioners take "
            f"{p.risk_corridor.commissioner_share:.0%} beyond it"
        )
    if p.management_cap is not None:
        stages.append(f"management cost capped at {p.management_cap:.0%} of income")
    s.items(stages)
    s.p(
        f"Break-even: each lever's value at which the chance of a deficit falls to the {levers['appetite']:.0%} risk "
        "appetite, all else as the terms say, solved with Brent's method on common random numbers; the interval is "
        "the range of values whose deficit probability cannot be told from the appetite at this number of runs."
    )
    rows = []
    for r in levers["levers"]:
        if r["value"] is None:
            value = "—"
        elif r["status"] == "already within appetite":
            value = "as written"
        elif r["lever"] == "term_years":
            value = f"{r['value']:.0f} years"
        elif r["lever"] == "vat_treatment":
            value = "an NHS body as prime"
        else:
            value = _p(r["value"], 2) + (f" ({_m(r['per_year_gbp'])} a year)" if r.get("per_year_gbp") else "")
        solved = r["value_low"] is not None and r["status"] == "solved"
        interval = f"{_p(r['value_low'], 2)}–{_p(r['value_high'], 2)}" if solved else ""
        recommended = _p(r["recommended"], 2) if solved and r["recommended"] is not None else ""
        rows.append(
            [r["meaning"], r["status"], value, interval, recommended, _p(r["probability"]), _p(r["at_current_terms"])]
        )
    s.table(["lever", "status", "value", "interval", "recommended", "P(deficit) there", "P(deficit) now"], rows)
    s.p(
        "Recommended: the value solved at the appetite less two binomial half-widths, so that a fresh set of runs "
        "(or the truth) stays below the appetite; see docs/backtest.md."
    )
    return s


def _financial(terms: Terms, stress: dict[str, Any], waterfall: dict[str, Any]) -> tuple[Section, Any]:
    c = terms.contract
    s = Section("financial", "4. Financial case: affordability, the funding gap and where it comes from")
    s.p(
        f"Over {stress['runs']:,} simulated contract lives (seed {stress['seed']}), the chance of a deficit is "
        f"{_p(stress['deficit_probability'])}; the expected funding gap is {_m(stress['expected_gap_gbp'])} (median "
        f"{_m(stress['gap_p50_gbp'])}, 90th percentile {_m(stress['gap_p90_gbp'])}); the first deficit year "
        f"(median) is {stress['first_deficit_year_p50'] or '—'}. First-year cost from {stress['baseline_cost_source']}."
    )
    s.table(
        ["year", "price", "income (mean)", "care cost (mean)", "surplus (mean)", "P(cumulative deficit)"],
        [
            [
                str(y["year"]),
                _m(float(c.value_per_year()[y["year"]])),
                _m(y["income_mean_gbp"]),
                _m(y["care_cost_mean_gbp"]),
                _m(y["surplus_mean_gbp"]),
                _p(y["deficit_probability"]),
            ]
            for y in stress["by_year"]
        ],
    )
    s.p(
        f"Where the expected gap comes from ({waterfall['method']} attribution: each cause switched off on the same "
        "draws; contributions add up to the total to the penny):"
    )
    rows = [["base: price against first-year cost, every cause off", _m(waterfall["base_gbp"]), ""]]
    rows += [[w["cause"], _m(w["gbp"]), w["meaning_when_off"]] for w in waterfall["contributions"]]
    rows.append(["expected funding gap", _m(waterfall["total_gbp"]), ""])
    s.table(["cause", "contribution", "switched off means"], rows)
    from carecontract.viability.charts import waterfall_figure

    figure = waterfall_figure(f"{c.name}: where the expected funding gap comes from", waterfall)
    s.chart(figure, "waterfall", "The expected funding gap by cause")
    return s, figure


def _risks(section: Section, inputs: Any) -> None:
    """The risks simulated: each input's distribution, its central value and where it came from."""
    rows = []
    for name, dist in inputs.risks.items():
        if dist.dist == "fixed":
            shape = "fixed"
        elif dist.dist in ("uniform", "triangular"):
            shape = f"{dist.dist} {dist.low:g} to {dist.high:g}" + (
                f", mode {dist.mean:g}" if dist.dist == "triangular" else ""
            )
        else:
            shape = f"{dist.dist}, mean {dist.mean:g}, sd {dist.sd:g}"
        rows.append([name, shape, f"{dist.central:,.4g}", (inputs.sources or {}).get(name, "")])
    rows.append(["demand_shock_probability", "fixed", f"{inputs.shock_probability:g}", "terms"])
    section.p("The risks simulated (each drawn independently, per run and year or once per run):")
    section.table(["risk", "distribution", "central value", "source"], rows)


def _gate(section: Section, terms: Terms, run: Run, years: list[int]) -> None:
    """The gate measured on the store's first whole contract year, if the contract has one."""
    c = terms.contract
    if c.fee_stage is None or not years:
        return
    start = c.term.year_start(years[0] - c.term.start.year)
    end = c.term.year_end(years[0] - c.term.start.year)
    try:
        result = evaluate_gate(c, run, start, end)
    except (UserError, ValueError) as exc:
        section.p(f"The gate could not be measured on the store: {exc}")
        return
    section.p(
        f"Measured on the store's first whole contract year ({start.isoformat()} to {end.isoformat()}), the gate is "
        f"{'passed' if result['passed'] else 'not passed'}:"
    )
    section.table(
        ["criterion", "needed", "measured", "passed"],
        [
            [
                r["name"],
                f"{r['direction']} {r['threshold']:g}",
                "—" if r["value"] is None else f"{r['value']:.3g}",
                "yes" if r["passed"] else "no",
            ]
            for r in result["criteria"]
        ],
    )


def _management(terms: Terms, log: DecisionLog | None) -> Section:
    c = terms.contract
    s = Section("management", "5. Management case: the gate, the record, what is monitored")
    fee = c.fee_stage
    if fee:
        conditions = []
        if fee.gate.data_completeness is not None:
            conditions.append(f"data completeness at least {fee.gate.data_completeness:.0%}")
        if fee.gate.data_validity is not None:
            conditions.append(f"data validity at least {fee.gate.data_validity:.0%}")
        conditions += [f"{m} {'at least' if MEASURES[m] else 'at most'} {v:g}" for m, v in fee.gate.measures.items()]
        s.p(
            f"The outcomes stage starts only when the gate is passed, measured from the store: {'; '.join(conditions)}."
        )
    s.p(
        "Outcome measures are computed every period from the activity records (`carecontract measures`), paid "
        "through a balanced double-entry ledger (`carecontract pay`), and published as OCDS releases "
        "(`carecontract publish`). This appraisal is recorded in the hash-chained decision log with its HTML "
        "attached by SHA-256" + (f" ({log.path})." if log else ".")
    )
    return s


def unknowns(terms: Terms, stress: dict[str, Any], from_store: bool) -> list[str]:
    """What the model cannot know: said plainly, in the document."""
    out = [
        "How long the fee stage lasts: the stress test assumes its maximum; a gate passed early changes the "
        "money from then on.",
        "The real cost of the care"
        + (
            ": the first-year cost is the store's recorded in-scope cost, which is only as complete as the "
            "records (see `carecontract quality`)."
            if from_store
            else ": with no store, the first-year cost is an assumption (priced at cost, or the terms' risks)."
        ),
        "The future: demand and cost growth are distributions fitted to a few past years or assumed; a new "
        "treatment, a pandemic or a change in national tariffs is outside them.",
        "Behaviour: how a prime would respond to the outcome payments (selecting patients, recording "
        "differently) is not modelled; outcome achievement is an assumed distribution.",
        "Correlation between risks: each is drawn independently; in a real crisis demand, costs and outcomes "
        "move together, so the tails here are likely too thin.",
        "Management cost and VAT: the prime's real overheads and HMRC's ruling on the structure are known only "
        "after signing (UnitingCare's VAT liability was found after the LLP was formed).",
        "What a collapse would cost beyond the gap: procurement, mobilisation written off, the cost of "
        "re-procuring (UnitingCare's failure cost about £16m) are not in the net present cost.",
        "Benefits to patients are not valued in money: the economic case compares costs and risks of options "
        "buying the same outcomes.",
    ]
    if not stress.get("sensitivity"):
        out.append("No risk in the terms is uncertain: the result is a single projection, not a distribution.")
    return out


def gather_appraisal(
    terms: Terms,
    store: str | Path | Store | None = None,
    variants: list[tuple[str, Terms]] | None = None,
    runs: int = 10_000,
    seed: int = 0,
    appetite: float = APPETITE,
    optimism_bias: float = 0.0,
    corridor: tuple[float, float] | None = (0.02, 0.5),
    log: DecisionLog | None = None,
) -> AppraisalData:
    """Compute every figure of the appraisal from the terms (and the store) and lay out the five cases."""
    run = Run.of(store, terms) if store is not None else None
    calibration = calibrate(terms, run)
    stress = stress_summary(terms, runs, seed, calibration=calibration)
    water = waterfall_summary(terms, runs, seed, calibration=calibration)
    levers = break_even_summary(terms, runs, seed, appetite=appetite, corridor=corridor, calibration=calibration)
    options = options_summary([("as written", terms), *(variants or [])], runs, seed, run, optimism_bias)
    sections = [_strategic(terms, run)]
    economic, preferred = _economic(options, appetite)
    sections.append(economic)
    sections.append(_commercial(terms, levers))
    financial, _figure = _financial(terms, stress, water)
    inputs = calibration.adjust(resolve_inputs(terms.contract, calibration.baseline_cost, calibration.scope_factor))
    _risks(financial, inputs)
    sections.append(financial)
    management = _management(terms, log)
    if run is not None:
        _gate(management, terms, run, calibration.trend.years if calibration.trend else [])
    sections.append(management)
    sources = stress.get("sources") or {}
    results = {
        "stress": stress,
        "waterfall": water,
        "levers": levers,
        "options": options,
        "preferred": preferred,
        "sources": sources,
        "warnings": calibration.warnings,
    }
    return AppraisalData(
        terms=terms,
        generated=datetime.now(UTC),
        runs=runs,
        seed=seed,
        appetite=appetite,
        optimism_bias=optimism_bias,
        store=str(run.store.root) if run else None,
        sections=sections,
        results=results,
        unknowns=unknowns(terms, stress, run is not None),
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("carecontract.publish", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_TEMPLATES = _environment()


def render_html(data: AppraisalData) -> str:
    """The appraisal as one self-contained HTML file (Plotly inlined once)."""
    first = True
    charts: dict[str, Markup] = {}
    for section in data.sections:
        for block in section.blocks:
            if block["kind"] == "chart":
                html = block["figure"].to_html(
                    full_html=False, include_plotlyjs="inline" if first else False, div_id=block["id"]
                )
                charts[block["id"]] = Markup(html)
                first = False
    return _TEMPLATES.get_template("appraisal.html").render(data=data, charts=charts)


def render_markdown(data: AppraisalData) -> str:
    """The appraisal as Markdown (charts as their captions)."""
    return _TEMPLATES.get_template("appraisal.md").render(data=data)


def appraise(
    terms: Terms,
    out: Path,
    store: str | Path | Store | None = None,
    variants: list[tuple[str, Terms]] | None = None,
    runs: int = 10_000,
    seed: int = 0,
    appetite: float = APPETITE,
    optimism_bias: float = 0.0,
    log_path: Path | None = None,
    who: str | None = None,
) -> dict[str, Any]:
    """Write ``appraisal.html`` and ``appraisal.md`` into ``out`` and record the appraisal in the decision log."""
    log = DecisionLog(log_path) if log_path is not None else None
    data = gather_appraisal(terms, store, variants, runs, seed, appetite, optimism_bias, log=log)
    out.mkdir(parents=True, exist_ok=True)
    html, md = out / "appraisal.html", out / "appraisal.md"
    html.write_text(render_html(data))
    md.write_text(render_markdown(data))
    stress = data.results["stress"]
    record = None
    if log is not None:
        preferred = data.preferred or "none within appetite"
        text = (
            f"Options appraisal ({data.runs:,} runs, seed {data.seed}, appetite {data.appetite:.0%}): "
            f"P(deficit) as written {stress['deficit_probability']:.1%}, expected gap "
            f"{_m(stress['expected_gap_gbp'])}; preferred option: {preferred}."
        )
        record = log.append("options_appraisal", text, terms.contract.name, terms.fingerprint, attach=html, who=who)
    return {
        "html": str(html),
        "markdown": str(md),
        "preferred": data.preferred,
        "decision": record,
        "results": {k: v for k, v in data.results.items() if k != "stress"} | {"stress": _plain(stress)},
    }


def _plain(stress: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stress.items() if k not in ("charts",)}
