"""Shared fixtures: a fixed pseudonymisation key, helpers to write activity files, and the engines.

``engine`` runs a test once per query engine (as OpenSAFELY ehrQL runs each spec test on every
query engine): DuckDB always, Spark marked ``spark`` so ``-m "not spark"`` deselects it. One Spark
session serves the whole run, since starting the JVM costs seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import settings

from carecontract.records.schema import ALL_COLUMNS

# Property tests check what is true, not how fast: a per-example deadline only measures how loaded
# the machine is (CI and a laptop with other work fail at random). Speed lives in benchmarks/.
settings.register_profile("carecontract", deadline=None)
settings.load_profile("carecontract")

#: A valid row template; tests override fields. 9434765919 is the NHS's own worked example.
VALID_ROW = {
    "record_id": "r1",
    "nhs_number": "9434765919",
    "event_date": "2024-01-05",
    "event_type": "referral",
    "provider_code": "RJE",
    "commissioner_code": "05D",
    "referral_route": "urgent_gp",
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets the same key and never touches the user's key file."""
    monkeypatch.setenv("CARECONTRACT_KEY", "test-key-of-at-least-thirty-two-bytes")
    monkeypatch.setenv("CARECONTRACT_KEY_FILE", str(tmp_path / "unused.key"))


@pytest.fixture(scope="session")
def spark() -> object:
    """The process's one local Spark session (skipped without PySpark)."""
    pytest.importorskip("pyspark", reason="pip install -e '.[spark]'")
    from carecontract.engine import spark_session

    return spark_session()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> str:
    """Each query engine by name, for a test that must give the same answers on every one."""
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = ALL_COLUMNS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


CANCER_TERMS = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"


@pytest.fixture(scope="session")
def paid_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic economy (30,000 people, 2017–2019) ingested, with Staffordshire cancer paid."""
    from datetime import date

    from carecontract.payments.book import PaymentBook
    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.terms import load_terms

    out = tmp_path_factory.mktemp("paid")
    files = write_economy(generate(30_000, 3, seed=9, start=date(2017, 4, 1), error_rate=0.01), out / "data")
    ingest(files, out / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"paid"))
    PaymentBook(out / "store", load_terms(CANCER_TERMS)).close([2017, 2018, 2019])
    return out / "store"


# -- a Spark standalone cluster for the run (issue 22; tests/test_spark_cluster.py) --------------
def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it), so a test cluster never meets a real one."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Spark standalone master and one worker (1 core, 1g), each its own process, for the whole run.

    Started once (seconds), on free ports; the daemons are tied to this process, so they die with it
    even if pytest is killed. At the end the driver's session on it is stopped, then the daemons,
    and none may be left running (an orphan JVM fails the run here).
    """
    pytest.importorskip("pyspark", reason="pip install -e '.[spark]'")
    import os
    import sys

    from carecontract.cluster import StandaloneCluster
    from carecontract.engine import spark_master_in_use, stop_spark_session

    folder = tmp_path_factory.mktemp("spark-cluster")
    cluster = StandaloneCluster(folder, port=free_port(), webui_port=free_port(), workers=1, cores=1, memory="1g")
    # the executors' Python must be the driver's; a driver JVM started here gets 1g, not the default 4g;
    # a small economy on one core: Spark's 200 shuffle partitions would only multiply the tasks
    settings = {"PYSPARK_PYTHON": sys.executable, "CARECONTRACT_SPARK_SHUFFLE_PARTITIONS": "2"}
    saved = {name: os.environ.get(name) for name in (*settings, "CARECONTRACT_SPARK_DRIVER_MEMORY")}
    os.environ.update(settings)
    os.environ.setdefault("CARECONTRACT_SPARK_DRIVER_MEMORY", "1g")
    try:
        yield cluster.start(tie_to_parent=True)
    finally:
        if spark_master_in_use() == cluster.url:
            stop_spark_session()
        cluster.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert not cluster.running(), f"Spark daemons left running: {cluster.running()}"
