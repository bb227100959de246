"""Contract terms as Pydantic models: what a commissioner's analyst writes in one YAML file.

The models validate everything that can be checked without data: shares that add up, values
per year that sum to the contract value, known tumour sites, measure ids and parameters, a gate
before an outcomes stage. ``extra="forbid"`` everywhere, so a misspelt key is an error, not a
silently ignored term.
"""

from __future__ import annotations

import difflib
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from carecontract.measures.definitions import HIGHER_IS_BETTER
from carecontract.records.schema import TUMOUR_SITE_NAMES
from carecontract.terms.parameters import PARAMETERS, Timeline

#: Outcome measures (ids stable, ../shared/design.md) and whether a higher value is better: the
#: measures package's table itself (one home for each fact), not a copy.
MEASURES: dict[str, bool] = HIGHER_IS_BETTER
SERVICES = (
    "diagnosis",
    "radiology",
    "radiotherapy",
    "chemotherapy",
    "surgery",
    "screening",
    "nursing",
    "palliative_care",
    "hospice",
    "community",
    "acute",
    "mental_health",
)
VatTreatment = Literal["recoverable", "irrecoverable", "exempt"]
#: What kind of organisation a provider is, for "where the money went" (docs/transparency.md).
PartyKind = Literal["nhs_trust", "independent_sector", "voluntary_hospice", "prime_consortium"]
PARTY_KINDS: tuple[str, ...] = PartyKind.__args__  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Which clause of the signed contract a term comes from, so a payment can be traced to it
    # (``carecontract explain-payment``). Left out of model_dump, so of the fingerprint: it says
    # where a term is written, not what is paid.
    clause: str | None = Field(None, max_length=80, exclude=True, description="the contract clause this term is in")


class Party(Strict):
    code: str = Field(pattern=r"^[A-Za-z0-9]{2,10}$")
    name: str
    # left out of the fingerprint, like ``clause``: it changes how money is reported, not paid
    kind: PartyKind | None = Field(None, exclude=True, description="the kind of organisation, for reporting")


class Commissioner(Party):
    share: float = Field(gt=0, le=1, description="share of the contract's cost this commissioner pays")


class Subcontractor(Party):
    services: list[Literal[SERVICES]] = []  # type: ignore[valid-type]
    tumour_sites: list[str] | Literal["all"] = "all"

    @field_validator("tumour_sites")
    @classmethod
    def _known_sites(cls, value: list[str] | str) -> list[str] | str:
        return value if value == "all" else [_site(s) for s in value]


class Term(Strict):
    start: date
    years: int = Field(ge=1, le=30)

    def year_start(self, index: int) -> date:
        """The first day of contract year ``index`` (0 is the first year)."""
        return date(self.start.year + index, self.start.month, self.start.day)

    def year_end(self, index: int) -> date:
        """The last day of contract year ``index`` (the day before the next one starts)."""
        return self.year_start(index + 1) - timedelta(days=1)

    @property
    def end(self) -> date:
        """The day after the term's last day."""
        return self.year_start(self.years)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


class Gate(Strict):
    """What must be true, measured from the store, before the outcomes stage starts."""

    data_completeness: float | None = Field(None, ge=0, le=1)
    data_validity: float | None = Field(None, ge=0, le=1)
    measures: dict[str, float] = {}

    @field_validator("measures")
    @classmethod
    def _known_measures(cls, value: dict[str, float]) -> dict[str, float]:
        for measure in value:
            _measure(measure)
        return value


class FeeStage(Strict):
    name: str
    kind: Literal["fee"]
    max_years: int = Field(ge=1)
    fee_gbp_per_year: Decimal = Field(ge=0, description="the prime's fee while it builds the baseline")
    gate: Gate


class OutcomesStage(Strict):
    name: str
    kind: Literal["outcomes"]
    capitation_gbp_per_year: Decimal | None = Field(
        None, ge=0, description="capitated budget; default: the contract's value for the year"
    )
    at_risk_share: float = Field(ge=0, le=1, description="share of the budget paid only for outcomes")


Stage = Annotated[FeeStage | OutcomesStage, Field(discriminator="kind")]


