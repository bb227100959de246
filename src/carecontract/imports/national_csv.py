"""The small code tables the SUS/HES APC and civil registration deaths extracts share: dates as the
extracts write them, ICD-10 as HES writes it, NHS Data Dictionary PERSON STATED GENDER CODE, ages.

Why one module: each importer knows its own fields, but these values are written alike in both and
must not drift between them. (Reading the extracts line by line is :mod:`carecontract.imports.csvsource`.)
"""

from __future__ import annotations

import re
from datetime import date

#: ICD-10 as the national extracts write it: ``C341``, ``C34.1``, ``C34X`` / ``C34-`` (HES fills a
#: three-character code to four with ``X`` or ``-``), optionally a fifth character (dagger/asterisk or
#: a HES filler) that carecontract does not use.
_ICD10 = re.compile(r"^([A-Z][0-9]{2})(?:\.?([0-9])|[X\-])?[A-Z0-9\-\*\+ ]{0,2}$")
#: NHS Data Dictionary PERSON STATED GENDER CODE (the CDS and HES ``SEX``): 1 male, 2 female,
#: 9 indeterminate, 0 / X not known.
SEX_CODES: dict[str, str] = {"1": "M", "2": "F", "9": "U", "0": "U", "X": "U"}


def parse_date(field: str, value: str) -> tuple[str | None, str | None]:
    """ISO ``CCYY-MM-DD`` (the CDS and HES format) or ``CCYYMMDD`` (civil registration extracts) →
    (ISO date, None), or (None, problem naming the field and value)."""
    text = value.strip()
    if not text:
        return None, f"{field} '': missing"
    try:
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat(), None
        return date.fromisoformat(text).isoformat(), None
    except ValueError:
        return None, f"{field} '{text}': not a date (CCYY-MM-DD or CCYYMMDD)"


def icd10(field: str, value: str) -> tuple[str | None, str | None]:
    """An ICD-10 code as the extracts write it → the interchange form (``C34`` or ``C34.1``)."""
    text = value.strip().upper()
    m = _ICD10.match(text)
    if not m:
        return None, f"{field} '{value}': not an ICD-10 code"
    return (f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1)), None


def sex(field: str, value: str) -> tuple[str | None, str | None]:
    text = value.strip().upper()
    if not text:
        return None, None
    if text not in SEX_CODES:
        return None, f"{field} '{value}': not a code in NHS Data Dictionary PERSON STATED GENDER CODE"
    return SEX_CODES[text], None


def age(field: str, value: str) -> tuple[str | None, str | None]:
    """Age in whole years; HES codes an infant's age as 7001–7007 (under one year): that is 0."""
    text = value.strip()
    if not text:
        return None, None
    if not text.isdigit():
        return None, f"{field} '{value}': not an age in years"
    n = int(text)
    if 7001 <= n <= 7007:
        return "0", None
    if n > 120:
        return None, f"{field} '{value}': not an age in years (0-120, or 7001-7007 under one)"
    return str(n), None
