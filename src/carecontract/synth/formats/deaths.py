"""The synthetic economy's deaths as a civil registration extract (NHS Digital field names).

Each place of death is written as codes the PHE classification puts back in the same category: home
``H``; elsewhere ``E``; a hospital an NHS general hospital (1, 01); a care home a private residential
home (2, 32); a hospice type 83. A death in a religious establishment has no establishment type this
project could verify from a published source, so it is not written: it stays in the interchange file
(the round trip replaces exactly the rows written here; MORTALITY_IDENT is the synthetic record_id).
The establishment codes in POD_CODE are synthetic (``CE`` and the provider's code).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from carecontract.records import duck

#: place_of_death → (POD_CODE prefix or literal, POD_NHS_ESTABLISHMENT, POD_ESTABLISHMENT_TYPE)
CODES = {
    "home": ("H", "", ""),
    "other": ("E", "", ""),
    "hospital": ("CE", "1", "01"),
    "care_home": ("CE", "2", "32"),
    "hospice": ("CE", "2", "83"),
}


def write(events: pa.Table, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arms = {i: " ".join(f"WHEN '{k}' THEN '{v[i]}'" for k, v in CODES.items()) for i in range(3)}
    places = ", ".join(f"'{k}'" for k in CODES)
    con = duck.connect()
    try:
        con.register("events", events)
        table = con.sql(
            f"""
            WITH d AS (SELECT *, CAST(place_of_death AS VARCHAR) AS place FROM events
                       WHERE event_type = 'death' AND CAST(place_of_death AS VARCHAR) IN ({places})),
            dx AS (SELECT nhs_number, event_date, replace(icd10, '.', '') AS icd
                   FROM events WHERE event_type = 'diagnosis' AND icd10 IS NOT NULL),
            j AS (SELECT d.*, dx.icd FROM d ASOF LEFT JOIN dx
                  ON d.nhs_number = dx.nhs_number AND d.event_date >= dx.event_date)
            SELECT record_id AS MORTALITY_IDENT, CAST(nhs_number AS VARCHAR) AS DEC_NHS_NUMBER,
                   strftime(event_date, '%Y%m%d') AS REG_DATE_OF_DEATH,
                   CASE place {arms[0]} END
                     || CASE WHEN place IN ('home', 'other') THEN '' ELSE CAST(provider_code AS VARCHAR) END
                     AS POD_CODE,
                   CASE place {arms[1]} END AS POD_NHS_ESTABLISHMENT,
                   CASE place {arms[2]} END AS POD_ESTABLISHMENT_TYPE,
                   coalesce(icd, '') AS S_UNDERLYING_COD_ICD10,
                   CASE CAST(sex AS VARCHAR) WHEN 'M' THEN '1' WHEN 'F' THEN '2' WHEN 'U' THEN '9' ELSE '' END
                     AS DEC_SEX,
                   CAST(age AS VARCHAR) AS DEC_AGEC, CAST(commissioner_code AS VARCHAR) AS CCG_OF_RESIDENCE_CODE
            FROM j ORDER BY event_date, record_id
            """
        ).fetch_arrow_table()
    finally:
        con.close()
    path = out / "civil-registration-deaths.csv"
    pacsv.write_csv(table, path)
    return [path]
