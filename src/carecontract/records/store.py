"""The event store: Parquet batch files, a manifest that commits them, and a DuckDB catalog.

Layout of a store directory::

    manifest.json          the only source of truth: which submissions (batches) are committed, in order
    events/<batch>.parquet the record versions one submission brought (valid rows, pseudonymised)
    quarantine/<batch>.parquet rejected rows as read, with every reason
    state/<batch>.parquet  which earlier rows are no longer current after that submission (below)
    catalog.duckdb         convenience views for the DuckDB CLI, rebuilt after each commit

Versions. Batch files are never rewritten. A submission that corrects or withdraws a record, that
makes a cross-row rule hold an earlier event back (or release it), or that resubmits a quarantined
record correctly, says so in its *state* file: the whole list, as it stands after that submission,
of (kind, batch, record) rows that are not current, each with its status (``superseded``,
``withdrawn``, ``held`` with reasons, or ``resolved`` for a quarantine row) and the submission that
made it so. Reading the store as at submission *k* is therefore the event files of submissions
1..k minus the rows named in state file *k*: the current read and any as-at read are the same
query on different lists (:class:`Store` with ``as_at``).

Why a manifest: an ingest writes its Parquet files first and then replaces ``manifest.json``
atomically (write, fsync, rename). A crash at any point before the rename leaves the previous
manifest, so readers see the store exactly as it was; files the crash left behind are swept up
by the next writer. Readers never glob the directories, they read the files the manifest names.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from carecontract.errors import UserError
from carecontract.records import duck

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


#: Columns of a state file: the rows of earlier submissions that are not current, and why.
STATE_COLUMNS: dict[str, str] = {
    "kind": "VARCHAR",  # 'event' (a row of an events file) or 'quarantine' (a row of a quarantine file)
    "batch_id": "VARCHAR",  # the submission whose file holds the row
    "record_id": "VARCHAR",
    "status": "VARCHAR",  # superseded | withdrawn | held (events); resolved (quarantine)
    "by_batch": "VARCHAR",  # the submission that made it so
    "reasons": "VARCHAR[]",  # held: the cross-row rules it breaks
}
#: Event-file rows that are no longer the record's current version (a held row still is).
REPLACED = ("superseded", "withdrawn")
#: Store files holding patient-level rows are readable by their owner only (like the key).
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class StoreError(UserError):
    """A store that cannot be used as asked (wrong key, unreadable manifest, ...)."""


AsAt = date | str | None


def parse_as_at(value: date | datetime | str | None) -> AsAt:
    """``None``, a date (an ISO date string becomes one), or a submission: its id, or its number in
    ``carecontract submissions`` (1 the first), as given."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text  # a submission id; checked against the manifest when the store is read


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
    """A directory of committed batches. Cheap to construct; reads the manifest on demand.

    ``as_at`` reads the store as it stood: a date (every submission committed on or before that
    day, UTC) or a submission id (that submission and those before it). ``None``: the latest.
    Every reader (:meth:`batches`, :meth:`files`, :meth:`connect`, :meth:`fingerprint`) sees only
    that view; writing always goes on from the latest.
    """

    def __init__(self, root: str | os.PathLike[str], as_at: date | str | None = None) -> None:
        self.root = Path(root)
        self.as_at = parse_as_at(as_at)

    def at(self, as_at: date | str | None) -> Store:
        """The same store read as at ``as_at`` (``None``: the latest)."""
        return Store(self.root, as_at)

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

    def committed(self) -> list[dict[str, Any]]:
        """The manifest's batches this view includes, in commit order."""
        batches = self.manifest()["batches"]
        if self.as_at is None:
            return batches
        if isinstance(self.as_at, date):
            day = self.as_at.isoformat()
            return [b for b in batches if b["ingested_at"][:10] <= day]
        if self.as_at.isdigit():  # the n-th submission, as `carecontract submissions` numbers them
            n = int(self.as_at)
            if not 1 <= n <= len(batches):
                raise StoreError(f"{self.root}: --as-at {n}: the store has {len(batches)} submission(s)")
            return batches[:n]
        ids = [b["id"] for b in batches]
        if self.as_at not in ids:
            raise StoreError(
                f"{self.root}: --as-at {self.as_at!r} is neither an ISO date (YYYY-MM-DD) nor a submission "
                "id or number of this store (see `carecontract submissions`)"
            )
        return batches[: ids.index(self.as_at) + 1]

    def batches(self) -> list[Batch]:
        return [Batch(**b) for b in self.committed()]

    def version(self) -> str | None:
        """The last submission this view includes (None for an empty view)."""
        committed = self.committed()
        return committed[-1]["id"] if committed else None

    def state_file(self) -> Path | None:
        """The state file of the view's last submission: the rows that are not current (None: all are)."""
        committed = self.committed()
        state = committed[-1].get("extra", {}).get("state_file") if committed else None
        return self.root / state if state else None

    def file_hashes(self) -> dict[str, str]:
        """SHA-256 of every file already submitted (latest view) → the submission that brought it."""
        return {h: b["id"] for b in self.manifest()["batches"] for h in b.get("extra", {}).get("file_hashes", [])}

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
        for folder in FOLDERS:
            (self.root / folder).mkdir(mode=PRIVATE_DIR, exist_ok=True)
            os.chmod(self.root / folder, PRIVATE_DIR)  # stores made before this rule too
        with open(self.root / ".lock", "w") as lock:
            # a second writer waits here for the first to commit, then goes on from its manifest
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._sweep_uncommitted()
            yield BatchWriter(self)

    def _sweep_uncommitted(self) -> None:
        committed = set()
        for batch in self.manifest()["batches"]:
            committed.update({batch["events_file"], batch["quarantine_file"]})
            if batch.get("extra", {}).get("state_file"):
                committed.add(batch["extra"]["state_file"])
        for folder in FOLDERS:
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
        """Identifies the content this view reads: its committed batches (each batch is immutable,
        and a batch's state file fixes what is current after it), so two views over the same
        submissions, whatever their ``as_at`` says, share a fingerprint."""
        ids = ",".join(b["id"] for b in self.committed())
        return hashlib.sha256(ids.encode()).hexdigest()[:16]

    # -- reading --------------------------------------------------------------------------------
    def files(self, kind: str) -> list[Path]:
        key = "events_file" if kind == "events" else "quarantine_file"
        return [self.root / b[key] for b in self.committed()]

    def connect(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``events`` (current), ``quarantine`` (open), ``batches``,
        and, for history and ingest, ``all_events`` (every version) and ``versions`` (current, held too)."""
        con = con or duck.connect()
        define_views(con, self.files("events"), self.files("quarantine"), self.committed(), self.state_file())
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
        con = duck.connect(str(tmp))
        try:
            state = self.state_file()
            define_views(
                con,
                [p.resolve() for p in self.files("events")],
                [p.resolve() for p in self.files("quarantine")],
                self.committed(),
                state.resolve() if state else None,
                persistent=True,
            )
        finally:
            con.close()
        os.replace(tmp, target)
        return target


FOLDERS = ("events", "quarantine", "state")


def make_private(path: Path) -> None:
    """Owner-only permissions for a file of patient-level rows (DuckDB creates files 0644)."""
    os.chmod(path, PRIVATE_FILE)


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
        self.state_file = f"state/{self.batch_id}.parquet"

    def path(self, relative: str) -> Path:
        return self.store.root / relative

    def commit(self, batch: Batch, key_fingerprint: str) -> None:
        for relative in (self.events_file, self.quarantine_file, self.state_file):
            if self.path(relative).exists():
                make_private(self.path(relative))
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


def _empty_state_sql() -> str:
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in STATE_COLUMNS.items())
    return f"SELECT {cols} WHERE false"


def state_sql(state_file: Path | None) -> str:
    """The rows that are not current in a view (an empty relation if every row is)."""
    return f"SELECT * FROM read_parquet({_parquet_list([state_file])})" if state_file else _empty_state_sql()


def _held_as_quarantine_sql() -> str:
    """Held events shown as quarantine rows: typed fields back to text, the pseudonym, no NHS number."""
    from carecontract.records.schema import ALL_COLUMNS

    cols = []
    for c in ALL_COLUMNS:
        if c == "nhs_number" or c not in EVENT_COLUMNS:
            cols.append(f"CAST(NULL AS VARCHAR) AS {c}")
        else:
            cols.append(f"CAST(e.{c} AS VARCHAR) AS {c}")
    return (
        f"SELECT {', '.join(cols)}, e.patient_id, s.reasons, CAST(NULL AS VARCHAR) AS raw_line, "
        "CAST(NULL AS BIGINT) AS raw_line_length, CAST(NULL AS VARCHAR) AS raw_line_sha256, e.batch_id, "
        "e.source_file, e.source_row, e.source_line "
        "FROM all_events e JOIN state s ON s.kind = 'event' AND s.status = 'held' "
        "AND e.batch_id = s.batch_id AND e.record_id = s.record_id"
    )


def define_views(
    con: duckdb.DuckDBPyConnection,
    event_files: list[Path],
    quarantine_files: list[Path],
    batches: list[dict[str, Any]],
    state_file: Path | None = None,
    persistent: bool = False,
) -> None:
    """The views every reader uses: ``all_events`` (every version), ``all_quarantine`` (every
    rejected row), ``versions`` (each record's current version, held or not), ``events`` (current
    and not held: what every figure counts), ``quarantine_rows`` (rejected rows not since
    resubmitted), ``quarantine`` (the open list: those, and held events with their reasons),
    ``state`` and ``batches``."""
    kind = "VIEW" if persistent else "TEMP VIEW"
    all_events = (
        f"SELECT * FROM read_parquet({_parquet_list(event_files)}, union_by_name=true)"
        if event_files
        else _empty_events_sql()
    )
    quarantine_rows = (
        f"SELECT * FROM read_parquet({_parquet_list(quarantine_files)}, union_by_name=true)"
        if quarantine_files
        else _empty_quarantine_sql()
    )
    replaced = ", ".join(f"'{s}'" for s in REPLACED)
    con.execute(f"CREATE OR REPLACE {kind} state AS {state_sql(state_file)}")
    con.execute(f"CREATE OR REPLACE {kind} all_events AS {all_events}")
    con.execute(f"CREATE OR REPLACE {kind} all_quarantine AS {quarantine_rows}")
    if state_file is None:  # nothing superseded, withdrawn, held or resolved: no join to pay for
        con.execute(f"CREATE OR REPLACE {kind} versions AS SELECT * FROM all_events")
        con.execute(f"CREATE OR REPLACE {kind} events AS SELECT * FROM all_events")
        con.execute(f"CREATE OR REPLACE {kind} quarantine_rows AS SELECT * FROM all_quarantine")
        con.execute(f"CREATE OR REPLACE {kind} quarantine AS SELECT * FROM quarantine_rows")
    else:
        con.execute(
            f"CREATE OR REPLACE {kind} versions AS SELECT e.* FROM all_events e ANTI JOIN "
            f"(SELECT batch_id, record_id FROM state WHERE kind = 'event' AND status IN ({replaced})) s "
            "ON e.batch_id = s.batch_id AND e.record_id = s.record_id"
        )
        con.execute(
            f"CREATE OR REPLACE {kind} events AS SELECT e.* FROM all_events e ANTI JOIN "
            "(SELECT batch_id, record_id FROM state WHERE kind = 'event') s "
            "ON e.batch_id = s.batch_id AND e.record_id = s.record_id"
        )
        con.execute(
            f"CREATE OR REPLACE {kind} quarantine_rows AS SELECT q.* FROM all_quarantine q ANTI JOIN "
            "(SELECT batch_id, record_id FROM state WHERE kind = 'quarantine') s "
            "ON q.batch_id = s.batch_id AND trim(q.record_id) = s.record_id"
        )
        con.execute(
            f"CREATE OR REPLACE {kind} quarantine AS SELECT * FROM quarantine_rows "
            f"UNION ALL BY NAME {_held_as_quarantine_sql()}"
        )
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
