"""The synthetic events grouped back into pathways, for the formats that hold one record per pathway.

Why here and not in ``measures.pathways``: the synthetic writers sit below the measures layer. The rule
is the one docs/measures.md states (and the measures implement): a referral, or a diagnosis with no
pathway open, opens a pathway; the first ruling-out or treatment ends it; a referral while it is open
joins it; every other event belongs to the latest pathway opened on or before its date.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from carecontract.records import duck
from carecontract.records.schema import PATHWAY_EVENTS

ENDING = ("cancer_ruled_out", "treatment")
STEPS = ("referral", *PATHWAY_EVENTS)


def connect(events: pa.Table) -> duckdb.DuckDBPyConnection:
    """A connection with ``steps`` (each pathway event with its ``pathway_id``) and ``starts``."""
    con = duck.connect()
    con.register("source_events", events)
    steps = ", ".join(f"'{s}'" for s in STEPS)
    ending = ", ".join(f"'{s}'" for s in ENDING)
    con.execute(
        f"""
        CREATE TEMP TABLE ev AS
        SELECT record_id, CAST(nhs_number AS VARCHAR) AS patient, event_date,
               CAST(event_type AS VARCHAR) AS event_type, CAST(provider_code AS VARCHAR) AS provider_code,
               CAST(commissioner_code AS VARCHAR) AS commissioner_code, CAST(icd10 AS VARCHAR) AS icd10,
               CAST(stage AS VARCHAR) AS stage, CAST(referral_route AS VARCHAR) AS referral_route,
               CAST(modality AS VARCHAR) AS modality, CAST(adjustment_days AS INTEGER) AS adjustment_days
        FROM source_events
        WHERE CAST(event_type AS VARCHAR) IN ({steps}) AND event_date IS NOT NULL AND nhs_number IS NOT NULL
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE starts AS
        WITH ordered AS (
            SELECT *, lag(event_type) OVER (
                PARTITION BY patient ORDER BY event_date,
                CASE event_type WHEN 'referral' THEN 0 WHEN 'diagnosis' THEN 1 ELSE 2 END, record_id
            ) AS previous
            FROM ev WHERE event_type IN ('referral', 'diagnosis', {ending})
        )
        SELECT record_id AS pathway_id, patient, event_date AS start_date, event_type AS opened_by,
               provider_code, commissioner_code, referral_route
        FROM ordered
        WHERE event_type IN ('referral', 'diagnosis') AND (previous IS NULL OR previous IN ({ending}))
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE steps AS
        SELECT s.pathway_id, e.* FROM ev e
        ASOF JOIN starts s ON e.patient = s.patient AND e.event_date >= s.start_date
        """
    )
    return con
