"""Spark on a real cluster: a standalone master and worker, each its own process (issue 22).

tests/test_spark.py compares the engines in Spark's local mode, where the executor is a thread of
the driver. Here the same definitions run against ``spark://`` on the run's standalone cluster (the
``spark_cluster`` fixture in conftest.py): the executor is a JVM the worker launched, reading the
store from the filesystem this machine's processes share. One Run on the cluster answers the
measures, the pay run and the baseline, so its pathway tables are built once (Spark costs seconds
per job); each is checked against DuckDB. The cluster's own life is tested too: a killed starter
leaves no JVM behind, and ``carecontract spark-cluster`` starts, reports and stops one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontract.baseline.compute import build_baseline
from carecontract.cli import app
from carecontract.cluster import STATE_FILE, ClusterError, StandaloneCluster
from carecontract.payments.book import PaymentBook
from carecontract.run import Run
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS, free_port

ROOT = Path(__file__).parent.parent
START, END = date(2017, 4, 1), date(2020, 3, 31)
YEARS = [2017, 2018, 2019]
runner = CliRunner()


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _alive(pids: list[int]) -> list[int]:
    """The ids among ``pids`` that are still Spark deploy daemons (read from /proc, not from the module)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.split(") ", 1)[1][:1] != "Z" and b"org.apache.spark.deploy." in command:
            alive.append(pid)
    return alive


def _executors_of(worker: int) -> list[int]:
    """Executor JVMs in the worker's process group, found by scanning /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            group = os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if b"CoarseGrainedExecutorBackend" in command and group == worker:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def cluster_run(paid_store: Path, spark_cluster: StandaloneCluster, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A Run on the cluster over a copy of the paid store without its book, so it is paid afresh there."""
    store = tmp_path_factory.mktemp("on-cluster") / "store"
    shutil.copytree(paid_store, store, ignore=lambda folder, names: ["payments"] if folder == str(paid_store) else [])
    return Run(store, load_terms(CANCER_TERMS), engine="spark", spark_master=spark_cluster.url)


@pytest.mark.spark
def test_the_run_computes_on_the_cluster_not_in_this_process(
    cluster_run: Run, spark_cluster: StandaloneCluster, paid_store: Path
) -> None:
    from carecontract.engine import spark_session

    assert cluster_run.events.count().execute() == Run(paid_store).events.count().execute() > 0
    assert spark_session(spark_cluster.url).sparkContext.master == spark_cluster.url
    status = spark_cluster.status()
    assert status["aliveworkers"] == 1 and [a["name"] for a in status["activeapps"]] == ["carecontract"]
    # the work ran in an executor JVM the worker launched, in its process group
    assert _executors_of(spark_cluster.pids["worker-1"])


@pytest.mark.spark
def test_every_measure_is_identical_on_the_cluster(cluster_run: Run, paid_store: Path) -> None:
    by = ("commissioner", "provider")  # first, so the detailed pathway tables serve the later tests too
    duck = Run(paid_store).measures(START, END, by)
    assert len(duck) > 9 * 4
    assert _sorted(cluster_run.measures(START, END, by)) == _sorted(duck)


@pytest.mark.spark
def test_the_ledger_is_identical_on_the_cluster(cluster_run: Run, paid_store: Path) -> None:
    closed = PaymentBook(cluster_run).close(YEARS)
    assert [c["status"] for c in closed] == ["new"] * 3  # paid afresh on the cluster, not read back
    duck = PaymentBook(paid_store, load_terms(CANCER_TERMS))  # closed on DuckDB by the fixture
    rows = duck.ledger_rows(YEARS)
    assert rows and PaymentBook(cluster_run).ledger_rows(YEARS) == rows
    assert sum(r["pence"] for r in rows) == 0
    assert [c["result"] for c in closed] == [duck.latest(y)["result"] for y in YEARS]


@pytest.mark.spark
def test_the_baseline_is_identical_on_the_cluster(cluster_run: Run, paid_store: Path) -> None:
    PaymentBook(cluster_run).close(YEARS)  # unchanged if the ledger test closed it already
    duck, spark = build_baseline(paid_store, load_terms(CANCER_TERMS)), build_baseline(cluster_run)
    assert _sorted(spark.activity) == _sorted(duck.activity) and duck.activity
    assert _sorted(spark.patient_flows) == _sorted(duck.patient_flows) and duck.patient_flows
    assert _sorted(spark.payment_flows) == _sorted(duck.payment_flows) and duck.payment_flows


