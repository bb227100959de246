"""A tamper-evident decision log: every record hash-chained to the one before it.

The seeds' campaigners found "no proper record of how the decision to use competitive tendering
was taken, no proper business case" and no consultation. This log makes each such decision a
record that cannot be quietly edited, removed or reordered afterwards:

- each record carries the SHA-256 of the previous record and its own hash over its content, so
  changing any byte breaks its own hash, and removing or reordering records breaks the chain;
- a head file beside the log holds the count and the last hash, so cutting records off the end
  is detected too (publish the head hash — in the OCDS release — to anchor it outside the file);
- attachments are copied in, named by their SHA-256, and re-hashed on verification.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carecontract.errors import UserError
from carecontract.records.store import write_json_atomic

KINDS = ("business_case", "options_appraisal", "consultation", "gate", "variation")
GENESIS = "0" * 64


class DecisionLogError(UserError, ValueError):
    """A log that cannot be used as asked (unknown kind, missing attachment, ...)."""


@dataclass
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


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
        self.attachments = self.path.with_name(self.path.stem + "-attachments")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

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
        problems = self.verify()
        if problems:
            raise DecisionLogError(f"{self.path} does not verify, so nothing can be added: {problems[0]}")
        records = self.records()
        attachment = None
        if attach is not None:
            source = Path(attach)
            if not source.is_file():
                raise DecisionLogError(f"{source}: no such file to attach")
            digest = _file_sha256(source)
            self.attachments.mkdir(parents=True, exist_ok=True)
            stored = self.attachments / f"{digest[:16]}-{source.name}"
            shutil.copyfile(source, stored)
            attachment = {"name": source.name, "sha256": digest, "bytes": source.stat().st_size, "stored": stored.name}
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        write_json_atomic(self.head_path, {"count": record["seq"], "head": record["hash"]})
        return record

    def verify(self) -> list[Problem]:
        """Every problem found; an empty list means the log is intact."""
        if not self.path.exists():
            return [] if not self.head_path.exists() else [Problem(0, "the log is missing but its head file exists")]
        problems: list[Problem] = []
        prev, count = GENESIS, 0
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            problems.append(Problem(data.count(b"\n") + 1, "the log does not end where a record ends (bytes changed)"))
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
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                problems.append(Problem(number, "not a JSON record (edited?)"))
                continue
            count += 1
            if line != json.dumps(record, sort_keys=True):
                problems.append(Problem(number, "the line is not exactly as written (bytes changed)"))
            if record.get("hash") != _digest(record):
                problems.append(Problem(number, "its content does not match its hash (edited)"))
            if record.get("prev") != prev:
                problems.append(Problem(number, "it does not follow the record before it (removed or reordered)"))
            if record.get("seq") != count:
                problems.append(Problem(number, f"sequence {record.get('seq')} where {count} was expected"))
            attachment = record.get("attachment")
            if attachment:
                stored = self.attachments / attachment.get("stored", "")
                if not stored.is_file() or _file_sha256(stored) != attachment.get("sha256"):
                    problems.append(Problem(number, f"attachment {attachment.get('name')} is missing or changed"))
            prev = record.get("hash", "")
        head = json.loads(self.head_path.read_text()) if self.head_path.exists() else None
        if head is None:
            problems.append(Problem(count, "the head file is missing"))
        elif head.get("count") != count or head.get("head") != prev:
            problems.append(
                Problem(
                    count,
                    f"the log ends at record {count} but its head says {head.get('count')} "
                    "(records cut off the end, or added by hand)",
                )
            )
        return problems
