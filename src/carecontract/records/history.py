"""What auditors ask of a versioned store: every version of one record, and every submission's counts.

A record's history is read from the files themselves, not from a log kept beside them: each version
is a row of some submission's events file, each rejected attempt a row of its quarantine file, and
the view's state file says which are no longer current and which submission made them so. Nothing
here shows an NHS number: a version carries the patient's pseudonym (shortened), and a quarantine
row's raw NHS number column is never read.
"""

from __future__ import annotations

from typing import Any

from carecontract.records.store import Store

#: How much of a pseudonym to show: enough to tell two patients apart in one record's history.
PSEUDONYM_SHOWN = 12


def record_history(store: Store, record_id: str) -> list[dict[str, Any]]:
    """Every version of ``record_id`` in ``store``'s view, oldest first, with who submitted it, when,
    and what became of it (current, superseded, withdrawn, held, quarantined, resolved)."""
    con = store.connect()
    try:
        rows = con.execute(
            "WITH b AS (SELECT id, ingested_at, row_number() OVER () AS seq FROM batches), "
            "versions AS ("
            "  SELECT e.batch_id, 'submitted' AS action, e.provider_code AS provider, e.event_type, "
            "    CAST(e.event_date AS VARCHAR) AS event_date, e.patient_id, e.source_file, e.source_line, "
            "    s.status, s.by_batch, s.reasons "
            "  FROM all_events e LEFT JOIN state s ON s.kind = 'event' AND s.batch_id = e.batch_id "
            "    AND s.record_id = e.record_id WHERE e.record_id = $rid "
            "  UNION ALL SELECT s.by_batch, 'withdrawn', e.provider_code, NULL, NULL, NULL, NULL, NULL, "
            "    'withdrawn', NULL, NULL "
            "  FROM state s JOIN all_events e ON s.batch_id = e.batch_id AND s.record_id = e.record_id "
            "  WHERE s.kind = 'event' AND s.status = 'withdrawn' AND s.record_id = $rid "
            "  UNION ALL SELECT q.batch_id, 'quarantined', upper(trim(q.provider_code)), lower(trim(q.event_type)), "
            "    trim(q.event_date), q.patient_id, q.source_file, q.source_line, "
            "    coalesce(s.status, 'open'), s.by_batch, q.reasons "
            "  FROM all_quarantine q "
            "  LEFT JOIN state s ON s.kind = 'quarantine' AND s.batch_id = q.batch_id "
            "    AND s.record_id = trim(q.record_id) WHERE trim(q.record_id) = $rid) "
            "SELECT v.*, b.ingested_at FROM versions v JOIN b ON b.id = v.batch_id "
            "ORDER BY b.seq, v.action <> 'withdrawn', v.source_line",
            {"rid": record_id},
        ).fetchall()
    finally:
        con.close()
    out = []
    for batch, action, provider, event_type, event_date, patient, source, line, status, by, reasons, at in rows:
        out.append(
            {
                "submission": batch,
                "submitted_at": at.isoformat() if at else None,
                "action": action,
                "provider": provider,
                "event_type": event_type,
                "event_date": event_date,
                "patient": patient[:PSEUDONYM_SHOWN] if patient else None,
                "source": f"{source}:{line}" if source and line else source,
                "status": _status(action, status),
                "by_submission": by,
                "reasons": list(reasons or []),
            }
        )
    return out


def _status(action: str, status: str | None) -> str:
    if action == "withdrawn":
        return "withdrawal"
    if action == "quarantined":
        return "quarantined" if status in (None, "open") else "resolved"
    return status or "current"


def submissions(store: Store) -> list[dict[str, Any]]:
    """Each submission in ``store``'s view, in order, with its counts: read = accepted (new + corrected
    + withdrawn + unchanged) + quarantined, and how many earlier events it released or held."""
    out = []
    for seq, batch in enumerate(store.batches(), start=1):
        counts = batch.extra.get("counts") or {"new": batch.accepted}  # a submission from before versions
        out.append(
            {
                "seq": seq,
                "submission": batch.id,
                "submitted_at": batch.ingested_at,
                "providers": batch.extra.get("providers", []),
                "files": batch.sources,
                "read": batch.read,
                "accepted": batch.accepted,
                "quarantined": batch.quarantined,
                **{k: counts.get(k, 0) for k in ("new", "corrected", "withdrawn", "unchanged", "held")},
                "released": counts.get("released", 0),
                "newly_held": counts.get("newly_held", 0),
            }
        )
    return out
