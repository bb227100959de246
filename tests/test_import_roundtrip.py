"""Round trip: import(synth --format cwt / cosd) gives the measures of ingest(synth csv), for the
measures those data sets carry (docs/imports.md, "Round trip"). Counts compared, not rates alone."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import pytest

from carecontract.api import compute_measures
from carecontract.imports.run import import_files
from carecontract.records.ingest import ingest
from carecontract.synth import formats
from carecontract.synth.economy import generate
from carecontract.synth.rates import load_rates
from carecontract.synth.writer import write_economy

PERIOD = ("2022-04-01", "2024-03-31")
CWT_MEASURES = ("fds_28", "cwt_62")  # CWT alone: pathways opened by a referral
COSD_MEASURES = ("early_stage", "emergency_presentation")  # COSD alone: the diagnoses
#: Together: the treatments of pathways with no referral (cancers found in an emergency admission)
#: belong to the pathway COSD's diagnosis opens, so the 31-day standard is complete only with both.
#: early_stage too: CWT's diagnosis (no stage) and COSD's (staged) fall on one day, and the pathway
#: takes the stage of the first diagnosis that has one.
BOTH_MEASURES = (*CWT_MEASURES, "cwt_31", *COSD_MEASURES)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("roundtrip")
    rates = load_rates()
    # CWT holds one referral per pathway record: a second referral while a pathway is open has no CWT form
    rates["pathway_events"]["second_referral_while_open_share"] = 0.0
    economy = generate(20_000, 2, seed=7, start=date(2022, 4, 1), rates=rates)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARECONTRACT_KEY", "test-key-of-at-least-thirty-two-bytes")
        ingest(write_economy(economy, root / "csv"), root / "interchange")
        (cwt_file,) = formats.write("cwt", economy.events, root / "national")
        (cosd_file,) = formats.write("cosd", economy.events, root / "national")
        import_files("cwt", [cwt_file], root / "cwt")
        import_files("cosd", [cosd_file], root / "cosd")
        import_files("cwt", [cwt_file], root / "both")
        import_files("cosd", [cosd_file], root / "both")
    return {name: root / name for name in ("interchange", "cwt", "cosd", "both")}


def _counts(store: Path, only: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = compute_measures(store, *PERIOD, only=list(only))
    return {r.measure: (int(r.numerator), int(r.denominator)) for r in frame.itertuples()}


@pytest.mark.parametrize(
    ("kind", "measures"), [("cwt", CWT_MEASURES), ("cosd", COSD_MEASURES), ("both", BOTH_MEASURES)]
)
def test_import_of_synth_format_gives_the_interchange_measures(stores, kind: str, measures: tuple[str, ...]) -> None:
    expected = _counts(stores["interchange"], measures)
    assert all(d > 20 for _, d in expected.values()), expected  # enough cases to mean something
    assert _counts(stores[kind], measures) == expected
