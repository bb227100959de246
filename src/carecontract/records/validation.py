"""Validation rules for activity records, declared once and compiled to one SQL pass.

Each :class:`Rule` names a reason (the text a user sees in the quarantine and the summary), the
column it is about (so the quality report can give validity by column) and a SQL condition that
is true when a row breaks it. Conditions read the normalised columns (``n_*``: trimmed, empty as
NULL, enums lower-case, codes upper-case), so the quarantine can keep the row exactly as read.

Rules that need other rows (duplicates, event order within a patient's pathway) are applied
afterwards by :mod:`carecontract.records.ingest`, over the rows that passed these.
"""

from __future__ import annotations

from dataclasses import dataclass

from carecontract.records import nhs_number, schema

LOWER = {"event_type", "referral_route", "modality", "place_of_death", "usual_residence", "action"}
UPPER = {"provider_code", "commissioner_code", "icd10", "sex", "ethnicity"}


@dataclass(frozen=True)
class Rule:
    reason: str
    column: str
    bad_sql: str
    description: str


def normalise_sql(column: str) -> str:
    """SQL for the normalised form of a raw text column."""
    return f"{normal_form_sql(column)} AS n_{column}"


def normal_form_sql(column: str, source: str | None = None) -> str:
    """SQL for the normalised value of ``column``, read from ``source`` (default: the column itself)."""
    source = source or column
    value = f"NULLIF(trim({source}), '')"
    if column == "nhs_number":  # spaces and hyphens dropped: replace() is the regex [ -] without the regex engine
        value = f"NULLIF(replace(replace(trim({source}), ' ', ''), '-', ''), '')"
    elif column in LOWER:
        value = f"lower({value})"
    elif column in UPPER:
        value = f"upper({value})"
    return value


def _in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"n_{column} IN ({listed})"


def _enum_rule(column: str, values: tuple[str, ...]) -> Rule:
    return Rule(
        f"invalid_{column}",
        column,
        f"n_{column} IS NOT NULL AND NOT {_in(column, values)}",
        f"{column} must be one of: {', '.join(values)}",
    )


def _pattern_rule(column: str, pattern: str, extra: str, description: str) -> Rule:
    condition = f"NOT regexp_full_match(n_{column}, '{pattern}')"
    if extra:
        condition = f"({condition} OR {extra})"
    return Rule(f"invalid_{column}", column, f"n_{column} IS NOT NULL AND {condition}", description)


#: The event date as a date (NULL if it is none): a column of the normalised rows, cast once there
#: (``EVENT_DATE_SQL``) rather than in each of the three rules that read it and in the typed column.
EVENT_DATE = "d_event_date"
EVENT_DATE_SQL = "TRY_CAST(n_event_date AS DATE)"
WITHDRAWAL = f"n_action = '{schema.WITHDRAW}'"
NOT_WITHDRAWAL = f"n_action IS DISTINCT FROM '{schema.WITHDRAW}'"
CANCER_SITE = schema.tumour_site_sql("n_icd10")
ICD10_PATTERN = r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?"


def row_rules() -> list[Rule]:
    """Every single-row rule, in the order reasons are reported."""
    # a withdrawal row needs only the record and its provider: the other required columns may be empty
    rules = [
        Rule(f"missing_{c}", c, f"n_{c} IS NULL", f"{c} is required")
        if c in schema.WITHDRAWAL_COLUMNS
        else Rule(f"missing_{c}", c, f"n_{c} IS NULL AND {NOT_WITHDRAWAL}", f"{c} is required")
        for c in schema.REQUIRED_COLUMNS
    ]
    rules += [
        Rule(
            "invalid_nhs_number",
            "nhs_number",
            f"n_nhs_number IS NOT NULL AND NOT {nhs_number.valid_sql('n_nhs_number')}",
            "NHS number must be 10 digits with a valid modulus-11 check digit",
        ),
        Rule(
            "invalid_event_date",
            "event_date",
            f"n_event_date IS NOT NULL AND (NOT regexp_full_match(n_event_date, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"
            f" OR {EVENT_DATE} IS NULL)",
            "event_date must be an ISO date (YYYY-MM-DD) that exists",
        ),
        Rule(
            "future_event_date",
            "event_date",
            f"{EVENT_DATE} > $today",
            "event_date must not be in the future",
        ),
        Rule(
            "implausible_event_date",
            "event_date",
            f"{EVENT_DATE} < DATE '1900-01-01'",
            "event_date before 1900 is before any living patient's birth",
        ),
        Rule(
            "unknown_event_type",
            "event_type",
            f"n_event_type IS NOT NULL AND NOT {_in('event_type', schema.EVENT_TYPES)}",
            f"event_type must be one of: {', '.join(schema.EVENT_TYPES)}",
        ),
        _pattern_rule("provider_code", "[A-Z0-9]{3,8}", "", "provider_code must be an ODS-style code"),
        _pattern_rule("commissioner_code", "[A-Z0-9]{3,8}", "", "commissioner_code must be an ODS-style code"),
        _pattern_rule("icd10", ICD10_PATTERN, "", "icd10 must look like C34 or C34.1"),
        Rule(
            "diagnosis_not_cancer",
            "icd10",
            # a CASE, not an AND: DuckDB evaluates every operand of an AND in a projection, and the
            # site's CASE has a branch per site; NULL and false break no rule alike
            f"CASE WHEN n_event_type = 'diagnosis' THEN regexp_full_match(n_icd10, '{ICD10_PATTERN}') "
            f"AND {CANCER_SITE} IS NULL ELSE false END",
            "a diagnosis needs a cancer code (C00–C97 or D00–D09)",
        ),
        _enum_rule("stage", ("1", "2", "3", "4")),
        _enum_rule("referral_route", schema.REFERRAL_ROUTES),
        _enum_rule("modality", schema.MODALITIES),
        _pattern_rule(
            "adjustment_days",
            "[0-9]{1,4}",
            "TRY_CAST(n_adjustment_days AS INTEGER) > 3650",
            "adjustment_days must be a whole number of days, 0–3650",
        ),
        _enum_rule("place_of_death", schema.PLACES),
        _enum_rule("usual_residence", schema.PLACES),
        _pattern_rule(
            "score",
            r"[0-9]{1,2}(\.[0-9]+)?",
            "TRY_CAST(n_score AS DOUBLE) > 10",
            "score must be a number from 0 to 10",
        ),
        _pattern_rule("cost_gbp", r"[0-9]{1,10}(\.[0-9]{1,2})?", "", "cost_gbp must be pounds and pence, e.g. 1234.50"),
        _pattern_rule("age", "[0-9]{1,3}", "TRY_CAST(n_age AS INTEGER) > 120", "age must be a whole number 0–120"),
        _enum_rule("sex", schema.SEXES),
        _enum_rule("imd_quintile", ("1", "2", "3", "4", "5")),
        _enum_rule("ethnicity", schema.ETHNIC_CATEGORIES),
        _enum_rule("action", schema.ACTIONS),
    ]
    for event_type, columns in schema.REQUIRED_FOR_EVENT.items():
        rules += [
            Rule(
                f"missing_{c}",
                c,
                f"n_event_type = '{event_type}' AND n_{c} IS NULL",
                f"a {event_type} event needs {c}",
            )
            for c in columns
        ]
    return _merge_same_reason(rules)


