"""The synthetic economy as a Cancer Waiting Times extract (the importer's CSV, data set v12.1).

One record per pathway (its first definitive treatment, CANCER TREATMENT EVENT TYPE 01, or none yet),
and one per subsequent treatment (02), each field set as a provider would set it from the pathway's
events (the code tables are the importer's, :mod:`carecontract.imports.cwt`):

- the referral's route → PRIORITY TYPE CODE, SOURCE OF REFERRAL FOR OUT-PATIENTS, the referral type,
  and, for an upgrade, the CONSULTANT UPGRADE DATE on the day of the referral;
- WAITING TIME ADJUSTMENT (FIRST SEEN): the days of the adjustments dated from the clock start up to
  first seen (the data set's definition); WAITING TIME ADJUSTMENT (TREATMENT): those dated from the
  decision to treat up to its treatment;
- the faster diagnosis pathway's end (urgent, screening and breast symptomatic referrals only): the
  first diagnosis or ruling-out, reason 03 or 01;
- the n-th decision to treat with the n-th treatment.

What CWT cannot say is left out: costs, demographics, a second referral made while the pathway was
open (one referral a record), and pathways with no referral and no treatment (no CWT record).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from carecontract.imports import cwt as spec
from carecontract.synth.formats.pathways import connect

FILE = "cwt.csv"
#: The interchange route → (PRIORITY TYPE CODE, SOURCE OF REFERRAL FOR OUT-PATIENTS, referral type).
ROUTE_CODES = {
    "urgent_gp": ("3", "03", ""),
    "breast_symptomatic": ("3", "03", spec.BREAST_SYMPTOMS_NOT_SUSPECTED),
    "screening": ("3", spec.SCREENING, ""),
    "upgrade": ("1", "05", ""),
    "other": ("2", "03", ""),
    "emergency": ("2", "01", ""),
}
#: The interchange modality → the CANCER TREATMENT MODALITY code a provider would most often record for it.
MODALITY_CODES = {
    "surgery": "01",
    "chemotherapy": "02",
    "hormone": "03",
    "radiotherapy": "05",
    "immunotherapy": "15",
    "active_monitoring": "08",
    "palliative": "07",
}
FDS = ("urgent_gp", "screening", "breast_symptomatic")


def site(provider: str | None) -> str:
    """An NHS trust's first site (RJE → RJE01); other organisations as they are."""
    return f"{provider}01" if provider and len(provider) == 3 and provider[0] == "R" else (provider or "")


def _pathways(con) -> list[tuple]:
    fds = ", ".join(f"'{r}'" for r in FDS)
    return con.execute(
        f"""
        WITH first AS (
            SELECT pathway_id,
                   min(event_date) FILTER (event_type = 'referral') AS referred,
                   min(event_date) FILTER (event_type = 'first_seen') AS seen,
                   min(event_date) FILTER (event_type = 'diagnosis') AS diagnosed,
                   arg_min(icd10, event_date) FILTER (event_type = 'diagnosis') AS icd10,
                   min(event_date) FILTER (event_type = 'cancer_ruled_out') AS ruled_out,
                   min(event_date) FILTER (event_type = 'decision_to_treat') AS decided,
                   min(event_date) FILTER (event_type = 'treatment') AS treated
            FROM steps GROUP BY pathway_id
        ), seen_by AS (
            SELECT *, coalesce(seen, least(diagnosed, ruled_out, decided, treated)) AS seen_by FROM first
        ), adjusted AS (
            SELECT p.pathway_id, sum(s.adjustment_days) AS days
            FROM seen_by p JOIN steps s ON s.pathway_id = p.pathway_id AND s.event_type = 'clock_adjustment'
            WHERE s.event_date >= p.referred AND s.event_date < p.seen_by
            GROUP BY p.pathway_id
        )
        SELECT s.pathway_id, s.patient, s.provider_code, s.commissioner_code, s.referral_route,
               p.referred, p.seen, a.days, p.diagnosed, p.icd10, p.ruled_out,
               s.referral_route IN ({fds}) AS fds
        FROM starts s JOIN seen_by p USING (pathway_id) LEFT JOIN adjusted a USING (pathway_id)
        ORDER BY s.pathway_id
        """
    ).fetchall()


