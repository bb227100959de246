"""The event store: Parquet batch files, a manifest that commits them, and a DuckDB catalog.

Layout of a store directory::

    manifest.json          the only source of truth: which batches are committed
    events/<batch>.parquet accepted, pseudonymised events of one ingest
    quarantine/<batch>.parquet rejected rows as read, with every reason
    catalog.duckdb         convenience views for the DuckDB CLI, rebuilt after each commit

Why a manifest: an ingest writes its Parquet files first and then replaces ``manifest.json``
atomically (write, fsync, rename). A crash at any point before the rename leaves the previous
manifest, so readers see the store exactly as it was; files the crash left behind are swept up
by the next writer. Readers never glob the directories, they read the files the manifest names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from carecontract.errors import UserError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CATALOG = "catalog.duckdb"

#: Typed columns of the event store, in order (SQL types).
EVENT_COLUMNS: dict[str, str] = {
    "record_id": "VARCHAR",
    "patient_id": "VARCHAR",
    "event_date": "DATE",
    "event_type": "VARCHAR",
    "provider_code": "VARCHAR",
    "commissioner_code": "VARCHAR",
    "icd10": "VARCHAR",
    "tumour_site": "VARCHAR",
    "stage": "TINYINT",
    "referral_route": "VARCHAR",
    "modality": "VARCHAR",
    "adjustment_days": "INTEGER",
    "place_of_death": "VARCHAR",
    "usual_residence": "VARCHAR",
    "score": "DOUBLE",
    "cost_gbp": "DECIMAL(14,2)",
    "age": "SMALLINT",
    "sex": "VARCHAR",
    "imd_quintile": "TINYINT",
    "ethnicity": "VARCHAR",
    "batch_id": "VARCHAR",
    "source_file": "VARCHAR",
    "source_row": "BIGINT",
    "source_line": "BIGINT",  # CSV: the physical line the record starts on (the header is line 1)
}


class StoreError(UserError):
    """A store that cannot be used as asked (wrong key, unreadable manifest, ...)."""


@dataclass
class Batch:
    """One committed ingest."""

    id: str
    ingested_at: str
    sources: list[str]
    read: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    events_file: str
    quarantine_file: str
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """A directory of committed batches. Cheap to construct; reads the manifest on demand."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- manifest -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict[str, Any]:
        if not self.exists():
            return {"format": FORMAT_VERSION, "key_fingerprint": None, "batches": []}
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.manifest_path}: unreadable manifest ({exc})") from exc

    def batches(self) -> list[Batch]:
        return [Batch(**b) for b in self.manifest()["batches"]]

    def check_key(self, fingerprint: str) -> None:
        """Refuse to mix pseudonyms made with different keys in one store."""
        stored = self.manifest().get("key_fingerprint")
        if stored and stored != fingerprint:
            raise StoreError(
                f"{self.root}: this store was built with a different pseudonymisation key "
                f"(fingerprint {stored}, yours {fingerprint}); set CARECONTRACT_KEY or "
                "CARECONTRACT_KEY_FILE to the store's key"
            )

    # -- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[BatchWriter]:
        """Exclusive write access: one ingest at a time, stale files from crashes swept first."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "events").mkdir(exist_ok=True)
        (self.root / "quarantine").mkdir(exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._sweep_uncommitted()
            yield BatchWriter(self)

    def _sweep_uncommitted(self) -> None:
        committed = set()
        for batch in self.manifest()["batches"]:
            committed.update({batch["events_file"], batch["quarantine_file"]})
        for folder in ("events", "quarantine"):
            for path in (self.root / folder).iterdir():
                if f"{folder}/{path.name}" not in committed:
                    path.unlink()
        # temporary files of an atomic replace that a crash interrupted (manifest, catalog)
        for pattern in (f".{MANIFEST}.*", f".{CATALOG}.*"):
            for tmp in self.root.glob(pattern):
                tmp.unlink()

    def _commit(self, batch: Batch, key_fingerprint: str) -> None:
        manifest = self.manifest()
        manifest["key_fingerprint"] = manifest.get("key_fingerprint") or key_fingerprint
        manifest["batches"].append(batch.__dict__)
        write_json_atomic(self.manifest_path, manifest)  # the commit point

    def fingerprint(self) -> str:
        """Identifies the store's content: the committed batches (each batch is immutable)."""
        import hashlib

        ids = ",".join(b["id"] for b in self.manifest()["batches"])
        return hashlib.sha256(ids.encode()).hexdigest()[:16]

    # -- reading --------------------------------------------------------------------------------
    def files(self, kind: str) -> list[Path]:
        key = "events_file" if kind == "events" else "quarantine_file"
        return [self.root / b[key] for b in self.manifest()["batches"]]

    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``events``, ``quarantine`` and ``batches``."""
        con = con or duckdb.connect()
        define_views(con, self.files("events"), self.files("quarantine"), self.manifest()["batches"])
        return con

    def event_range(self) -> tuple[Any, Any]:
        """(first, last) accepted event date, or (None, None) for an empty store."""
        con = self.connect()
        try:
            return con.execute("SELECT min(event_date), max(event_date) FROM events").fetchone()
        finally:
            con.close()

    def refresh_catalog(self) -> Path:
        """Rebuild ``catalog.duckdb`` (absolute paths) so analysts can open the store in DuckDB."""
        target = self.root / CATALOG
        tmp = self.root / f".{CATALOG}.{uuid.uuid4().hex}"
        con = duckdb.connect(str(tmp))
        try:
            define_views(
                con,
                [p.resolve() for p in self.files("events")],
                [p.resolve() for p in self.files("quarantine")],
                self.manifest()["batches"],
                persistent=True,
            )
        finally:
            con.close()
        os.replace(tmp, target)
        return target


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` all at once: write a temporary file, fsync, rename, fsync the folder.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BatchWriter:
    """Names the files of a new batch and commits it; nothing is visible before :meth:`commit`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.batch_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.events_file = f"events/{self.batch_id}.parquet"
        self.quarantine_file = f"quarantine/{self.batch_id}.parquet"

    def path(self, relative: str) -> Path:
        return self.store.root / relative

    def commit(self, batch: Batch, key_fingerprint: str) -> None:
        self.store._commit(batch, key_fingerprint)
        with contextlib.suppress(Exception):  # the catalog is a convenience, never the truth
            self.store.refresh_catalog()


