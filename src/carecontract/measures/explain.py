"""Why one pathway counted as it did for one measure: clock start, stop, adjustments, verdict.

Explanations evaluate the measure's own definition on the one pathway (the same Ibis
expressions that count it), so an explanation can never disagree with the count. For the 31-day
standard a pathway may hold several cases (each treatment with its decision): all are listed.
"""

from __future__ import annotations

from typing import Any

from ibis import _

from carecontract.measures.compute import MeasureError, events_table
from carecontract.measures.definitions import MEASURE_IDS, measures
from carecontract.measures.pathways import STEP_EVENTS, build
from carecontract.records.store import Store


def explain(measure_id: str, store: str | Store, pathway_id: str) -> dict[str, Any]:
    store = store if isinstance(store, Store) else Store(store)
    if measure_id not in MEASURE_IDS or measure_id == "equity_gap":
        valid = ", ".join(m for m in MEASURE_IDS if m != "equity_gap")
        raise MeasureError(f"cannot explain {measure_id!r} for one pathway (valid: {valid})")
    events = events_table(store)
    censor = events.event_date.max().execute()
    measure = measures(censor)[measure_id]
    built = build(events)
    asked = pathway_id
    if measure.source in ("pathways", "treatments"):
        pathway_id = _pathway_of(events, pathway_id)
        table = (built.pathways if measure.source == "pathways" else built.treatments).filter(
            _.pathway_id == pathway_id
        )
        what = "pathway (the record_id of its referral, or of a diagnosis with no referral)"
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
            "calendar_days": measure.clock.calendar_days,
            "pauses_days": measure.clock.pauses,
            "clock_days": measure.clock.elapsed,
        }
    if measure.source == "treatments":
        table = table.order_by("treatment_number")
    rows = table.mutate(**columns).to_pyarrow().to_pylist()
    if (
        not rows
        and measure.source == "treatments"
        and built.pathways.filter(_.pathway_id == pathway_id).count().execute()
    ):
        pathway = built.pathways.filter(_.pathway_id == pathway_id).to_pyarrow().to_pylist()[0]
        out = {"measure": measure_id, "definition": measure.title, "pathway": pathway_id, "in_denominator": False}
        out["explanation"] = "Not counted: this pathway has no treatment yet."
        out["cases"] = []
        out["events"] = _pathway_events(events, pathway)
        return out
    if not rows:
        kind = (
            "referral"
            if measure.source in ("pathways", "treatments")
            else ("death" if measure.source == "deaths" else "patient_experience")
        )
        some = events.filter(_.event_type == kind).order_by("record_id").select("record_id").limit(3)
        examples = ", ".join(r["record_id"] for r in some.to_pyarrow().to_pylist())
        hint = f"; for example: {examples}" if examples else ""
        raise MeasureError(f"no {what} {pathway_id!r} in {store.root}{hint}")
    for row in rows:
        row["in_denominator"] = bool(row["in_denominator"])
        row["explanation"] = _sentence(measure, row)
    row = rows[0]
    out: dict[str, Any] = {"measure": measure_id, "definition": measure.title, "pathway": pathway_id, **row}
    if asked != pathway_id:
        out["asked_for"] = asked  # an event of the pathway (a second referral, say), not the one that opened it
    if measure.source == "treatments":
        out["cases"] = rows
        out["explanation"] = " ".join(f"Treatment {r['treatment_number']}: {r['explanation']}" for r in rows)
    if measure.source in ("pathways", "treatments"):
        out["events"] = _pathway_events(events, row)
    return out


def _pathway_of(events, record_id: str) -> str:
    """The pathway a record belongs to: itself if it opened one; else the pathway it was counted in
    (a referral while a pathway was open belongs to that pathway). Unknown ids are returned as given."""
    from carecontract.measures.pathways import pathway_starts, steps_of

    found = steps_of(events, pathway_starts(events)).filter(_.record_id == record_id).select("pathway_id")
    rows = found.to_pyarrow().to_pylist()
    return rows[0]["pathway_id"] if rows else record_id


def _sentence(measure, row: dict[str, Any]) -> str:
    if not row["in_denominator"]:
        return f"Not counted: this case is outside {measure.id}'s population ({measure.title})."
    if measure.clock:
        start, stop, pauses, elapsed = row["clock_start"], row["clock_stop"], row["pauses_days"], row["clock_days"]
        calendar = row["calendar_days"]
        if calendar < 0:
            wait = f"{calendar} calendar day(s): the stop is dated before the start, so the wait counts as 0 days"
        elif pauses:
            wait = (
                f"{calendar} calendar day(s), less {pauses} day(s) of adjustments inside the clock = {elapsed} day(s)"
            )
        else:
            wait = f"{calendar} day(s), with no adjustment inside the clock"
        verdict = "met" if row["counted_value"] else "not met"
        return (
            f"Clock started {start} and stopped {stop}: {wait}; the limit is {measure.clock.limit} day(s), "
            f"so the standard was {verdict}. Counted in the period containing {stop}."
        )
    if measure.kind == "mean":
        return f"Counted with score {row['counted_value']} in the period containing {row['period_date']}."
    verdict = "in the numerator" if row["counted_value"] else "in the denominator only"
    return f"Counted {verdict} in the period containing {row['period_date']}."


def _pathway_events(events, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The pathway's own events: from the event that opened it to the next pathway's opening."""
    from carecontract.measures.pathways import pathway_starts

    starts = pathway_starts(events).filter(_.pathway_id == row["pathway_id"]).to_pyarrow().to_pylist()
    if not starts:
        return []
    start, following = starts[0]["start_date"], starts[0]["next_start"]
    mine = events.filter(_.patient_id == row["patient_id"], _.event_date >= start)
    if following is not None:
        mine = mine.filter(_.event_date < following)
    mine = mine.filter(_.event_type.isin(PATHWAY_EVENT_TYPES)).order_by(["event_date", "record_id"])
    picked = mine.select(
        "record_id", "event_date", "event_type", "provider_code", "referral_route", "modality", "adjustment_days"
    )
    return [{k: v for k, v in event.items() if v is not None} for event in picked.to_pyarrow().to_pylist()]


#: What an explanation lists (deaths, surveys and end-of-life care are not steps of the pathway).
PATHWAY_EVENT_TYPES = (*STEP_EVENTS, "emergency_admission")
