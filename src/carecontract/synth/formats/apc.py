"""The synthetic economy as a HES APC extract: one episode per emergency admission or cancer treatment.

Why only these rows: APC carries emergency admissions and the treatments OPCS-4 can say (chemotherapy
X72.1, radiotherapy X65.3, surgery by a site's excision code). Every other event, and a surgery at a site
with no code here or before any diagnosis, stays in the interchange file: the round trip replaces
exactly the rows written here (EPIKEY is the synthetic record_id) by their import.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from carecontract.records import duck

#: One illustrative OPCS-4 code per modality (surgery: per tumour site, ICD-10 three-character code).
CHEMOTHERAPY_CODE = "X721"
RADIOTHERAPY_CODE = "X653"
SURGERY_CODES = {"C33": "E541", "C34": "E541", "C50": "B271", "C61": "M611", "C67": "M341"}
#: ICD-10 R69 "unknown and unspecified causes of morbidity", HES-filled to four characters.
UNSPECIFIED = "R69X"


def write(events: pa.Table, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    surgery = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SURGERY_CODES.items())
    con = duck.connect()
    try:
        con.register("events", events)
        table = con.sql(
            f"""
            WITH ev AS (SELECT * FROM events WHERE event_type IN ('emergency_admission', 'treatment')),
            dx AS (SELECT nhs_number, event_date, replace(icd10, '.', '') AS icd
                   FROM events WHERE event_type = 'diagnosis' AND icd10 IS NOT NULL),
            joined AS (
              SELECT ev.*, dx.icd FROM ev ASOF LEFT JOIN dx
              ON ev.nhs_number = dx.nhs_number AND ev.event_date >= dx.event_date),
            coded AS (
              SELECT *, CASE
                WHEN event_type = 'emergency_admission' THEN '-'
                WHEN modality = 'chemotherapy' THEN '{CHEMOTHERAPY_CODE}'
                WHEN modality = 'radiotherapy' THEN '{RADIOTHERAPY_CODE}'
                WHEN modality = 'surgery' AND icd IS NOT NULL THEN CASE substr(icd, 1, 3) {surgery} END
              END AS opcs FROM joined)
            SELECT record_id AS EPIKEY, CAST(nhs_number AS VARCHAR) AS NEWNHSNO,
                   strftime(event_date, '%Y-%m-%d') AS ADMIDATE,
                   CASE WHEN event_type = 'emergency_admission' THEN '21' ELSE '11' END AS ADMIMETH,
                   CAST(provider_code AS VARCHAR) AS PROCODE3, CAST(commissioner_code AS VARCHAR) AS CCG_RESPONSIBILITY,
                   CASE WHEN icd IS NULL THEN '{UNSPECIFIED}' WHEN length(icd) = 3 THEN icd || 'X' ELSE icd END
                     AS DIAG_4_01,
                   opcs AS OPERTN_4_01,
                   CASE WHEN opcs <> '-' THEN strftime(event_date, '%Y-%m-%d') ELSE '' END AS OPDATE_01,
                   CASE CAST(sex AS VARCHAR) WHEN 'M' THEN '1' WHEN 'F' THEN '2' WHEN 'U' THEN '9' ELSE '' END AS SEX,
                   CAST(age AS VARCHAR) AS STARTAGE, CAST(cost_gbp AS VARCHAR) AS TARIFF_TOTAL_PAYMENT
            FROM coded WHERE opcs IS NOT NULL
            ORDER BY event_date, record_id
            """
        ).fetch_arrow_table()
    finally:
        con.close()
    path = out / "hes-apc.csv"
    pacsv.write_csv(table, path)
    return [path]