def _empty_events_sql() -> str:
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in EVENT_COLUMNS.items())
    return f"SELECT {cols} WHERE false"


def _empty_quarantine_sql() -> str:
    from carecontract.records.schema import ALL_COLUMNS

    cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in ALL_COLUMNS)
    return (
        f"SELECT {cols}, CAST(NULL AS VARCHAR) AS patient_id, CAST(NULL AS VARCHAR[]) AS reasons, "
        "CAST(NULL AS VARCHAR) AS raw_line, CAST(NULL AS BIGINT) AS raw_line_length, "
        "CAST(NULL AS VARCHAR) AS raw_line_sha256, CAST(NULL AS VARCHAR) AS batch_id, "
        "CAST(NULL AS VARCHAR) AS source_file, CAST(NULL AS BIGINT) AS source_row, "
        "CAST(NULL AS BIGINT) AS source_line WHERE false"
    )


def _parquet_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def define_views(
    con: duckdb.DuckDBPyConnection,
    event_files: list[Path],
    quarantine_files: list[Path],
    batches: list[dict[str, Any]],
    persistent: bool = False,
) -> None:
    kind = "VIEW" if persistent else "TEMP VIEW"
    events = (
        f"SELECT * FROM read_parquet({_parquet_list(event_files)}, union_by_name=true)"
        if event_files
        else _empty_events_sql()
    )
    quarantine = (
        f"SELECT * FROM read_parquet({_parquet_list(quarantine_files)}, union_by_name=true)"
        if quarantine_files
        else _empty_quarantine_sql()
    )
    con.execute(f"CREATE OR REPLACE {kind} events AS {events}")
    con.execute(f"CREATE OR REPLACE {kind} quarantine AS {quarantine}")
    rows = [
        (b["id"], b["ingested_at"], json.dumps(b["sources"]), b["read"], b["accepted"], b["quarantined"])
        for b in batches
    ]
    table = "TABLE" if persistent else "TEMP TABLE"
    con.execute(
        f"CREATE OR REPLACE {table} batches (id VARCHAR, ingested_at TIMESTAMP, sources VARCHAR, "
        "read BIGINT, accepted BIGINT, quarantined BIGINT)"
    )
    if rows:
        con.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)", rows)