def _merge_same_reason(rules: list[Rule]) -> list[Rule]:
    """One rule per reason: conditions for the same reason (e.g. missing_icd10) are OR-ed."""
    merged: dict[str, Rule] = {}
    for rule in rules:
        if rule.reason in merged:
            old = merged[rule.reason]
            merged[rule.reason] = Rule(
                rule.reason, rule.column, f"({old.bad_sql}) OR ({rule.bad_sql})", old.description
            )
        else:
            merged[rule.reason] = rule
    return list(merged.values())


#: Reason names used outside this module, spelled once.
DUPLICATE_RECORD_ID = "duplicate_record_id"
BEFORE_FIRST_REFERRAL = "before_first_referral"
AFTER_DEATH = "after_death"
MALFORMED_ROW = "malformed_row"
UNBALANCED_QUOTE = "unbalanced_quote"
SWALLOWED_BY_QUOTED_FIELD = "swallowed_by_quoted_field"
RECORD_TOO_LONG = "record_too_long"

OTHER_PROVIDERS_RECORD = "record_id_of_other_provider"
NOTHING_TO_WITHDRAW = "nothing_to_withdraw"

#: Reasons that need more than one row, applied after the row rules.
CROSS_ROW_RULES: tuple[Rule, ...] = (
    Rule(DUPLICATE_RECORD_ID, "record_id", "", "record_id appears more than once in one submission (first kept)"),
    Rule(OTHER_PROVIDERS_RECORD, "record_id", "", "record_id belongs to a record another provider submitted"),
    Rule(NOTHING_TO_WITHDRAW, "record_id", "", "a withdrawal of a record_id the provider has no current record for"),
    Rule(BEFORE_FIRST_REFERRAL, "event_date", "", "a pathway event dated before the patient's first referral"),
    Rule(AFTER_DEATH, "event_date", "", "an event dated after the patient's death"),
)

#: Reasons found while reading a CSV file, before any field is judged (records.reading, records.lines).
READ_RULES: tuple[Rule, ...] = (
    Rule(MALFORMED_ROW, "record_id", "", "the line could not be split into the header's columns"),
    Rule(
        UNBALANCED_QUOTE,
        "record_id",
        "",
        "the line opens (or closes) a quoted field that would swallow the lines after it",
    ),
    Rule(SWALLOWED_BY_QUOTED_FIELD, "record_id", "", "the line lies inside a quoted field opened by a stray quote"),
    Rule(RECORD_TOO_LONG, "record_id", "", "the record is longer than 1 MiB (kept: its first 10,000 characters)"),
)


def all_rules() -> list[Rule]:
    return row_rules() + list(CROSS_ROW_RULES) + list(READ_RULES)


def any_broken_sql(skip: tuple[str, ...] = ()) -> str:
    """SQL that is true when a row breaks any row rule (but those in ``skip``): cheap, no list built."""
    # a CASE rather than coalesce(): DuckDB evaluates a CASE's condition as a filter, each AND's
    # second operand only where its first holds (about 5% cheaper than the OR as a plain value)
    return (
        "(CASE WHEN "
        + " OR ".join(f"({r.bad_sql})" for r in row_rules() if r.reason not in skip)
        + " THEN true ELSE false END)"
    )


def reasons_sql() -> str:
    """SQL list of every row-rule reason a row breaks (an empty list for a valid row)."""
    arms = ", ".join(f"CASE WHEN {r.bad_sql} THEN '{r.reason}' END" for r in row_rules())
    return f"list_filter([{arms}], lambda x: x IS NOT NULL)"
