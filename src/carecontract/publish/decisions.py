"""A tamper-evident decision log: every record hash-chained to the one before it.

The seeds' campaigners found "no proper record of how the decision to use competitive tendering
was taken, no proper business case" and no consultation. This log makes each such decision a
record that cannot be quietly edited, removed or reordered afterwards:

- each record carries the SHA-256 of the previous record and its own hash over its content, so
  changing any byte breaks its own hash, and removing or reordering records breaks the chain;
- a head file beside the log holds the count and the last hash, so cutting records off the end
  is detected too (publish the head hash — in the OCDS release — to anchor it outside the file);
- attachments are copied in, named by their SHA-256, and re-hashed on verification;
- the head file is only a local check: anyone who rewrites the log can rewrite it too. The anchor
  is the head hash *published* (in the OCDS release): ``verify(expect_head=...)`` fails unless the
  log's chain passes through it, and ``publish`` refuses a log that does not extend the head it
  published last.

Appends are serialised by a lock (``<log>.lock``), so two at once cannot fork the chain, and made
recoverable: the head file is first rewritten (atomically) to name the record about to be added
in full (``pending``), then the record is appended, then the head is moved on. A crash at any point
leaves a state :meth:`DecisionLog.repair` can *prove* — the pending record is in the log exactly as
intended (complete the head), or only a prefix of its line was written (cut it), or it is not there
at all (drop it). Any other difference is reported as tampering and never repaired.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carecontract.errors import UserError
from carecontract.records.store import write_json_atomic

KINDS = ("business_case", "options_appraisal", "consultation", "gate", "variation", "dispute")
GENESIS = "0" * 64


class DecisionLogError(UserError, ValueError):
    """A log that cannot be used as asked (unknown kind, missing attachment, ...)."""


@dataclass
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return self.message if self.line == 0 else f"line {self.line}: {self.message}"  # 0: the log as a whole


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DecisionLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.published_path = self.path.with_name(self.path.name + ".published")
        self.attachments = self.path.with_name(self.path.stem + "-attachments")

    # -- reading

    def records(self) -> list[dict[str, Any]]:
        """The log's records; :class:`DecisionLogError` naming the first line that is not one."""
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_bytes().split(b"\n"), 1):
            if not line.strip():
                continue
            record = _parse(line)
            if record is None:
                raise DecisionLogError(f"{self.path}: line {number} is not a decision record")
            out.append(record)
        return out

    def head(self) -> dict[str, Any] | None:
        """The head file's content; None if there is none; :class:`DecisionLogError` if it is unreadable."""
        if not self.head_path.exists():
            return None
        try:
            head = json.loads(self.head_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DecisionLogError(f"{self.head_path}: not a readable head file (edited or damaged)") from None
        if (
            not isinstance(head, dict)
            or not isinstance(head.get("count"), int)
            or not isinstance(head.get("head"), str)
        ):
            raise DecisionLogError(f"{self.head_path}: not a head file (it needs a count and a head hash)")
        return head

    def published_heads(self) -> list[str]:
        """The head hashes published from this log, oldest first (``<log>.published``, one JSON line
        each). A local reminder only: the anchor is the published release itself."""
        if not self.published_path.exists():
            return []
        heads = []
        for line in self.published_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise DecisionLogError(f"{self.published_path}: a line is not a published head") from None
            if isinstance(entry, dict) and isinstance(entry.get("head"), str):
                heads.append(entry["head"])
        return heads

    def record_published(self, head: str, where: str) -> None:
        """Note that ``head`` was published (in ``where``), so a later publication must extend it."""
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "head": head, "release": where}
        _append_line(self.published_path, json.dumps(entry, sort_keys=True) + "\n")

    # -- adding

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (other appends wait), across processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(
        self,
        kind: str,
        text: str,
        contract: str,
        terms_fingerprint: str,
        attach: str | Path | None = None,
        who: str | None = None,
    ) -> dict[str, Any]:
        if kind not in KINDS:
            raise DecisionLogError(f"unknown kind {kind!r} (valid: {', '.join(KINDS)})")
        if not text.strip():
            raise DecisionLogError("a decision needs its text (--text)")
        source = None if attach is None else Path(attach)
        if source is not None and not source.is_file():
            raise DecisionLogError(f"{source}: no such file to attach")
        with self._locked():
            problems = self.verify()
            if problems:
                raise DecisionLogError(f"{self.path} does not verify, so nothing can be added: {problems[0]}")
            records = self.records()
            attachment = None
            if source is not None:
                digest = _file_sha256(source)
                self.attachments.mkdir(parents=True, exist_ok=True)
                stored = self.attachments / f"{digest[:16]}-{source.name}"
                shutil.copyfile(source, stored)
                attachment = {
                    "name": source.name,
                    "sha256": digest,
                    "bytes": source.stat().st_size,
                    "stored": stored.name,
                }
            record = {
                "seq": len(records) + 1,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "kind": kind,
                "contract": contract,
                "terms_fingerprint": terms_fingerprint,
                "who": who,
                "text": text,
                "attachment": attachment,
                "prev": records[-1]["hash"] if records else GENESIS,
            }
            record["hash"] = _digest(record)
            before = {"count": len(records), "head": record["prev"]}
            write_json_atomic(self.head_path, before | {"pending": record})  # 1. the intent, in full
            _append_line(self.path, _line(record))  # 2. the record
            write_json_atomic(self.head_path, {"count": record["seq"], "head": record["hash"]})  # 3. done
        return record

    # -- checking

    def verify(self, expect_head: str | None = None) -> list[Problem]:
        """Every problem found; an empty list means the log is intact (and, given ``expect_head``,
        that its chain passes through that published hash)."""
        if not self.path.exists():
            if expect_head:
                return [
                    Problem(0, f"the log is missing, so it does not lead to the published head {expect_head[:16]}…")
                ]
            return [] if not self.head_path.exists() else [Problem(0, "the log is missing but its head file exists")]
        problems: list[Problem] = []
        prev, count, hashes = GENESIS, 0, []
        data = self.path.read_bytes()
        try:
            head = self.head()
        except DecisionLogError as exc:
            return [Problem(0, str(exc))]
        pending = head.get("pending") if head else None
        if data and not data.endswith(b"\n"):
            torn = data.rsplit(b"\n", 1)[-1]
            if isinstance(pending, dict) and _line(pending).encode().startswith(torn):
                problems.append(
                    Problem(
                        data.count(b"\n") + 1,
                        "an append was interrupted part-way through writing record "
                        f"{pending.get('seq')}: run `carecontract decisions repair`",
                    )
                )
                data = data[: len(data) - len(torn)]
            else:
                problems.append(
                    Problem(data.count(b"\n") + 1, "the log does not end where a record ends (bytes changed)")
                )
        # split on "\n" only: str.splitlines would also split on (and so hide) a changed "\r", "\x0b" or "\x85"
        for number, raw in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"), 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(Problem(number, "not UTF-8 text (bytes changed)"))
                continue
            if not line.strip():
                problems.append(Problem(number, "blank line"))
                continue
            record = _parse(raw)
            if record is None:
                problems.append(Problem(number, "not a JSON record (edited?)"))
                continue
            count += 1
            if line != _line(record).rstrip("\n"):
                problems.append(Problem(number, "the line is not exactly as written (bytes changed)"))
            if record.get("hash") != _digest(record):
                problems.append(Problem(number, "its content does not match its hash (edited)"))
            if record.get("prev") != prev:
                problems.append(Problem(number, "it does not follow the record before it (removed or reordered)"))
            if record.get("seq") != count:
                problems.append(Problem(number, f"sequence {record.get('seq')} where {count} was expected"))
            attachment = record.get("attachment")
            if attachment:
                stored = self.attachments / str(attachment.get("stored", "")) if isinstance(attachment, dict) else None
                if stored is None or not stored.is_file() or _file_sha256(stored) != attachment.get("sha256"):
                    name = attachment.get("name") if isinstance(attachment, dict) else attachment
                    problems.append(Problem(number, f"attachment {name} is missing or changed"))
            prev = str(record.get("hash", ""))
            hashes.append(prev)
        problems += self._check_head(head, count, prev)
        if expect_head:
            problems += _check_published(expect_head, hashes, count)
        return problems

    def _check_head(self, head: dict[str, Any] | None, count: int, last: str) -> list[Problem]:
        if head is None:
            return [Problem(count, "the head file is missing")]
        pending = head.get("pending")
        if isinstance(pending, dict):
            if head["count"] == count and head["head"] == last:
                return [
                    Problem(
                        count,
                        f"an append of record {pending.get('seq')} was interrupted before it was "
                        "written: run `carecontract decisions repair`",
                    )
                ]
            if head["count"] + 1 == count and last == pending.get("hash"):
                return [
                    Problem(
                        count,
                        f"an append of record {count} was interrupted before its head was updated: "
                        "run `carecontract decisions repair`",
                    )
                ]
        if head["count"] != count or head["head"] != last:
            return [
                Problem(
                    count,
                    f"the log ends at record {count} but its head says {head['count']} "
                    "(records cut off the end, or added by hand)",
                )
            ]
        return []

    def repair(self) -> str:
        """Finish or undo an append a crash interrupted, when the files prove which it was; say what
        was done. Anything else is refused (:class:`DecisionLogError`): a repair never hides tampering."""
        with self._locked():
            head = self.head()
            pending = head.get("pending") if head else None
            if not isinstance(pending, dict):
                problems = self.verify()
                if not problems:
                    return "nothing to repair: the log verifies"
                raise DecisionLogError(f"{self.path} cannot be repaired, only investigated: {problems[0]}")
            data = self.path.read_bytes() if self.path.exists() else b""
            line = _line(pending).encode()
            torn = data.rsplit(b"\n", 1)[-1] if data and not data.endswith(b"\n") else b""
            if torn and line.startswith(torn):
                with open(self.path, "r+b") as handle:  # our own partial write, provably: cut it
                    handle.truncate(len(data) - len(torn))
                    os.fsync(handle.fileno())
                data = data[: len(data) - len(torn)]
                done = f"cut the partly written record {pending.get('seq')}"
            elif data.endswith(line):
                done = f"completed the append of record {pending.get('seq')}"
            else:
                done = f"dropped record {pending.get('seq')}, which was never written"
            before = {k: v for k, v in head.items() if k != "pending"}
            if done.startswith("completed"):
                before = {"count": pending["seq"], "head": pending["hash"]}
            write_json_atomic(self.head_path, before)
            problems = self.verify()
            if problems:
                write_json_atomic(self.head_path, head)  # leave it as found
                raise DecisionLogError(f"{self.path} cannot be repaired, only investigated: {problems[0]}")
            return done


def _parse(raw: bytes) -> dict[str, Any] | None:
    """One line as a record, or None if it is not a JSON object."""
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True) + "\n"


def _append_line(path: Path, line: str) -> None:
    """Append one line in one write, and make it durable before the head moves on."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_published(expected: str, hashes: list[str], count: int) -> list[Problem]:
    """The log must pass through the published head: it is one of its records (given whole, or by at
    least its first 16 characters, as the CLI prints it)."""
    wanted = expected.strip().lower().rstrip("…")
    if len(wanted) < 16:
        return [Problem(0, f"the expected head {expected!r} is too short (give at least 16 hex characters)")]
    found = [i for i, h in enumerate(hashes, 1) if h.startswith(wanted)]
    if not found:
        return [Problem(count, f"the log does not lead to the published head {wanted[:16]}… (history rewritten?)")]
    return []
