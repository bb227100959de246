"""Which engine runs the queries: DuckDB on one machine (default) or Apache Spark for national scale.

Every computation is an Ibis expression over the store's events table, so the *same* definitions
run on either engine; only where the events table comes from differs. DuckDB reads the store's
Parquet files in-process. Spark reads the same files (on shared storage for a cluster: see
docs/scale.md) into a DataFrame registered as a view, in local mode unless a master URL is given.
"""

from __future__ import annotations

import os
from functools import cache
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


@cache
def spark_session(master: str | None = None):  # -> pyspark.sql.SparkSession
    """One Spark session per master for the process (starting one costs seconds)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError("the Spark engine needs PySpark: pip install -e '.[spark]'") from None
    cores = os.cpu_count() or 2
    builder = (
        SparkSession.builder.appName("carecontract")
        .master(master or os.environ.get("CARECONTRACT_SPARK_MASTER") or f"local[{cores}]")
        .config("spark.sql.session.timeZone", "UTC")  # dates must not shift with the machine's zone
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, 2 * cores)))
        .config("spark.driver.memory", os.environ.get("CARECONTRACT_SPARK_DRIVER_MEMORY", "4g"))
    )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, bad master URL: one line, not a JVM stack trace
        raise EngineError(f"could not start Spark ({master or 'local'}): {str(exc).splitlines()[0]}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def backend(engine: Engine = "duckdb", spark_master: str | None = None) -> ibis.BaseBackend:
    check_engine(engine)
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master))
    return ibis.duckdb.connect(**duck.settings())  # bounded memory, its own spill folder (records.duck)


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
        frame = session.read.parquet(*files)
        if exclude:
            gone = session.read.parquet(exclude).where("kind = 'event'").select(*key)
            frame = frame.join(gone, key, "left_anti")
        frame.createOrReplaceTempView(name)
        return con.table(name)
    table = con.read_parquet(files)
    if exclude:
        gone = con.read_parquet(exclude)
        table = table.anti_join(gone.filter(gone.kind == "event").select(*key), key)
    return table
