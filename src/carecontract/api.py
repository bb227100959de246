"""The Python API: the handful of calls a notebook needs, each one step of the pipeline.

Why a module of its own: the library is many small modules, each owning one thing, which is right
for the code and wrong for a newcomer who wants to ingest a file and look at the measures. These
functions take plain arguments (paths, ISO dates as strings or dates, a terms file or loaded
:class:`~carecontract.terms.Terms`) and return DataFrames or dataclasses. They are what
``import carecontract`` offers (see ``carecontract/__init__.py``), and what the CLI does too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carecontract.imports.run import ImportResult
from carecontract.imports.run import import_files as _import_files
from carecontract.measures.cube import refresh as _refresh
from carecontract.payments.close import PayRun
from carecontract.payments.settle import Settlement
from carecontract.present import EmptyPeriod
from carecontract.records.ingest import IngestResult
from carecontract.records.ingest import ingest as _ingest
from carecontract.records.quality import QualityReport
from carecontract.records.store import AsAt, Store
from carecontract.synth.economy import generate as generate_economy
from carecontract.terms import Terms, load_terms

if TYPE_CHECKING:
    import pandas as pd

    from carecontract.baseline.compute import Baseline

__all__ = [
    "EmptyPeriod",
    "ImportResult",
    "IngestResult",
    "PayRun",
    "QualityReport",
    "Settlement",
    "Store",
    "Terms",
    "adjusted_measures",
    "break_even",
    "build_baseline",
    "close",
    "compute_measures",
    "explain_payment",
    "generate_economy",
    "history",
    "import_files",
    "ingest",
    "load_terms",
    "money_by_kind",
    "options",
    "pay",
    "quality",
    "report",
    "spc",
    "stress",
    "submissions",
    "synthesise",
    "waterfall",
]

DateLike = date | str
TermsLike = Terms | str | Path


def ingest(
    files: Sequence[str | Path], store: str | Path | Store, *, refresh: bool = True, **options: Any
) -> IngestResult:
    """:func:`carecontract.records.ingest.ingest`, then (unless ``refresh=False``, between a bulk
    load's batches) the new store version's figures saved for the service
    (:func:`carecontract.measures.cube.refresh`), as ``carecontract ingest`` does."""
    result = _ingest(files, store, **options)
    if refresh and not result.no_op:
        _refresh(store)
    return result


def import_files(
    fmt: str, files: Sequence[str | Path], store: str | Path | Store, *, refresh: bool = True, **options: Any
) -> ImportResult:
    """:func:`carecontract.imports.run.import_files`, then (unless ``refresh=False``) the new
    version's figures saved, as ``carecontract import`` does."""
    result = _import_files(fmt, files, store, **options)
    if refresh and not result.ingest.no_op:
        _refresh(store)
    return result


def _date(value: DateLike) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _terms(terms: TermsLike) -> Terms:
    return terms if isinstance(terms, Terms) else load_terms(terms)


def _at(store: str | Path | Store, as_at: AsAt | date) -> str | Path | Store:
    """``store`` read as at ``as_at`` (a date, an ISO date or a submission id); unchanged if None."""
    if as_at is None:
        return store
    return Store(store.root if isinstance(store, Store) else store, as_at)


def quality(
    store: str | Path | Store,
    start: DateLike | None = None,
    end: DateLike | None = None,
    as_at: AsAt | date = None,
) -> QualityReport:
    """The data-quality report of the store (as at ``as_at``), over events dated in [start, end] if given."""
    from carecontract.records.quality import quality as run_quality

    view = _at(store, as_at)
    return run_quality(
        view if isinstance(view, Store) else Store(view),
        _date(start) if start is not None else None,
        _date(end) if end is not None else None,
    )


def submissions(store: str | Path | Store, as_at: AsAt | date = None) -> pd.DataFrame:
    """Every submission to the store (as at ``as_at``), with its counts, as a DataFrame."""
    import pandas as pd

    from carecontract.records.history import submissions as list_submissions

    view = _at(store, as_at)
    return pd.DataFrame(list_submissions(view if isinstance(view, Store) else Store(view)))


def history(store: str | Path | Store, record_id: str) -> pd.DataFrame:
    """Every version of one record: who submitted it, when, what became of it (no NHS numbers)."""
    import pandas as pd

    from carecontract.records.history import record_history

    return pd.DataFrame(record_history(store if isinstance(store, Store) else Store(store), record_id))


def synthesise(
    out: str | Path,
    population: int = 1_100_000,
    years: int = 3,
    seed: int = 0,
    start: DateLike | None = None,
    error_rate: float = 0.0,
    fmt: str = "csv",
) -> list[Path]:
    """Write a synthetic economy's activity files into ``out`` (and a list of its injected errors).

    ``start`` is the first day (default: 1 April, ``years`` before the last one that has ended).
    Returns the activity files, ready for :func:`ingest`; with ``fmt`` a national data set (``"cwt"``,
    ``"cosd"``, ...: :data:`carecontract.synth.formats.KINDS`), that data set's extract, ready for
    ``import_files(fmt, files, store)``.
    """
    from carecontract.synth import formats
    from carecontract.synth.window import check_activity_window
    from carecontract.synth.writer import write_economy

    first = _date(start) if start is not None else None
    if first is not None:
        check_activity_window(first, years)
    economy = generate_economy(population, years, seed, first, error_rate=error_rate)
    if fmt in formats.KINDS:
        return formats.write(fmt, economy.events, Path(out))
    return write_economy(economy, Path(out), fmt)


def compute_measures(
    store: str | Path | Store,
    start: DateLike,
    end: DateLike,
    by: Sequence[str] = (),
    only: Sequence[str] | None = None,
    terms: TermsLike | None = None,
    engine: str = "duckdb",
    as_at: AsAt | date = None,
) -> pd.DataFrame:
    """Outcome measures for cases in [start, end], one row per measure (and breakdown), as a DataFrame.

    ``as_at`` (a date, ``"2025-06-30"`` or a submission id) reads the store as it stood then.

    Columns include ``rate``, its Wilson 95% interval ``ci_low``/``ci_high``, ``numerator``,
    ``denominator``, ``target`` (from ``terms``' outcomes, else England's standards), ``met`` and
    ``target_source`` (which of the two the target is). A period with no events in the store raises
    :class:`~carecontract.present.EmptyPeriod` naming the dates the store holds; a period only partly
    inside them warns.
    """
    import warnings

    import pandas as pd

    from carecontract.measures.compute import compute_measures as compute
    from carecontract.present import check_period
    from carecontract.terms.targets import contract_targets, label_rows

    first, last = _date(start), _date(end)
    view = _at(store, as_at)
    note = check_period(view, first, last)
    if note:
        warnings.warn(note, stacklevel=2)
    contract = _terms(terms).contract if terms is not None else None
    only = list(only) if only else None
    rows = compute(view, first, last, list(by), contract_targets(contract), only, engine=engine)
    return pd.DataFrame(label_rows(rows, contract))


def adjusted_measures(
    store: str | Path | Store,
    start: DateLike,
    end: DateLike,
    by: Sequence[str] = ("provider",),
    only: Sequence[str] | None = None,
    engine: str = "duckdb",
) -> pd.DataFrame:
    """Case-mix adjusted measures (``early_stage_oe``, ...): observed, expected, ``ratio`` with its
    exact 95% interval, the ``raw_rate`` and the ``adjusted_rate`` side by side, and the funnel on the
    ratio scale (docs/measures.md, "Fair comparisons")."""
    import pandas as pd

    from carecontract.measures.compute import events_table, sources
    from carecontract.measures.fair import adjusted

    src = sources(events_table(Store(store) if not isinstance(store, Store) else store, engine=engine), detail=True)  # type: ignore[arg-type]
    try:
        return pd.DataFrame(adjusted(src, _date(start), _date(end), by, only))
    finally:
        src.release()


def spc(
    store: str | Path | Store,
    measure: str,
    start: DateLike,
    end: DateLike,
    terms: TermsLike | None = None,
    log: str | Path | None = None,
    provider: str | None = None,
    engine: str = "duckdb",
    adjusted: bool = False,
) -> pd.DataFrame:
    """The measure's monthly Making Data Count XmR chart as a DataFrame, one row per month.

    The target is the terms' (else England's standard); the chart is rebased only at the dates of
    ``variation`` decisions in the decision ``log`` reading "rebase MEASURE from YYYY-MM-DD". With
    ``adjusted`` it charts the case-mix adjusted rate (O/E × the period's rate; ``basis`` column).
    """
    import pandas as pd

    from carecontract.measures import standards
    from carecontract.measures.compute import events_table, sources
    from carecontract.measures.fair import spc_chart, spc_rows
    from carecontract.measures.spc import rebase_dates
    from carecontract.publish.decisions import DecisionLog
    from carecontract.terms.targets import contract_targets

    first, last = _date(start), _date(end)
    targets = contract_targets(_terms(terms).contract) if terms is not None else {}
    target = targets.get(measure, standards.standard(measure, last))
    cuts = rebase_dates(DecisionLog(log).records(), measure) if log is not None else []
    src = sources(events_table(Store(store) if not isinstance(store, Store) else store, engine=engine), detail=True)  # type: ignore[arg-type]
    try:
        chart = spc_chart(src, measure, first, last, target, cuts, provider, adjusted=adjusted)
        return pd.DataFrame(spc_rows(chart, measure, adjusted))
    finally:
        src.release()


def pay(
    terms: TermsLike,
    store: str | Path | Store,
    periods: list[int] | None = None,
    engine: str = "duckdb",
    until: date | str | None = None,
) -> Settlement:
    """Post what the payment calendar says is due up to ``until`` (default today), as
    ``carecontract pay`` does: payments on account, then each reconciliation on the store as at its
    date with its true-up, any subsequent reconciliation's difference with its restatement notice.

    ``periods`` are contract years by start year (default: every ended year the store holds data
    for); a year not ended or without data is refused (a ``UserError``). Posting is idempotent: run
    again to the same date, nothing new is posted. ``Settlement.ledger()`` is every posting as a
    DataFrame, ``.components(terms.contract)`` where the money went (the ``pay`` table's rows).
    To close a year into the payment book only, on the store as at a chosen date (a statement, no
    payment), use :func:`close`.
    """
    from carecontract.payments.settle import post_until

    day = date.fromisoformat(until) if isinstance(until, str) else until
    return post_until(_terms(terms), store, day, periods, engine)  # type: ignore[arg-type]


def close(
    terms: TermsLike,
    store: str | Path | Store,
    periods: list[int] | None = None,
    engine: str = "duckdb",
    as_at: AsAt | date = None,
) -> PayRun:
    """Close contract years (default: every ended year the store covers) into the payment book as
    statements: what the rules say is due on the store as at ``as_at``, versioned; no payment is
    posted (that is :func:`pay`). Idempotent: an unchanged year is not closed twice.
    ``PayRun.ledger()`` is a DataFrame."""
    from carecontract.payments.close import close_periods

    return close_periods(_terms(terms), _at(store, as_at), periods, engine)


def explain_payment(
    terms: TermsLike, store: str | Path | Store, years: list[int] | None = None, as_at: AsAt | date = None
) -> dict:
    """How each amount of each contract year's payment was computed (default: every ended year with
    data): for each year its steps, each with the formula, the parameters (value and the clause that
    sets them), the measures (numerator, denominator, rate, achievement) and the postings; with the
    as-at and store version the figures were read on. Checked against the payment rules' own postings."""
    from carecontract.payments.trace import explain_payment as trace

    return trace(_terms(terms), _at(store, as_at), years)


def money_by_kind(terms: TermsLike, store: str | Path | Store) -> pd.DataFrame:
    """What each kind of organisation received each contract year from the closed ledger (management
    fees, gain/loss shares and VAT included) and its share of the year's contract value."""
    import pandas as pd

    from carecontract.payments.book import PaymentBook
    from carecontract.publish.money import money_by_kind as by_kind

    t = _terms(terms)
    return pd.DataFrame(by_kind(PaymentBook(store, t).paid_rows(), t.contract))


def build_baseline(
    store: str | Path | Store, terms: TermsLike | None = None, engine: str = "duckdb", as_at: AsAt | date = None
) -> Baseline:
    """Activity, cost, patient flows (and, with ``terms``, payment flows) for the baseline (as at ``as_at``)."""
    from carecontract.baseline.compute import build_baseline as build

    return build(_at(store, as_at), _terms(terms) if terms is not None else None, engine)


def stress(
    terms: TermsLike,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    charts: str | Path | None = None,
) -> dict[str, Any]:
    """Monte Carlo stress test of the contract's life: ``deficit_probability``, the gap, year by year."""
    from carecontract.viability.summary import stress_summary

    return stress_summary(_terms(terms), runs, seed, store, Path(charts) if charts is not None else None)


def waterfall(
    terms: TermsLike,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    method: str = "shapley",
) -> pd.DataFrame:
    """Where the expected funding gap comes from: one row per cause (``gbp``, ``meaning_when_off``),
    then ``base`` and ``total``, which the causes and the base add up to exactly (Shapley by default,
    or ``method="sequential"``; docs/viability.md). ``attrs`` holds the inputs' sources."""
    import pandas as pd

    from carecontract.viability.summary import waterfall_summary

    result = waterfall_summary(_terms(terms), runs, seed, store, method)  # type: ignore[arg-type]
    rows = [
        {"cause": "base", "meaning_when_off": "price against first-year cost", "gbp": result["base_gbp"]},
        *result["contributions"],
        {"cause": "total", "meaning_when_off": "expected funding gap", "gbp": result["total_gbp"]},
    ]
    frame = pd.DataFrame(rows)
    frame.attrs.update({k: result[k] for k in ("method", "runs", "seed", "sources", "warnings")})
    return frame


def break_even(
    terms: TermsLike,
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    appetite: float = 0.10,
) -> pd.DataFrame:
    """Each lever's value at which the probability of a deficit falls to ``appetite``, with its
    interval and the recommended value (``carecontract breakeven``; docs/viability.md)."""
    import pandas as pd

    from carecontract.viability.summary import break_even_summary

    result = break_even_summary(_terms(terms), runs, seed, store, appetite)
    frame = pd.DataFrame(result["levers"])
    frame.attrs.update({k: result[k] for k in ("runs", "seed", "appetite", "sources", "warnings")})
    return frame


def options(
    variants: dict[str, TermsLike],
    runs: int = 10_000,
    seed: int = 0,
    store: str | Path | Store | None = None,
    optimism_bias: float = 0.0,
) -> pd.DataFrame:
    """Options side by side on the same draws: deficit probability, expected and 90th-percentile gap,
    net present cost at the Green Book discount rate (``carecontract options``). ``variants`` maps a
    label to terms (a path, or ``load_terms(path, overrides=[...])`` for a what-if)."""
    import pandas as pd

    from carecontract.viability.summary import options_summary

    result = options_summary([(label, _terms(t)) for label, t in variants.items()], runs, seed, store, optimism_bias)
    frame = pd.DataFrame(result["options"])
    frame.attrs.update({k: result[k] for k in ("runs", "seed", "optimism_bias", "discount", "warnings")})
    return frame


def report(
    terms: TermsLike,
    store: str | Path | Store,
    out: str | Path = "report.html",
    public: bool = False,
    runs: int = 5000,
    as_at: AsAt | date = None,
) -> Path:
    """Write the self-contained HTML report (``public=True`` for the disclosure-controlled edition)."""
    from carecontract.publish.report import build_report

    path = Path(out)
    path.write_text(build_report(_terms(terms), _at(store, as_at), public=public, runs=runs))
    return path