@pytest.mark.spark
def test_the_cli_takes_the_cluster_master(paid_store: Path, spark_cluster: StandaloneCluster) -> None:
    args = ["measures", "--store", str(paid_store), "--from", "2018-04-01", "--to", "2019-03-31", "--json"]
    args += ["--by", "provider", "--only", "cwt_62,fds_28"]
    duck = runner.invoke(app, args)
    spark = runner.invoke(app, [*args, "--engine", "spark", "--spark-master", spark_cluster.url])
    assert spark.exit_code == 0, spark.output
    assert json.loads(spark.stdout) == json.loads(duck.stdout) and json.loads(duck.stdout)


@pytest.mark.spark
def test_a_master_nobody_listens_on_is_one_line(paid_store: Path) -> None:
    args = ["measures", "--store", str(paid_store), "--from", "2018-04-01", "--to", "2019-03-31"]
    result = runner.invoke(app, [*args, "--engine", "spark", "--spark-master", f"spark://127.0.0.1:{free_port()}"])
    assert result.exit_code == 2 and "no Spark master answers" in result.output
    assert "Traceback" not in result.output


_STARTER = """
import json, sys, time
from pathlib import Path
from carecontract.cluster import StandaloneCluster
cluster = StandaloneCluster(Path(sys.argv[1]), port=int(sys.argv[2]), webui_port=int(sys.argv[3]))
cluster.start(tie_to_parent=True)
print(json.dumps(cluster.pids), flush=True)
time.sleep(600)
"""


@pytest.mark.spark
def test_a_killed_starter_leaves_no_spark_process_behind(tmp_path: Path) -> None:
    """The daemons die with the process that started them, even one killed without any clean-up."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-c", _STARTER, str(tmp_path), str(free_port()), str(free_port())]
    starter = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    pids: dict[str, int] = {}
    try:
        pids = json.loads(starter.stdout.readline())
        assert sorted(_alive(list(pids.values()))) == sorted(pids.values())  # master and worker up
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        deadline = time.monotonic() + 30
        while _alive(list(pids.values())) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(list(pids.values()))
    finally:
        starter.kill()
        StandaloneCluster(tmp_path, pids=pids).stop()  # only if the test failed: nothing left otherwise


@pytest.mark.spark
def test_spark_cluster_start_status_and_stop_from_the_cli(tmp_path: Path) -> None:
    """``start`` returns with the cluster running (outliving the command), ``stop`` ends it."""
    folder = tmp_path / "cluster"
    ports = ["--port", str(free_port()), "--webui-port", str(free_port())]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = [sys.executable, "-m", "carecontract.cli", "spark-cluster", "start", "--dir", str(folder), *ports, "--json"]
    try:
        started = subprocess.run(start, capture_output=True, text=True, env=env, timeout=180)
        assert started.returncode == 0, started.stderr
        url, pids = json.loads(started.stdout)["url"], json.loads(started.stdout)["pids"]
        assert sorted(_alive(list(pids.values()))) == sorted(pids.values())  # the command has exited
        status = runner.invoke(app, ["spark-cluster", "status", "--dir", str(folder), "--json"])
        state = json.loads(status.stdout)
        assert state["url"] == url and state["master"]["aliveworkers"] == 1 and len(state["running"]) == 2
        stopped = runner.invoke(app, ["spark-cluster", "stop", "--dir", str(folder)])
        assert stopped.exit_code == 0 and url in stopped.stdout
        assert not _alive(list(pids.values())) and not (folder / STATE_FILE).exists()
    finally:
        if (folder / STATE_FILE).exists():
            StandaloneCluster.recorded(folder).stop()


def test_stop_signals_only_recorded_spark_daemons(tmp_path: Path) -> None:
    """A recorded id now used by another process (the ids were reused) is left alone."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / STATE_FILE).write_text(
            json.dumps({"host": "127.0.0.1", "port": 1, "webui_port": 2, "pids": {"master": other.pid}})
        )
        StandaloneCluster.recorded(tmp_path).stop(timeout=1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cluster = StandaloneCluster(tmp_path, port=taken.getsockname()[1], webui_port=free_port())
        with pytest.raises(ClusterError, match="in use"):
            cluster.start()
    assert not cluster.pids


def test_stopping_a_cluster_never_started_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["spark-cluster", "stop", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "no cluster recorded" in result.output


def test_the_master_is_the_one_asked_for_else_spark_submits_else_local(monkeypatch: pytest.MonkeyPatch) -> None:
    from carecontract.engine import SUBMITTED, master_url

    monkeypatch.delenv("CARECONTRACT_SPARK_MASTER", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert master_url() == f"local[{os.cpu_count() or 2}]"
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")  # as spark-submit runs a Python program
    assert master_url() == SUBMITTED  # no master set here: setting one would override spark-submit's
    monkeypatch.setenv("CARECONTRACT_SPARK_MASTER", "yarn")
    assert master_url() == "yarn" and master_url("spark://h:7077") == "spark://h:7077"
