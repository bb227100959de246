"""The interchange-format table built from the generator's coded arrays.

Why a module of its own: both the generator (:mod:`.economy`) and the error injector
(:mod:`.errors`) need it, and the injector runs inside the generator. Kept below both, with the
generator described by the :class:`Drawn` protocol rather than imported, the two import it and
nothing imports back up.

Columns stay typed (dates, integers, dictionary-encoded text) because the CSV and Parquet writers
render them exactly as the format's text; error injection casts to text only the columns it
corrupts. That keeps generation at over a million events a second.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carecontract.records import schema

EPOCH = date(1970, 1, 1)


class Drawn(Protocol):
    """What the table (and the error injector) read from a finished generator."""

    seed: int
    start: date
    span: int  # days in the window
    person_count: int  # people drawn; person indices are below this
    nhs: np.ndarray  # per person: a distinct, valid NHS number
    age: np.ndarray  # per person: age at the start of the window
    male: np.ndarray
    comm: np.ndarray  # per person: index into ``commissioners``
    imd: np.ndarray  # per person: 0 (most deprived) to 4
    ethnicity: np.ndarray  # per person: index into ``ethnic_labels``
    providers: list[str]
    commissioners: list[str]
    icd_codes: list[str]
    ethnic_labels: list[str]


def build_table(gen: Drawn, cols: dict[str, np.ndarray]) -> pa.Table:
    """The interchange-format table from coded arrays (one entry per event in ``cols``)."""
    person = cols["person"]
    start_days = (gen.start - EPOCH).days
    n = len(person)

    def decode(codes: np.ndarray, labels: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(labels))

    def number(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
        return pa.array(values, mask=null)

    pence = cols["cost_pence"]
    cost = pence_as_decimal(pence)
    day_abs = cols["day"].astype(np.int32) + np.int32(start_days)
    age = gen.age[person] + (cols["day"] // 365.25).astype(np.int64)
    record_id = pc.binary_join_element_wise(
        f"S{gen.seed}", pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), 9, "0"), "-"
    )
    return pa.table(
        {
            "record_id": record_id,
            "nhs_number": pa.array(gen.nhs[person]),
            "event_date": pa.array(day_abs, pa.date32()),
            "event_type": decode(cols["event"].astype(np.int64), list(schema.EVENT_TYPES)),
            "provider_code": decode(cols["provider"].astype(np.int64), gen.providers),
            "commissioner_code": decode(gen.comm[person], gen.commissioners),
            "icd10": decode(cols["icd"], gen.icd_codes),
            "stage": number(cols["stage"], cols["stage"] < 1),
            "referral_route": decode(cols["route"], list(schema.REFERRAL_ROUTES)),
            "modality": decode(cols["modality"], list(schema.MODALITIES)),
            "adjustment_days": number(cols["adjustment_days"], cols["adjustment_days"] < 0),
            "place_of_death": decode(cols["place"], list(schema.PLACES)),
            "usual_residence": decode(cols["residence"], list(schema.PLACES)),
            "score": number(cols["score"], cols["score"] < 0),
            "cost_gbp": cost,
            "age": number(np.minimum(age, 120)),
            "sex": decode(np.where(gen.male[person], 0, 1), ["M", "F"]),
            "imd_quintile": number(gen.imd[person] + 1),
            "ethnicity": decode(gen.ethnicity[person], gen.ethnic_labels),
        }
    )


def pence_as_decimal(pence: np.ndarray) -> pa.Array:
    """Integer pence as decimal(14, 2) pounds without arithmetic: the unscaled value *is* the pence."""
    words = np.zeros((len(pence), 2), np.int64)  # little-endian 128-bit: low word, high word
    words[:, 0] = np.maximum(pence, 0)
    array = pa.Array.from_buffers(pa.decimal128(14, 2), len(pence), [None, pa.py_buffer(words)])
    return pc.if_else(pa.array(pence < 0), pa.scalar(None, pa.decimal128(14, 2)), array)