def _treatments(con) -> dict[str, list[tuple]]:
    rows = con.execute(
        """
        WITH d AS (
            SELECT pathway_id, event_date, row_number() OVER (PARTITION BY pathway_id ORDER BY event_date, record_id) n
            FROM steps WHERE event_type = 'decision_to_treat'
        ), t AS (
            SELECT pathway_id, event_date, modality, provider_code,
                   row_number() OVER (PARTITION BY pathway_id ORDER BY event_date, record_id) n
            FROM steps WHERE event_type = 'treatment'
        ), pairs AS (
            SELECT coalesce(d.pathway_id, t.pathway_id) AS pathway_id, coalesce(d.n, t.n) AS n,
                   d.event_date AS decided, t.event_date AS treated, t.modality, t.provider_code
            FROM d FULL JOIN t ON d.pathway_id = t.pathway_id AND d.n = t.n
        )
        SELECT p.pathway_id, p.n, p.decided, p.treated, p.modality, p.provider_code,
               (SELECT sum(a.adjustment_days) FROM steps a
                WHERE a.pathway_id = p.pathway_id AND a.event_type = 'clock_adjustment'
                  AND a.event_date >= p.decided AND a.event_date < p.treated) AS days
        FROM pairs p ORDER BY p.pathway_id, p.n
        """
    ).fetchall()
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


def write(events: pa.Table, out: Path) -> list[Path]:
    con = connect(events)
    try:
        pathways = _pathways(con)
        treatments = _treatments(con)
    finally:
        con.close()
    path = out / FILE
    with open(path, "w", newline="") as handle:
        rows = csv.DictWriter(handle, fieldnames=spec.COLUMNS, lineterminator="\n")
        rows.writeheader()
        for pathway_id, patient, provider, commissioner, route, referred, seen, days, dx, icd, ro, fds in pathways:
            first = {c: "" for c in spec.COLUMNS} | {
                spec.NHS_NUMBER: patient,
                spec.PROVIDER: provider,
                spec.COMMISSIONER: commissioner,
                spec.PATHWAY: pathway_id,
                spec.DIAGNOSIS: icd or "",
            }
            if referred is not None:
                priority, source, kind = ROUTE_CODES[route]
                first |= {spec.START: referred, spec.PRIORITY: priority, spec.SOURCE: source, spec.REFERRAL_TYPE: kind}
                if route == "upgrade":
                    first[spec.UPGRADE] = referred
                if seen is not None:
                    first[spec.FIRST_SEEN] = seen
                if days:
                    first |= {spec.FIRST_SEEN_ADJUSTMENT: days, spec.FIRST_SEEN_ADJUSTMENT_REASON: "3"}
                ends = [(d, r) for d, r in ((dx, "03"), (ro, "01")) if d is not None]
                if fds and ends:
                    end, reason = min(ends)
                    first |= {spec.FDS_END: end, spec.FDS_END_REASON: reason}
            # a subsequent decision with no treatment yet has no record of its own here
            pairs = [p for p in treatments.get(pathway_id, []) if p[0] == 1 or p[2] is not None]
            if referred is None and not pairs:
                continue  # no referral and no treatment: the data set has no record of it
            records = [first] + [
                {c: first[c] for c in (spec.NHS_NUMBER, spec.PROVIDER, spec.COMMISSIONER, spec.PATHWAY)}
                for _ in pairs[1:]
            ]
            for record, (n, decided, treated, modality, treater, adjusted) in zip(records, pairs, strict=False):
                record |= {spec.DECISION: decided or ""}
                if treated is not None:
                    record |= {
                        spec.EVENT_TYPE: spec.FIRST_DEFINITIVE if n == 1 else "02",
                        spec.TREATMENT: treated,
                        spec.MODALITY: MODALITY_CODES[modality],
                        spec.TREATMENT_SITE: site(treater),
                    }
                if adjusted:
                    record |= {spec.TREATMENT_ADJUSTMENT: adjusted, spec.TREATMENT_ADJUSTMENT_REASON: "8"}
            for record in records:
                rows.writerow(record)
    return [path]
