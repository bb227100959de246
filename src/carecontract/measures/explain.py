"""Why one pathway counted as it did for one measure: clock start, stop, pauses, verdict.

Explanations evaluate the measure's own definition on the one pathway (the same Ibis
expressions that count it), so an explanation can never disagree with the count.
"""

from __future__ import annotations

from typing import Any

from ibis import _

from carecontract.measures.compute import MeasureError, events_table
from carecontract.measures.definitions import MEASURE_IDS, measures
from carecontract.measures.pathways import pathways
from carecontract.records.store import Store


def explain(measure_id: str, store: str | Store, pathway_id: str) -> dict[str, Any]:
    store = store if isinstance(store, Store) else Store(store)
    if measure_id not in MEASURE_IDS or measure_id == "equity_gap":
        valid = ", ".join(m for m in MEASURE_IDS if m != "equity_gap")
        raise MeasureError(f"cannot explain {measure_id!r} for one pathway (valid: {valid})")
    events = events_table(store)
    censor = events.event_date.max().execute()
    measure = measures(censor)[measure_id]
    if measure.source == "pathways":
        table = pathways(events).filter(_.pathway_id == pathway_id)
        what = "pathway (referral record_id)"
    else:
        kind = "death" if measure.source == "deaths" else "patient_experience"
        table = events.filter(_.record_id == pathway_id, _.event_type == kind)
        what = f"{kind} event (record_id)"
    columns = {
        "in_denominator": measure.population,
        "period_date": measure.period_date,
        "counted_value": measure.numerator,
        "provider": measure.provider,
    }
    if measure.clock:
        columns |= {
            "clock_start": measure.clock.start,
            "clock_stop": measure.clock.stop,
            "pauses_days": measure.clock.pauses,
            "clock_days": measure.clock.elapsed,
        }
    rows = table.mutate(**columns).to_pyarrow().to_pylist()
    if not rows:
        kind = (
            "referral"
            if measure.source == "pathways"
            else ("death" if measure.source == "deaths" else "patient_experience")
        )
        some = events.filter(_.event_type == kind).order_by("record_id").select("record_id").limit(3)
        examples = ", ".join(r["record_id"] for r in some.to_pyarrow().to_pylist())
        hint = f"; for example: {examples}" if examples else ""
        raise MeasureError(f"no {what} {pathway_id!r} in {store.root}{hint}")
    row = rows[0]
    row["in_denominator"] = bool(row["in_denominator"])
    out: dict[str, Any] = {"measure": measure_id, "definition": measure.title, "pathway": pathway_id, **row}
    out["explanation"] = _sentence(measure, row)
    if measure.source == "pathways":
        out["events"] = _pathway_events(events, row)
    return out


def _sentence(measure, row: dict[str, Any]) -> str:
    if not row["in_denominator"]:
        return f"Not counted: this case is outside {measure.id}'s population ({measure.title})."
    if measure.clock:
        start, stop, pauses, elapsed = row["clock_start"], row["clock_stop"], row["pauses_days"], row["clock_days"]
        pause_text = f", less {pauses} paused day(s)" if pauses else ""
        verdict = "met" if row["counted_value"] else "not met"
        return (
            f"Clock started {start} and stopped {stop}: {elapsed} day(s){pause_text}; the limit is "
            f"{measure.clock.limit}, so the standard was {verdict}. Counted in the period containing {stop}."
        )
    if measure.kind == "mean":
        return f"Counted with score {row['counted_value']} in the period containing {row['period_date']}."
    verdict = "in the numerator" if row["counted_value"] else "in the denominator only"
    return f"Counted {verdict} in the period containing {row['period_date']}."


def _pathway_events(events, row: dict[str, Any]) -> list[dict[str, Any]]:
    mine = events.filter(_.patient_id == row["patient_id"], _.event_date >= row["referral_date"]).order_by(
        ["event_date", "record_id"]
    )
    picked = mine.select("record_id", "event_date", "event_type", "provider_code", "modality", "adjustment_days")
    out = []
    for event in picked.to_pyarrow().to_pylist():
        if event["event_type"] == "referral" and event["record_id"] != row["pathway_id"]:
            break  # the next pathway starts here
        out.append({k: v for k, v in event.items() if v is not None})
    return out