class Outcome(Strict):
    measure: str
    target: float
    weight: float = Field(gt=0, le=1)
    threshold: float | None = Field(None, description="achievement below which none of this weight is paid")
    basis: Literal["raw", "adjusted"] = Field(
        "raw", description="pay on the raw rate or the case-mix adjusted rate (docs/measures.md, Fair comparisons)"
    )
    minimum_detectable_change: float | None = Field(
        None, gt=0, le=1, description="a rate must beat the threshold by this much before any of this weight is paid"
    )

    @field_validator("measure")
    @classmethod
    def _known(cls, value: str) -> str:
        return _measure(value)

    @model_validator(mode="after")
    def _fair(self) -> Outcome:
        from carecontract.measures.casemix import ADJUSTED

        if self.basis == "adjusted" and self.measure not in ADJUSTED:
            raise ValueError(
                f"basis adjusted: {self.measure} has no case-mix adjustment (adjusted: {', '.join(ADJUSTED)})"
            )
        if self.minimum_detectable_change is not None and self.threshold is None:
            raise ValueError("minimum_detectable_change needs a threshold: the change is measured from it")
        return self


class OutcomePayment(Strict):
    """How achievement releases the at-risk share: linearly from threshold to target, capped."""

    cap_share: float = Field(1.0, ge=0, le=2, description="most of the at-risk pot that can be earned")


class GainLossShare(Strict):
    prime_share: float = Field(ge=0, le=1, description="prime's share of an under- or overspend")
    cap_gbp: Decimal | None = Field(None, ge=0)


class RiskCorridor(Strict):
    """Each year, an over- or under-spend beyond ±width × price is shared: the commissioners take
    ``commissioner_share`` of it (the stress test applies it; docs/viability.md)."""

    width: float = Field(ge=0, le=1, description="the corridor, as a share of the price")
    commissioner_share: float = Field(0.5, ge=0, le=1, description="commissioners' share beyond the corridor")


class PaymentCalendar(Strict):
    """When money moves in a contract year (docs/payments.md, "The payment calendar").

    Payments on account of the planned price during the year; a reconciliation some months after
    it ends, on the data as it stood then (42 CFR 510.305(c)-(d): "beginning 2 months after the end
    of each performance year", on "the most recent claims data available"); an optional subsequent
    reconciliation on fuller data that pays only the difference; and the notice-of-error window
    after each reconciliation is issued (42 CFR 512.290(a): notice within 45 days, else the amount
    is "deemed binding"; the reply within 30 days).
    """

    on_account: Literal["monthly", "quarterly", "none"] = Field(
        "monthly", description="how often the commissioners pay on account during the year"
    )
    on_account_share: float = Field(
        1.0, ge=0, le=1, description="share of the planned price (the year's price) paid on account"
    )
    reconcile_after_months: int = Field(
        2, ge=0, le=24, description="months after the contract year ends that it is reconciled"
    )
    subsequent_after_months: int | None = Field(
        14, ge=1, le=60, description="months after the year ends of the subsequent reconciliation (null: none)"
    )
    dispute_window_days: int = Field(
        45,
        ge=1,
        le=365,
        description="days after a reconciliation is issued to give notice of an error; after them it is deemed final",
    )
    reply_within_days: int = Field(30, ge=1, le=365, description="days to reply to a notice of error")

    @model_validator(mode="after")
    def _order(self) -> PaymentCalendar:
        if self.subsequent_after_months is not None and self.subsequent_after_months <= self.reconcile_after_months:
            raise ValueError(
                f"subsequent_after_months {self.subsequent_after_months} must come after "
                f"reconcile_after_months {self.reconcile_after_months}"
            )
        return self


class Payments(Strict):
    outcome_payment: OutcomePayment = OutcomePayment()
    gain_loss_share: GainLossShare | None = None
    management_fee: Literal["from_value", "on_top"] = "from_value"
    fund_demand_growth: bool = Field(
        False, description="uplift the price by demand growth too (the seeds' contracts did not)"
    )
    vat: dict[str, VatTreatment] = Field(default_factory=dict, description="VAT on services supplied, by party code")
    contingency_share: float = Field(
        0.0, ge=0, le=5, description="a contingency reserve paid each year, as a share of the price (stress test)"
    )
    risk_corridor: RiskCorridor | None = None
    management_cap: float | None = Field(
        None, ge=0, le=1, description="management cost at most this share of income (stress test)"
    )
    calendar: PaymentCalendar = Field(default_factory=PaymentCalendar, description="when money moves")


