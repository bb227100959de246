"""carecontract: run, pay and stress-test outcomes-based prime-provider care contracts.

In a notebook, ``import carecontract as cc`` gives the pipeline step by step::

    files = cc.synthesise("data", population=100_000, years=3, start="2022-04-01")
    cc.ingest(files, "store"); cc.quality("store")
    cc.import_files("cwt", ["cwt-extract.csv"], "store")   # a national data set's extract (docs/imports.md)
    cc.compute_measures("store", "2024-04-01", "2025-03-31", by=["provider"])   # a DataFrame
    terms = cc.load_terms("contracts/staffordshire-cancer.yaml")
    cc.pay(terms, "store")   # through the payment calendar, as `carecontract pay`
    cc.stress(terms); cc.report(terms, "store", "report.html")

The names are defined in :mod:`carecontract.api` and loaded on first use, so ``import
carecontract`` (and the ``carecontract --version`` that needs it) stays fast. ``measures``,
``baseline`` and ``synth`` name subpackages, so those steps are ``compute_measures``,
``build_baseline`` and ``synthesise``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: The public API: every name here is importable as ``from carecontract import NAME``.
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

if TYPE_CHECKING:
    from carecontract.api import (
        EmptyPeriod,
        ImportResult,
        IngestResult,
        PayRun,
        QualityReport,
        Settlement,
        Store,
        Terms,
        adjusted_measures,
        break_even,
        build_baseline,
        close,
        compute_measures,
        explain_payment,
        generate_economy,
        history,
        import_files,
        ingest,
        load_terms,
        money_by_kind,
        options,
        pay,
        quality,
        report,
        spc,
        stress,
        submissions,
        synthesise,
        waterfall,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from carecontract import api

        return getattr(api, name)
    raise AttributeError(f"module 'carecontract' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
