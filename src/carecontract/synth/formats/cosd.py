"""The synthetic economy as a COSD core extract (the importer's CSV, COSD v10 core items).

One record per diagnosis event: its date (DATE OF PRIMARY DIAGNOSIS (CLINICALLY AGREED)), ICD-10 code,
stage as a TNM stage group (1–4, X when unstaged), BASIS OF DIAGNOSIS (CANCER) 7 (histology of the
primary tumour: the synthetic economy does not model the basis), and the SOURCE OF REFERRAL FOR
OUT-PATIENTS of the pathway it belongs to (an emergency route, or no referral at all — a cancer found
in an emergency admission — is 01, following an emergency admission). COSDS UNIQUE IDENTIFIER is the
diagnosis event's own record id.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from carecontract.imports import cosd as spec
from carecontract.synth.formats.cwt import ROUTE_CODES, site
from carecontract.synth.formats.pathways import connect

FILE = "cosd.csv"
HISTOLOGY_OF_PRIMARY = "7"
FOLLOWING_EMERGENCY_ADMISSION = "01"


def write(events: pa.Table, out: Path) -> list[Path]:
    con = connect(events)
    try:
        rows = con.execute(
            """
            SELECT d.record_id, d.patient, d.provider_code, d.commissioner_code, d.event_date, d.icd10, d.stage,
                   s.referral_route, s.opened_by
            FROM steps d JOIN starts s USING (pathway_id)
            WHERE d.event_type = 'diagnosis'
            ORDER BY d.event_date, d.record_id
            """
        ).fetchall()
    finally:
        con.close()
    path = out / FILE
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=spec.COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record_id, patient, provider, commissioner, day, icd, stage, route, opened_by in rows:
            source = ROUTE_CODES[route][1] if opened_by == "referral" else FOLLOWING_EMERGENCY_ADMISSION
            writer.writerow(
                {
                    spec.RECORD_ID: record_id,
                    spec.NHS_NUMBER: patient,
                    spec.PROVIDER: provider,
                    spec.COMMISSIONER: commissioner,
                    spec.DIAGNOSIS_DATE: day,
                    spec.DIAGNOSIS: icd,
                    spec.DIAGNOSIS_SITE: site(provider),
                    spec.BASIS: HISTOLOGY_OF_PRIMARY,
                    spec.SOURCE: source,
                    spec.STAGE: stage or "X",
                }
            )
    return [path]