class Distribution(Strict):
    """An uncertain quantity for the stress test: a fixed value or a distribution with its parameters.

    ``normal`` (mean, sd), ``lognormal`` (mean and sd of the quantity itself), ``uniform`` and
    ``triangular`` (low, high; triangular also ``mean`` as its mode), ``beta`` (mean, sd, for shares
    in [0, 1]). A plain number in YAML means ``fixed``.
    """

    dist: Literal["fixed", "normal", "lognormal", "uniform", "triangular", "beta"] = "fixed"
    value: float | None = None
    mean: float | None = None
    sd: float | None = Field(None, ge=0)
    low: float | None = None
    high: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, data: object) -> object:
        return {"dist": "fixed", "value": data} if isinstance(data, int | float) else data

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        need = {
            "fixed": ("value",),
            "normal": ("mean", "sd"),
            "lognormal": ("mean", "sd"),
            "uniform": ("low", "high"),
            "triangular": ("low", "high", "mean"),
            "beta": ("mean", "sd"),
        }[self.dist]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a {self.dist} distribution needs {', '.join(missing)}")
        if self.dist in ("uniform", "triangular") and not self.low <= self.high:  # type: ignore[operator]
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.dist == "triangular" and not self.low <= self.mean <= self.high:  # type: ignore[operator]
            raise ValueError("a triangular distribution's mean (its mode) must lie between low and high")
        if self.dist == "beta":
            m, sd = self.mean, self.sd
            if not 0 < m < 1 or (sd and sd * sd >= m * (1 - m)):  # type: ignore[operator]
                raise ValueError("a beta distribution needs 0 < mean < 1 and sd² < mean × (1 − mean)")
        if self.dist == "lognormal" and self.mean is not None and self.mean <= 0:
            raise ValueError("a lognormal distribution needs a positive mean")
        return self

    @property
    def central(self) -> float:
        """The value a deterministic projection uses: the fixed value, else the mean or midpoint."""
        if self.dist == "fixed":
            return float(self.value)  # type: ignore[arg-type]
        if self.dist == "uniform":
            return (self.low + self.high) / 2  # type: ignore[operator]
        if self.dist == "triangular":
            return (self.low + self.high + self.mean) / 3  # type: ignore[operator]
        return float(self.mean)  # type: ignore[arg-type]

    @property
    def uncertain(self) -> bool:
        if self.dist == "fixed":
            return False
        if self.dist in ("uniform", "triangular"):
            return self.high > self.low  # type: ignore[operator]
        return bool(self.sd)


class Risks(Strict):
    """What can go wrong, for the viability stress test (docs/viability.md). Unset risks fall back
    to the contract's dated parameters, fixed."""

    baseline_cost_gbp: Distribution | None = Field(
        None, description="first-year cost of the care; default: from --store, else the price less management and VAT"
    )
    demand_growth: Distribution | None = None
    demand_shock_probability: float = Field(0.0, ge=0, le=1, description="chance each year of a jump in demand")
    demand_shock_size: Distribution = Distribution(dist="fixed", value=0.0)
    cost_inflation: Distribution | None = None
    savings_realised: Distribution = Field(
        Distribution(dist="fixed", value=1.0), description="share of the assumed efficiency savings achieved"
    )
    outcome_achievement: Distribution = Field(
        Distribution(dist="fixed", value=1.0), description="share of the at-risk pot earned each year"
    )
    management_cost_share: Distribution | None = Field(None, description="management costs as a share of income")
    vat_exposed_share: Distribution = Field(
        Distribution(dist="fixed", value=1.0), description="share of care cost bearing VAT the prime cannot recover"
    )


#: The largest contract value accepted, £1 trillion: a bound on typing slips (1e30), far above any
#: NHS contract, which keeps pence exact in Decimal's 28 digits.
MAX_VALUE_GBP = Decimal(10**12)


class Value(Strict):
    total_gbp: Decimal = Field(gt=0, le=MAX_VALUE_GBP)
    profile: Literal["flat"] | None = None
    by_year: dict[int, Decimal] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Value:
        if (self.profile is None) == (self.by_year is None):
            raise ValueError("give either profile: flat or by_year: {year: value, ...}")
        return self


