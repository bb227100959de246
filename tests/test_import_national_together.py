"""CWT + COSD + APC + deaths together, as a commissioner receives them: the synthetic economy written
in the four national formats and imported into one store gives the interchange file's measures, for
every measure the four carry between them (docs/imports-apc-deaths-fhir.md, "Together")."""

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
#: Not cwt_31: APC and CWT both record a treatment, nothing in either says it is the other's, and the
#: 31-day standard pairs the n-th treatment with the n-th decision, so APC's copies shift the pairing
#: (docs/imports-apc-deaths-fhir.md, "Together");
#: died_where_usually_lived, patient_experience, equity_gap: not carried by these four.
TOGETHER = ("fds_28", "cwt_62", "early_stage", "emergency_presentation", "usual_place_of_death", "observed_survival_1y")
KINDS = ("cwt", "cosd", "apc", "deaths")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("together")
    rates = load_rates()
    rates["pathway_events"]["second_referral_while_open_share"] = 0.0  # no CWT form for it (test_import_roundtrip)
    rates["pathway_events"]["religious_establishment_share_of_other_deaths"] = 0.0  # no verified ONS code for it
    economy = generate(20_000, 2, seed=7, start=date(2022, 4, 1), rates=rates)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARECONTRACT_KEY", "test-key-of-at-least-thirty-two-bytes")
        ingest(write_economy(economy, root / "csv"), root / "interchange")
        for kind in KINDS:
            (path,) = formats.write(kind, economy.events, root / "national" / kind)
            result = import_files(kind, [path], root / "together")
            assert result.rejected == 0, (kind, result.rejections)
    return {"interchange": root / "interchange", "together": root / "together"}


def _counts(store: Path, only: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = compute_measures(store, *PERIOD, only=list(only))
    return {r.measure: (int(r.numerator), int(r.denominator)) for r in frame.itertuples()}


def test_four_national_formats_together_give_the_interchange_measures(stores):
    expected = _counts(stores["interchange"], TOGETHER)
    assert all(d > 20 for _, d in expected.values()), expected
    assert _counts(stores["together"], TOGETHER) == expected
