"""Which engine runs the queries: DuckDB on one machine (default) or Apache Spark for national scale.

Every computation is an Ibis expression over the store's events table, so the *same* definitions
run on either engine; only where the events table comes from differs. DuckDB reads the store's
Parquet files in-process. Spark reads the same files (on shared storage for a cluster: see
docs/scale.md) into a DataFrame registered as a view, in local mode unless a master URL is given.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Literal

import ibis
from ibis.expr.types import Table

from carecontract.errors import UserError
from carecontract.records import duck

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")


class EngineError(UserError, ValueError):
    """An engine that cannot be used here, said in one line."""


def check_engine(engine: str) -> None:
    """Raise :class:`EngineError` for a name that is not an engine (before any work is done)."""
    if engine not in ENGINES:
        raise EngineError(f"{engine!r} is not an engine (valid: {', '.join(ENGINES)})")


#: The process's Spark session and the master it was asked for (Spark allows one per process).
_spark: dict[str, object] = {}
_spark_lock = threading.RLock()  # the service's threads must not start two


def spark_session(master: str | None = None):  # -> pyspark.sql.SparkSession
    """The process's one Spark session on ``master`` (see :func:`master_url`), started on first
    use: starting one costs seconds.

    Spark runs one session per process, and ``getOrCreate`` hands back the running one whatever
    master is asked for; so asking for another master stops the running session and starts one
    there, rather than quietly computing on the old master. Tables read on the old session are then
    gone: one master per Run.
    """
    url = master_url(master)
    with _spark_lock:
        if _spark.get("url") == url:
            return _spark["session"]
        return _start_spark(url)


#: What :func:`master_url` answers for a program ``spark-submit`` launched: the master it was given.
SUBMITTED = "(spark-submit)"


def master_url(master: str | None = None) -> str:
    """The master to use: ``master``, else ``CARECONTRACT_SPARK_MASTER``, else the one ``spark-submit``
    gave (EMR steps, Dataproc jobs: setting any master here would override it and run locally),
    else ``local[<cores>]``. ``spark-submit`` runs Python with ``PYSPARK_GATEWAY_PORT`` set."""
    if master or os.environ.get("CARECONTRACT_SPARK_MASTER"):
        return master or os.environ["CARECONTRACT_SPARK_MASTER"]
    return SUBMITTED if os.environ.get("PYSPARK_GATEWAY_PORT") else f"local[{os.cpu_count() or 2}]"


def _start_spark(url: str):  # -> pyspark.sql.SparkSession
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError("the Spark engine needs PySpark: pip install -e '.[spark]'") from None
    _check_master_answers(url)
    cores = os.cpu_count() or 2
    stop_spark_session()
    builder = SparkSession.builder if url == SUBMITTED else SparkSession.builder.master(url)
    builder = (
        builder.appName("carecontract")
        .config("spark.sql.session.timeZone", "UTC")  # dates must not shift with the machine's zone
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # no progress bars over the CLI's output
        .config("spark.driver.memory", os.environ.get("CARECONTRACT_SPARK_DRIVER_MEMORY", "4g"))
    )
    # local mode: twice the cores; a cluster keeps its own setting (spark-defaults.conf; Spark's 200)
    partitions = os.environ.get("CARECONTRACT_SPARK_SHUFFLE_PARTITIONS") or (
        str(max(2, 2 * cores)) if url.startswith("local") else None
    )
    if partitions:
        builder = builder.config("spark.sql.shuffle.partitions", partitions)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, bad master URL: one line, not a JVM stack trace
        raise EngineError(f"could not start Spark ({url}): {str(exc).splitlines()[0]}") from None
    session.sparkContext.setLogLevel("ERROR")
    _spark.update(url=url, session=session)
    return session


def _check_master_answers(url: str) -> None:
    """Refuse a ``spark://`` master nobody listens on at once (Spark itself retries for a minute,
    then fails with a JVM error that does not name the cause)."""
    if not url.startswith("spark://"):
        return
    for address in url.removeprefix("spark://").split(","):  # standby masters: spark://a:7077,b:7077
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                return
        except (OSError, ValueError):
            continue
    raise EngineError(
        f"no Spark master answers at {url}: check the URL, or start one here with `carecontract spark-cluster start`"
    )


def spark_master_in_use() -> str | None:
    """The master of the session :func:`spark_session` started (None: none running)."""
    return _spark.get("url")


def stop_spark_session() -> None:
    """Stop the session :func:`spark_session` started, if any (before its cluster is stopped)."""
    with _spark_lock:
        session = _spark.pop("session", None)
        _spark.pop("url", None)
        if session is not None:
            session.stop()


def _spark_path(path: str) -> str:
    """A store file as Spark must name it: a local path as a ``file:`` URI, since Spark reads a bare
    path on the cluster's default filesystem (HDFS on EMR and Dataproc, DBFS on Databricks), not
    the shared mount the store is on. A path that already has a scheme is left as it is."""
    return path if "://" in path else Path(path).resolve().as_uri()


def backend(engine: Engine = "duckdb", spark_master: str | None = None) -> ibis.BaseBackend:
    check_engine(engine)
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master))
    # bounded memory, its own spill folder (records.duck); and no insertion order to keep, so a
    # temporary table larger than the memory limit streams to disk instead of failing (at 100M events
    # the pathway summary ran out of a 6 GB limit in CREATE TABLE AS with it on). Nothing here reads
    # rows in insertion order: every order the measures need is an ORDER BY or a window's own.
    return ibis.duckdb.connect(**duck.settings(), preserve_insertion_order=False)


def read_events(
    files: list[str],
    engine: Engine = "duckdb",
    spark_master: str | None = None,
    name: str = "events",
    exclude: str | None = None,
) -> Table:
    """The events Parquet files as an Ibis table on the chosen engine, without the event rows a
    store's state file (``exclude``) says are not current (superseded, withdrawn or held)."""
    con = backend(engine, spark_master)
    key = ["batch_id", "record_id"]
    if engine == "spark":
        # Ibis's PySpark read_parquet takes one path; Spark itself reads many
        session = spark_session(spark_master)
        frame = session.read.parquet(*map(_spark_path, files))
        if exclude:
            gone = session.read.parquet(_spark_path(exclude)).where("kind = 'event'").select(*key)
            frame = frame.join(gone, key, "left_anti")
        frame.createOrReplaceTempView(name)
        return con.table(name)
    table = con.read_parquet(files)
    if exclude:
        gone = con.read_parquet(exclude)
        table = table.anti_join(gone.filter(gone.kind == "event").select(*key), key)
    return table