class Publication(Strict):
    """What the public figures are given for: one kind of period, never an arbitrary window."""

    period: Literal["contract_year", "quarter", "month"] = Field(
        "contract_year", description="the periods public figures are published for"
    )


class Contract(Strict):
    name: str
    description: str = ""
    commissioners: list[Commissioner] = Field(min_length=1)
    prime: Party
    subcontractors: list[Subcontractor] = []
    term: Term
    value: Value
    stages: list[Stage] = Field(min_length=1)
    scope: dict[int, list[str] | Literal["all"]] | None = Field(
        None, description="tumour sites in scope from the contract year starting in each year"
    )
    outcomes: list[Outcome] = []
    payments: Payments = Payments()
    parameters: dict[str, dict[date | int, float]] = {}
    risks: Risks = Risks()
    # left out of model_dump (so of the fingerprint): it changes what is published, not what is paid
    publication: Publication = Field(default_factory=Publication, exclude=True)
    # each parameter's clause, from a ``clause:`` key beside its dated values (see _parameter_clauses)
    parameter_clauses: dict[str, str] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _parameter_clauses(cls, data: object) -> object:
        """Take each parameter's ``clause:`` out of its timeline (``vat_rate: {2017: 0.2, clause: "7.3"}``)
        into ``parameter_clauses``, so the timeline stays dates → values. A ``--set`` replaces the
        whole timeline, clause included: the value then comes from the what-if, not a clause."""
        if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
            return data
        if "parameter_clauses" in data:
            raise ValueError("parameter_clauses is not a key: write clause: beside a parameter's values")
        timelines, clauses = {}, {}
        for name, entries in data["parameters"].items():
            if isinstance(entries, dict) and "clause" in entries:
                entries = dict(entries)
                clause = entries.pop("clause")
                if not isinstance(clause, str) or not clause.strip() or len(clause) > 80:
                    raise ValueError(f'parameter {name!r}: clause must be a short text, e.g. "Schedule 3, 7.2"')
                clauses[name] = clause
            timelines[name] = entries
        return {**data, "parameters": timelines, "parameter_clauses": clauses}

    # -- validation across fields ------------------------------------------------------------
    @field_validator("scope")
    @classmethod
    def _scope_sites(cls, value: dict | None) -> dict | None:
        if value:
            for sites in value.values():
                if sites != "all":
                    for s in sites:
                        _site(s)
        return value

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict) -> dict:
        for name, entries in value.items():
            spec = PARAMETERS.get(name)
            if spec is None:
                raise ValueError(f"unknown parameter {name!r}{_suggest(name, PARAMETERS)}")
            if not entries:
                raise ValueError(f"parameter {name!r} has no entries")
            for v in entries.values():
                if not spec.low <= v <= spec.high:
                    raise ValueError(f"parameter {name!r} = {v} is outside {spec.low}–{spec.high} ({spec.unit})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        total_share = sum(c.share for c in self.commissioners)
        if abs(total_share - 1) > 1e-9:
            raise ValueError(f"commissioners' shares add up to {total_share:g}, not 1")
        codes = [p.code for p in (*self.commissioners, self.prime, *self.subcontractors)]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"party codes used twice: {', '.join(repeated)}")
        if self.outcomes:
            weights = sum(o.weight for o in self.outcomes)
            if abs(weights - 1) > 1e-9:
                raise ValueError(f"outcome weights add up to {weights:g}, not 1")
        first_year, last_year = self.term.start.year, self.term.start.year + self.term.years - 1
        if self.value.by_year is not None:
            years = sorted(self.value.by_year)
            if years != list(range(first_year, last_year + 1)):
                raise ValueError(f"value.by_year must list each contract year {first_year}–{last_year}, got {years}")
            total = sum(self.value.by_year.values())
            if total != self.value.total_gbp:
                raise ValueError(f"value.by_year adds up to {total:,}, not value.total_gbp {self.value.total_gbp:,}")
        for i, stage in enumerate(self.stages[:-1]):
            if not isinstance(stage, FeeStage):
                raise ValueError(f"stage {stage.name!r} is not the last, so it must be a fee stage with a gate")
            if stage.max_years >= self.term.years:
                raise ValueError(f"stage {stage.name!r} lasts as long as the contract: no outcomes stage would start")
            del i
        if self.scope:
            if min(self.scope) != first_year:
                raise ValueError(f"scope must start in the contract's first year {first_year}")
            if max(self.scope) > last_year:
                raise ValueError(f"scope year {max(self.scope)} is after the contract ends ({last_year})")
        parties = set(codes)
        for code in self.payments.vat:
            if code not in parties:
                raise ValueError(f"payments.vat names {code!r}, which is not a party{_suggest(code, parties)}")
        return self

    # -- questions a user asks of the terms --------------------------------------------------
    def parties(self) -> list[Party]:
        """The prime and its subcontractors: everyone the contract's money is paid to for care."""
        return [self.prime, *self.subcontractors]

    def kind_of(self, code: str) -> str | None:
        """The kind of organisation the terms give a party code (None when they do not say)."""
        return next((p.kind for p in (*self.commissioners, *self.parties()) if p.code == code), None)

    def contract_years(self) -> list[date]:
        return [self.term.year_start(i) for i in range(self.term.years)]

    @property
    def fee_stage(self) -> FeeStage | None:
        """The fee stage (the one with a gate), if the contract starts with one."""
        return next((s for s in self.stages if isinstance(s, FeeStage)), None)

    def stage_named(self, name: str) -> FeeStage | OutcomesStage:
        return next(s for s in self.stages if s.name == name)

    def value_per_year(self) -> dict[int, Decimal]:
        """Contract value allocated to each contract year (by the year it starts in)."""
        if self.value.by_year is not None:
            return dict(sorted(self.value.by_year.items()))
        n = self.term.years
        base = (self.value.total_gbp / n).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
        years = [d.year for d in self.contract_years()]
        out = {y: base for y in years}
        out[years[-1]] += self.value.total_gbp - base * n  # pence left by rounding go to the last year
        return out

    def price_uplift(self, year_index: int, with_demand: bool | None = None) -> Decimal:
        """Price uplift from year 1 to year ``year_index``: tariff inflation compounded, and demand
        growth too if ``with_demand`` (default: whether the terms fund it)."""
        with_demand = self.payments.fund_demand_growth if with_demand is None else with_demand
        factor = Decimal(1)
        for i in range(1, year_index + 1):
            params = self.parameters_at(self.term.year_start(i))
            factor *= Decimal(1) + Decimal(str(params.get("tariff_inflation") or 0.0))
            if with_demand:
                factor *= Decimal(1) + Decimal(str(params.get("demand_growth") or 0.0))
        return factor

    def scope_at(self, when: date) -> list[str]:
        """Tumour sites in scope on a date (all sites if the contract has no scope by site)."""
        if not self.scope:
            return list(TUMOUR_SITE_NAMES)
        in_force: list[str] | str = "all"
        for year in sorted(self.scope):
            if self.term.year_start(year - self.term.start.year) <= when:
                in_force = self.scope[year]
        return list(TUMOUR_SITE_NAMES) if in_force == "all" else list(in_force)

    def timeline(self, name: str) -> Timeline:
        if name not in self.parameters:
            raise KeyError(f"parameter {name!r} is not set in {self.name}{_suggest(name, self.parameters)}")
        entries = sorted((self._as_date(k), v) for k, v in self.parameters[name].items())
        return Timeline(name, tuple(entries), self.parameter_clauses.get(name))

    def parameter(self, name: str, when: date) -> float:
        return self.timeline(name).at(when)

    def parameters_at(self, when: date) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name in sorted(self.parameters):
            try:
                out[name] = self.parameter(name, when)
            except KeyError:
                out[name] = None
        return out

    def _as_date(self, key: date | int) -> date:
        return key if isinstance(key, date) else date(key, self.term.start.month, self.term.start.day)


def _site(name: str) -> str:
    if name not in TUMOUR_SITE_NAMES:
        raise ValueError(f"unknown tumour site {name!r}{_suggest(name, TUMOUR_SITE_NAMES)}")
    return name


def _measure(name: str) -> str:
    if name not in MEASURES:
        raise ValueError(f"unknown measure {name!r}{_suggest(name, MEASURES)}")
    return name


def _suggest(name: str, options: object) -> str:
    choices = sorted(options)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid: {', '.join(choices)})"
