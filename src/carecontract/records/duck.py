"""Every DuckDB database the program opens, with bounded memory and a known place to spill.

DuckDB's own default lets each in-memory database take 80% of the machine's RAM and spill to a
``.tmp`` folder in the working directory. One command may open several databases (ingest, the
store's views, the Ibis backend the measures run on), and a Spark JVM may share the machine, so the
default lets a national-scale run (100M events) outgrow the machine instead of spilling. Every
connection is therefore opened here, with:

``memory_limit``
    ``CARECONTRACT_DUCKDB_MEMORY`` (a DuckDB size such as ``4GB`` or ``8GiB``), else
    :data:`DEFAULT_FRACTION` of the machine's physical memory. DuckDB counts its buffer manager
    against this limit (hash tables, sorts, temporary tables, Parquet buffers) and spills to disk
    past it; Arrow results handed to Python are outside it, which is why only small aggregates are
    ever fetched.
``temp_directory``
    a folder of its own per database, under ``CARECONTRACT_DUCKDB_TEMP``, else under
    ``<system temp>/carecontract-duckdb``: where spilled pages go (never the working directory, which
    may be a read-only checkout or the store itself). Its own, because DuckDB databases that share a
    spill folder overwrite each other's files and delete them on close (duckdb/duckdb issue #15173,
    open in DuckDB 2.0; #5878); DuckDB creates the folder at the first spill and removes it on close.
    A folder left by a process that was killed mid-spill is removed by the next process to open a
    database under the same root (a killed 100M run once left 12 GB behind).
``max_temp_directory_size``
    ``CARECONTRACT_DUCKDB_TEMP_MAX`` if set; otherwise DuckDB's default (90% of the free disk).

DuckDB reference: "Configuration > Global configuration options" (``memory_limit``,
``temp_directory``, ``max_temp_directory_size``, ``preserve_insertion_order``) and "Guides >
Performance > How to tune workloads" (DuckDB 1.x/2.0 documentation): the limit applies per database
instance, and ``preserve_insertion_order = false`` lets larger-than-memory statements stream. "Guides >
Performance > Out-of-Memory Issues" (2.0) lists the levers when a query still runs out: the measures
keep the pathway summary's aggregate apart from its joins, and keep a table that runs out all the
same in parts by a hash of its key (``measures.compute._keep_in_parts``); at 100M events in 6 GB the
pay run's pathway summary ran out on two threads and on one.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from carecontract.errors import UserError

MEMORY_ENV = "CARECONTRACT_DUCKDB_MEMORY"
TEMP_ENV = "CARECONTRACT_DUCKDB_TEMP"
TEMP_MAX_ENV = "CARECONTRACT_DUCKDB_TEMP_MAX"
#: Share of physical memory one database may use by default: two at once (e.g. the store's views
#: and the Ibis backend), or one beside a Spark driver, still leave room for Python and the OS.
DEFAULT_FRACTION = 0.4
_NUMBER = itertools.count()  # each database's own spill folder within this process
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*", re.IGNORECASE)


class DuckDBSettingError(UserError, ValueError):
    """A memory or spill setting in the environment that DuckDB could not use, in one line."""


def physical_memory() -> int:
    """Bytes of physical memory on this machine (Linux, macOS: sysconf)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit() -> str:
    """The ``memory_limit`` every connection gets, as DuckDB reads it (e.g. ``'9830MiB'``)."""
    given = os.environ.get(MEMORY_ENV, "").strip()
    if given:
        if not _SIZE.fullmatch(given):
            raise DuckDBSettingError(f"{MEMORY_ENV}={given!r} is not a size (e.g. 4GB, 8GiB, 512MB)")
        return given.replace(" ", "")
    return f"{int(physical_memory() * DEFAULT_FRACTION) // 2**20}MiB"


def temp_root() -> Path:
    """The folder under which every database gets its own spill folder."""
    return Path(os.environ.get(TEMP_ENV, "").strip() or Path(tempfile.gettempdir()) / "carecontract-duckdb")


@cache
def sweep_orphans(root: Path) -> list[Path]:
    """Remove spill folders left by processes that no longer run (killed mid-spill: DuckDB never
    closed them); once per process and root. Returns what was removed."""
    removed = []
    for folder in root.glob("*-*"):
        pid = folder.name.split("-", 1)[0]
        if not (pid.isdigit() and folder.is_dir()) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except (PermissionError, OverflowError):
            continue  # alive (another user's), or not a pid
    return removed


def settings() -> dict[str, Any]:
    """The configuration one new database is opened with (also what the Ibis backend is given):
    call it once per database, as the spill folder is that database's own."""
    root = temp_root()
    try:
        root.mkdir(parents=True, exist_ok=True)  # DuckDB creates the last folder only
    except OSError as exc:
        raise DuckDBSettingError(
            f"cannot use {root} for DuckDB's spill files ({exc.strerror}); set {TEMP_ENV}"
        ) from None
    sweep_orphans(root)
    spill = root / f"{os.getpid()}-{next(_NUMBER)}"
    config: dict[str, Any] = {"memory_limit": memory_limit(), "temp_directory": str(spill)}
    if cap := os.environ.get(TEMP_MAX_ENV, "").strip():
        config["max_temp_directory_size"] = cap
    return config


def connect(database: str = ":memory:", **extra: Any) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with bounded memory and spill to its own folder under :func:`temp_root`.

    ``extra`` adds configuration options (they win over the defaults). A setting DuckDB rejects is a
    :class:`DuckDBSettingError` naming the environment variable, not a traceback.
    """
    config = {**settings(), **extra}
    try:
        con = duckdb.connect(database, config=config)
    except duckdb.Error as exc:
        raise DuckDBSettingError(
            f"DuckDB refused the settings {config} ({str(exc).splitlines()[0]}); "
            f"check {MEMORY_ENV}, {TEMP_ENV} and {TEMP_MAX_ENV}"
        ) from None
    con.execute("SET enable_progress_bar = false")
    return con
