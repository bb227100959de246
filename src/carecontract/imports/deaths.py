"""Civil registration deaths (ONS, as NHS Digital supplies them to commissioners) → ``death`` events.

One source record is one registered death: REG_DATE_OF_DEATH, the place of death as registered
(POD_CODE, POD_NHS_ESTABLISHMENT, POD_ESTABLISHMENT_TYPE) and the underlying cause
(S_UNDERLYING_COD_ICD10). The place is put in the measure's categories by the Public Health England
classification of place of death (:func:`place_of_death`); a combination of codes it does not classify
is a rejection naming the fields and values, never "other" by default.

A registration names no provider, but every interchange event needs one: a death is recorded against
:data:`PROVIDER`, the ODS code of NHS Digital, the body that supplies the extract. The extract carries
no type of the usual residence either, so ``usual_residence`` is left empty (it feeds only the local
``died_where_usually_lived`` measure; the national one, ``usual_place_of_death``, needs only the place).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from carecontract.imports import csvsource, national_csv
from carecontract.imports.base import Mapped

KIND = "deaths"
SPECIFICATION = (
    "NHS Digital Civil Registration (Deaths) extract (field names); ONS communal establishment types as grouped "
    "by Public Health England, Classification of place of death (2019); ICD-10 5th edition"
)
#: NHS Digital's ODS code: the supplier of the civil registration extract, so the provider of the record.
PROVIDER = "X26"

#: POD_CODE: a communal establishment code, or ``H`` (at home: the usual address) or ``E`` (elsewhere).
HOME, ELSEWHERE = "H", "E"
#: POD_NHS_ESTABLISHMENT: 1 NHS establishment, 2 non-NHS establishment.
NHS, NON_NHS = "1", "2"

#: PHE, Classification of place of death (2019): ONS establishment type → category, by NHS indicator.
#: The hospice type (83) is a hospice whichever the indicator.
HOSPICE_TYPES = frozenset({"83"})
PLACES: dict[str, dict[str, frozenset[str]]] = {
    NHS: {
        "hospital": frozenset({"01", "03", "18", "99"}),
        "care_home": frozenset({"02", "04", "07", "10", "21"}),
        "other": frozenset({"05", "06", "08", "09", "11"}),
    },
    NON_NHS: {
        "hospital": frozenset({"01", "18", "19"}),
        "care_home": frozenset({"03", "04", "07", "10", "14", "20", "22", "32", "33", "99"}),
        "other": frozenset(
            {"05", "08", "09", "11", "12", "13", "15", "16", "17"}
            | {f"{n:02d}" for n in range(23, 32)}
            | {f"{n:02d}" for n in range(34, 83)}
        ),
    },
}

REQUIRED = (
    "MORTALITY_IDENT",
    "DEC_NHS_NUMBER",
    "REG_DATE_OF_DEATH",
    "POD_CODE",
    "POD_NHS_ESTABLISHMENT",
    "POD_ESTABLISHMENT_TYPE",
    "S_UNDERLYING_COD_ICD10",
    "CCG_OF_RESIDENCE_CODE",
)


def count_records(path: Path) -> int:
    return csvsource.count_records(path)


def place_of_death(pod_code: str, nhs: str, establishment_type: str) -> tuple[str | None, str | None]:
    """(category, None) or (None, problem) for a registered place of death."""
    code = pod_code.strip().upper()
    kind = establishment_type.strip()
    kind = kind.zfill(2) if kind.isdigit() else kind
    indicator = nhs.strip()
    if code == HOME:
        return "home", None
    if not code:
        return None, "POD_CODE '': missing"
    if code == ELSEWHERE and not kind:
        return "other", None
    if kind in HOSPICE_TYPES:
        return "hospice", None
    if indicator not in PLACES:
        return None, f"POD_NHS_ESTABLISHMENT '{nhs}': not 1 (NHS) or 2 (non-NHS) for establishment '{code}'"
    for category, kinds in PLACES[indicator].items():
        if kind in kinds:
            return category, None
    return None, (
        f"POD_ESTABLISHMENT_TYPE '{establishment_type}': not an ONS establishment type classified for "
        f"POD_NHS_ESTABLISHMENT '{indicator}' (PHE classification of place of death)"
    )


def map_file(path: Path) -> Iterator[Mapped]:
    path = Path(path)
    for line in csvsource.read_lines(path, REQUIRED, "civil registration deaths"):
        where = f"{path.name}:{line.number}"
        yield Mapped(where, problem=line.problem) if line.problem else map_row(where, line.fields)


def map_row(where: str, row: dict[str, str]) -> Mapped:
    key = row["MORTALITY_IDENT"]
    if not key:
        return Mapped(where, problem="MORTALITY_IDENT '': missing (the registration's key)")
    problems: list[str] = []
    day, problem = national_csv.parse_date("REG_DATE_OF_DEATH", row["REG_DATE_OF_DEATH"])
    problems += [problem] if problem else []
    place, problem = place_of_death(row["POD_CODE"], row["POD_NHS_ESTABLISHMENT"], row["POD_ESTABLISHMENT_TYPE"])
    problems += [problem] if problem else []
    cause = None
    if row["S_UNDERLYING_COD_ICD10"]:
        cause, problem = national_csv.icd10("S_UNDERLYING_COD_ICD10", row["S_UNDERLYING_COD_ICD10"])
        problems += [problem] if problem else []
    sex, problem = national_csv.sex("DEC_SEX", row.get("DEC_SEX", ""))
    problems += [problem] if problem else []
    age, problem = national_csv.age("DEC_AGEC", row.get("DEC_AGEC", ""))
    problems += [problem] if problem else []
    if problems:
        return Mapped(where, problem=problems[0])
    event = {
        "record_id": f"DEATH-{key}:death",
        "nhs_number": row["DEC_NHS_NUMBER"],
        "event_date": day,
        "event_type": "death",
        "provider_code": PROVIDER,
        "commissioner_code": row["CCG_OF_RESIDENCE_CODE"].upper(),
        "place_of_death": place,
        "icd10": cause,
        "sex": sex,
        "age": age,
    }
    return Mapped(where, events=[event])
