"""A synthetic health economy: cancer pathways and end-of-life care as activity records.

Why synthetic: the real records are patient-identifiable and, as the seeds found, often years
out of date. A calibrated synthetic economy lets every later stage (baseline, measures, payments,
viability) be built and tested on data with known properties — and with known errors injected.

Everything is vectorised with NumPy: the generator loops over tumour sites and event kinds, never
over patients. Output is deterministic for (rates, population, years, start, seed).

Who appears: people are partitioned so the data are internally consistent — each cancer patient
has one pathway in the window; people referred and ruled out never get cancer or die in it; people
who die of other causes are neither. So a clean economy ingests with nothing quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from carecontract.errors import UserError
from carecontract.records import nhs_number, schema
from carecontract.synth.errors import inject
from carecontract.synth.rates import load_rates

EVENT_CODE = {name: i for i, name in enumerate(schema.EVENT_TYPES)}
ANCHOR_EVENTS = ("referral", "death")  # rows other rows are checked against; never corrupted
ROUTE = {name: i for i, name in enumerate(schema.REFERRAL_ROUTES)}
MODALITY_NAMES = list(schema.MODALITIES)
MODALITY = {name: i for i, name in enumerate(MODALITY_NAMES)}
ONCOLOGY = [MODALITY[m] for m in ("chemotherapy", "radiotherapy", "immunotherapy")]


def default_start(years: int, today: date | None = None) -> date:
    """The first 1 April such that ``years`` whole contract years end before the last 1 April."""
    today = today or date.today()
    last_april = date(today.year if today >= date(today.year, 4, 1) else today.year - 1, 4, 1)
    return date(last_april.year - years, 4, 1)


class SynthError(UserError, ValueError):
    """An economy that cannot be generated as asked (too few people, no years, too many errors)."""


@dataclass
class Economy:
    """Generated activity: the events table (interchange format) and what was injected."""

    events: pa.Table
    injected: pa.Table
    start: date
    years: int
    seed: int
    population: int
    row_day: np.ndarray  # each row's true day since ``start`` (before any date was corrupted)
    meta: dict[str, Any] = field(default_factory=dict)

    def year_of_rows(self) -> np.ndarray:
        """Contract year (0-based) of each row, from its true date, so a corrupted date stays in its file."""
        # days from the start to each later contract year's first day
        bounds = np.array([(first - self.start).days for first, _ in contract_year_bounds(self.start, self.years)[1:]])
        return np.searchsorted(bounds, self.row_day, side="right")


class _Parts:
    """Columnar parts of the event table, concatenated once at the end."""

    INT_COLUMNS = (
        "icd",
        "stage",
        "route",
        "modality",
        "adjustment_days",
        "place",
        "residence",
        "score",
        "cost_pence",
    )

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, event: str, person: np.ndarray, day: np.ndarray, provider: np.ndarray, **cols: np.ndarray) -> None:
        n = len(person)
        part = {
            "person": person.astype(np.int64),
            "day": day.astype(np.int32),
            "event": np.full(n, EVENT_CODE[event], np.int8),
            "provider": np.broadcast_to(provider, (n,)).astype(np.int16),
        }
        for name, values in cols.items():
            part[name] = np.broadcast_to(values, (n,)).astype(np.int64)
        self.parts.append(part)

    def concat(self) -> dict[str, np.ndarray]:
        out = {}
        for name in ("person", "day", "event", "provider", *self.INT_COLUMNS):
            out[name] = np.concatenate(
                [p[name] if name in p else np.full(len(p["person"]), -1, np.int64) for p in self.parts]
            )
        return out


@dataclass
class _Cohort:
    """The window's cancer patients, one entry per patient in each array; the steps of
    :meth:`_Generator.cancers` fill in the rest in turn (all days are since the window's start)."""

    count: int
    person: np.ndarray
    site: np.ndarray  # index into the rates' tumour sites
    t0: np.ndarray  # referral (or emergency presentation)
    imd: np.ndarray
    home: np.ndarray  # the home acute trust
    route: np.ndarray = field(init=False)
    stage: np.ndarray = field(init=False)
    icd: np.ndarray = field(init=False)
    first_seen: np.ndarray = field(init=False)
    diagnosis: np.ndarray = field(init=False)
    decision: np.ndarray = field(init=False)
    paused: np.ndarray = field(init=False)  # has a treatment adjustment (after the decision to treat)
    missed: np.ndarray = field(init=False)  # did not attend a first appointment (a first-seen adjustment)
    missed_days: np.ndarray = field(init=False)
    pause_days: np.ndarray = field(init=False)
    treatment: np.ndarray = field(init=False)  # first treatment
    death: np.ndarray = field(init=False)
    modality: np.ndarray = field(init=False)
    second_modality: np.ndarray = field(init=False)
    treat_provider: np.ndarray = field(init=False)

    def alive(self, day: np.ndarray) -> np.ndarray:
        return day < self.death


class _Generator:
    def __init__(
        self, rates: dict[str, Any], population: int, years: int, start: date, seed: int, id_offset: int | None = None
    ) -> None:
        self.r = rates
        self.n = population
        self.years = years
        self.start = start
        self.rng = np.random.default_rng(seed)
        self.id_offset = id_offset
        self.seed = seed
        self.span = (date(start.year + years, start.month, start.day) - start).days
        self.parts = _Parts()
        self.providers = [p["code"] for p in rates["providers"]]
        self.provider_index = {c: i for i, c in enumerate(self.providers)}
        self.community = self.provider_index[next(p["code"] for p in rates["providers"] if p["kind"] == "community")]
        self.commissioners = [c["code"] for c in rates["commissioners"]]
        sites = rates["cancer"]["sites"]
        self.site_names = list(sites)
        self.icd_codes = sorted({code for s in sites.values() for code in s["icd10"]} | {"I10", "J18.9"})
        self.icd_index = {c: i for i, c in enumerate(self.icd_codes)}

    # -- helpers --------------------------------------------------------------------------------
    def wait(self, name: str, size: int) -> np.ndarray:
        median, sigma = self.r["waits"][name]
        return np.maximum(1, np.rint(self.rng.lognormal(np.log(median), sigma, size))).astype(np.int32)

    def pick(self, weights: dict[str, float], size: int, labels: list[str]) -> np.ndarray:
        """Indices into ``labels`` drawn with the given weights."""
        keys = list(weights)
        p = np.array([weights[k] for k in keys], float)
        drawn = self.rng.choice(len(keys), size, p=p / p.sum())
        lookup = np.array([labels.index(k) for k in keys])
        return lookup[drawn]

    def uniform_int(self, low_high: list[int], size: int) -> np.ndarray:
        low, high = low_high
        return self.rng.integers(low, high + 1, size)

    def modality_cost(self, modality: np.ndarray) -> np.ndarray:
        """Cost in pence of each treatment, drawn from its modality's tariff range."""
        cost = np.zeros(len(modality), np.int64)
        for index, name in enumerate(schema.MODALITIES):
            chosen = modality == index
            cost[chosen] = self.cost(name, int(chosen.sum()))
        return cost

    def cost(self, name: str, size: int) -> np.ndarray:
        low, high = self.r["costs"][name]
        return self.rng.integers(low * 100, high * 100 + 1, size)

    # -- people ---------------------------------------------------------------------------------
    def setup_people(self) -> None:
        """Prepare to draw people. Only people who appear in the data are ever drawn: the work is
        proportional to the events, not the population, so a national population costs no more."""
        r = self.r
        self.bands = r["population"]["age_bands"]
        self.band_share = np.array([b["share"] for b in self.bands], float)
        self.band_lo = np.array([b["from"] for b in self.bands])
        self.band_hi = np.array([b["to"] for b in self.bands])
        self.cancer_band_weight = np.array([b["cancer_weight"] for b in self.bands], float)
        self.death_band_weight = np.array(r["deaths"]["age_share"], float) / self.band_share
        comm_share = np.array([c["share"] for c in r["commissioners"]], float)
        self.comm_p = comm_share / comm_share.sum()
        imd = np.array([c["imd"] for c in r["commissioners"]], float)
        self.imd_cum = np.cumsum(imd / imd.sum(axis=1, keepdims=True), axis=1)
        self.ethnic_labels = list(r["population"]["ethnicity"])
        self.home_tables = []
        for code in self.commissioners:
            shares = r["home_acute"][code]
            cum = np.cumsum([shares[k] for k in shares], dtype=float)
            self.home_tables.append((cum / cum[-1], np.array([self.provider_index[k] for k in shares])))
        self.person_parts: list[dict[str, np.ndarray]] = []
        self.person_count = 0

    def draw_people(self, k: int, band_weight: np.ndarray, male: np.ndarray | float) -> np.ndarray:
        """``k`` new, distinct people with age bands weighted by ``band_weight``; their indices."""
        rng = self.rng
        p = self.band_share * band_weight
        band = rng.choice(len(p), k, p=p / p.sum())
        age = self.band_lo[band] + (rng.random(k) * (self.band_hi[band] - self.band_lo[band] + 1)).astype(np.int64)
        is_male = male if isinstance(male, np.ndarray) else rng.random(k) < male
        comm = rng.choice(len(self.comm_p), k, p=self.comm_p)
        u = rng.random(k)
        imd = (u[:, None] > self.imd_cum[comm, :4]).sum(axis=1)
        ethnicity = self.pick(self.r["population"]["ethnicity"], k, self.ethnic_labels)
        home = np.empty(k, np.int64)
        u = rng.random(k)
        for ci, (cum, codes) in enumerate(self.home_tables):
            mask = comm == ci
            home[mask] = codes[np.minimum(np.searchsorted(cum, u[mask]), len(codes) - 1)]
        self.person_parts.append(
            {"age": age, "male": is_male, "comm": comm, "imd": imd, "ethnicity": ethnicity, "home": home}
        )
        index = np.arange(self.person_count, self.person_count + k)
        self.person_count += k
        return index

    def finish_people(self) -> None:
        """Concatenate everyone drawn and give each a distinct NHS number."""
        self.people = {k: np.concatenate([p[k] for p in self.person_parts]) for k in self.person_parts[0]}
        if self.person_count > self.n:
            raise SynthError(
                f"the data need {self.person_count:,} distinct people but the population is {self.n:,}; "
                "use a larger population or fewer years"
            )
        ids = _affine_permutation(self.rng, self.n, self.person_count)
        shift = None if self.id_offset is None else 0  # chunks share one numbering, so stay distinct
        self.nhs = _nhs_number_of(ids + (self.id_offset or 0), self.rng, shift)
        self.age = self.people["age"]
        self.male = self.people["male"]
        self.comm = self.people["comm"]
        self.imd = self.people["imd"]
        self.ethnicity = self.people["ethnicity"]

    # -- cancer pathways -------------------------------------------------------------------------
    def cancers(self) -> int:
        """Draw the window's cancer patients and add each one's pathway; returns how many.

        The steps run in a fixed order because each draws from the one random stream: reordering
        them (or a draw inside them) changes every later number, so the same seed no longer gives
        the same data.
        """
        c = self._cancer_patients()
        c.route = self._referral_routes(c)
        c.stage = self._stages(c)
        c.icd = self._icd_codes(c)
        self._timeline(c)
        c.death = self._cancer_deaths(c)
        c.modality, c.second_modality = self._modalities(c)
        c.treat_provider = self._treatment_providers(c.modality, c.home)
        self._add_pathway_events(c)
        self._add_second_treatments(c)
        self._add_experience(c)
        self.cancer_death = c.death
        self.cancer_person = c.person
        self.cancer_first_referral = c.t0
        self.urgent_cancers = int((c.route == ROUTE["urgent_gp"]).sum())
        return c.count

    def _cancer_patients(self) -> _Cohort:
        """How many cancers the window holds, their sites, the people who have them, and the day each
        is referred (or presents as an emergency)."""
        r, rng = self.r, self.rng
        sites = r["cancer"]["sites"]
        yearly = self.n * r["cancer"]["incidence_per_100k"] / 1e5 * self.span / 365.25
        count = int(rng.poisson(yearly))
        per = np.array([s["per_100k"] for s in sites.values()], float)
        site = rng.choice(len(per), count, p=per / per.sum())
        male_share = np.array([s["male_share"] for s in sites.values()])
        want_male = rng.random(count) < male_share[site]
        person = self.draw_people(count, self.cancer_band_weight, want_male)
        t0 = rng.integers(0, self.span, count)
        drawn = self.person_parts[-1]
        self._older_deprived_elsewhere(drawn)
        self.cancer_age = drawn["age"]
        return _Cohort(count, person, site, t0, drawn["imd"], drawn["home"])

    def _older_deprived_elsewhere(self, drawn: dict[str, np.ndarray]) -> None:
        """Send a share of the older, more deprived cancer patients of some commissioners to one provider
        (rates.yaml ``case_mix.older_deprived``, a deliberate synthetic difference in case-mix).

        The draw comes from a stream of its own (seeded from the economy's seed), so the main stream,
        and with it every other number of the economy, is the same as without it."""
        rule = self.r.get("case_mix", {}).get("older_deprived")
        if not rule:
            return
        own = np.random.default_rng([self.seed, 18])
        comms = [self.commissioners.index(c) for c in rule["commissioners"]]
        eligible = (
            np.isin(drawn["comm"], comms)
            & (drawn["age"] >= rule["min_age"])
            & np.isin(drawn["imd"], [q - 1 for q in rule["imd"]])
        )
        moved = eligible & (own.random(len(eligible)) < rule["share"])
        drawn["home"][moved] = self.provider_index[rule["provider"]]  # in place: the person's record too

    def _case_mix(self, key: str, c: _Cohort) -> np.ndarray:
        """Each patient's multiplier ``key`` by age band (rates.yaml ``case_mix``; 1 without it)."""
        mix = self.r.get("case_mix")
        if not mix or key not in mix:
            return np.ones(c.count)
        band = np.searchsorted(np.array(mix["age_from"]), self.cancer_age, side="right") - 1
        return np.array(mix[key], float)[band]

    def _worse_quality(self, key: str, c: _Cohort) -> np.ndarray:
        """Each patient's multiplier ``key`` from their provider's quality (``case_mix.worse_quality``)."""
        rule = self.r.get("case_mix", {}).get("worse_quality")
        if not rule or key not in rule:
            return np.ones(c.count)
        return np.where(c.home == self.provider_index[rule["provider"]], float(rule[key]), 1.0)

    def _site_values(self, key: str) -> np.ndarray:
        """One value per tumour site (in the rates' order) from each site's ``key``."""
        return np.array([s[key] for s in self.r["cancer"]["sites"].values()])

    def _referral_routes(self, c: _Cohort) -> np.ndarray:
        """Each cancer's route in, by site; emergencies more likely in deprived areas."""
        emerg_mult = np.array(self.r["deprivation"]["emergency_multiplier"])[c.imd]
        emerg_mult = emerg_mult * self._case_mix("emergency_multiplier", c)
        routes = [s["routes"] for s in self.r["cancer"]["sites"].values()]
        p = {k: np.array([s[k] for s in routes])[c.site] for k in ("emergency", "screening", "upgrade")}
        p["emergency"] = np.minimum(0.9, p["emergency"] * emerg_mult)
        p["other"] = np.array([s["other"] for s in routes])[c.site]
        u = self.rng.random(c.count)
        route = np.full(c.count, ROUTE["urgent_gp"])
        edge = np.zeros(c.count)
        for name in ("emergency", "screening", "upgrade", "other"):
            hit = (u >= edge) & (u < edge + p[name])
            route[hit] = ROUTE[name]
            edge = edge + p[name]
        # breast cancers found after a breast symptomatic referral (cancer not suspected)
        breast = np.array([n == "breast" for n in self.site_names])[c.site]
        symptomatic = self.rng.random(c.count) < self.r["pathway_events"]["breast_symptomatic_share_of_breast_cancers"]
        route[breast & (route == ROUTE["urgent_gp"]) & symptomatic] = ROUTE["breast_symptomatic"]
        return route

    def _stages(self, c: _Cohort) -> np.ndarray:
        """Stage 1–4 at diagnosis, by site; later after an emergency presentation, in deprived areas, in
        older patients and at a provider of worse quality (``case_mix``)."""
        emergency = c.route == ROUTE["emergency"]
        stage_mix = np.array(self._site_values("stage"), float)[c.site]
        emergency_mix = np.array(self.r["cancer"]["emergency_stage"], float)
        in_situ = np.array([n == "in_situ" for n in self.site_names])[c.site]
        stage_mix[emergency & ~in_situ] = emergency_mix
        late = np.array(self.r["deprivation"]["late_stage_multiplier"])[c.imd]
        late = late * self._case_mix("late_stage_multiplier", c) * self._worse_quality("late_stage_multiplier", c)
        stage_mix[:, 2:] *= late[:, None]
        stage_mix /= stage_mix.sum(axis=1, keepdims=True)
        stage = 1 + (self.rng.random(c.count)[:, None] > np.cumsum(stage_mix, axis=1)).sum(axis=1)
        return np.minimum(stage, 4)

    def _icd_codes(self, c: _Cohort) -> np.ndarray:
        """An ICD-10 code for each diagnosis, drawn evenly from its site's codes."""
        icd = np.empty(c.count, np.int64)
        for si, s in enumerate(self.r["cancer"]["sites"].values()):
            mask = c.site == si
            codes = np.array([self.icd_index[code] for code in s["icd10"]])
            icd[mask] = codes[self.rng.integers(0, len(codes), int(mask.sum()))]
        return icd

    def _timeline(self, c: _Cohort) -> None:
        """The days of first seen, diagnosis, decision to treat and first treatment, with any pause."""
        rates = self.r["cancer"]
        emergency = c.route == ROUTE["emergency"]
        c.first_seen = c.t0 + self.wait("referral_to_first_seen", c.count)
        events = self.r["pathway_events"]
        c.missed = (~emergency) & (self.rng.random(c.count) < events["did_not_attend_first_share"])
        c.missed_days = np.where(c.missed, self.uniform_int(events["did_not_attend_days"], c.count), 0)
        c.first_seen = c.first_seen + c.missed_days  # seen again after the missed appointment
        c.diagnosis = np.where(
            emergency,
            c.t0 + self.wait("emergency_admission_to_diagnosis", c.count),
            np.maximum(c.first_seen + 1, c.t0 + self.wait("referral_to_diagnosis", c.count)),
        )
        c.decision = c.diagnosis + self.wait("diagnosis_to_decision", c.count)
        c.paused = (~emergency) & (self.rng.random(c.count) < rates["clock_adjustment_share"])
        c.pause_days = np.where(c.paused, self.uniform_int(rates["clock_adjustment_days"], c.count), 0)
        c.treatment = c.decision + self.wait("decision_to_treatment", c.count) + c.pause_days

    def _cancer_deaths(self, c: _Cohort) -> np.ndarray:
        """The day each patient dies: within a year by site and stage, with a deprivation gradient;
        later deaths at a lower hazard (most fall after the window)."""
        r, rng = self.r, self.rng
        s1y = np.array(self._site_values("survival_1y"))[c.site, c.stage - 1]
        mult = np.array(r["deprivation"]["death_1y_multiplier"])[c.imd]
        mult = mult * self._case_mix("death_1y_multiplier", c) * self._worse_quality("death_1y_multiplier", c)
        p_die = np.minimum(0.99, (1 - s1y) * mult)
        dies_1y = rng.random(c.count) < p_die
        later_rate = np.maximum(p_die * r["deaths"]["later_year_death_share_of_1y"], 1e-6)
        return np.where(
            dies_1y,
            c.diagnosis + np.ceil(365 * rng.beta(1.2, 1.8, c.count)).astype(np.int64),
            c.diagnosis + 365 + np.ceil(rng.exponential(365 / later_rate)).astype(np.int64),
        )

    def _modalities(self, c: _Cohort) -> tuple[np.ndarray, np.ndarray]:
        """The first treatment's modality, by site and early/late stage, and a second one's."""
        modality = np.empty(c.count, np.int64)
        second_modality = np.empty(c.count, np.int64)
        for si, s in enumerate(self.r["cancer"]["sites"].values()):
            for early, key in ((True, "early_modality"), (False, "late_modality")):
                mask = (c.site == si) & ((c.stage <= 2) == early)
                k = int(mask.sum())
                if k:
                    modality[mask] = self.pick(s[key], k, MODALITY_NAMES)
                    mix = {**s["early_modality"], **s["late_modality"]}
                    second_modality[mask] = self.pick(mix, k, MODALITY_NAMES)
        return modality, second_modality

    def _treatment_providers(self, modality: np.ndarray, home: np.ndarray) -> np.ndarray:
        """Who treats: a share of oncology at the cancer centre, palliative care in the community,
        everything else at the patient's home acute trust."""
        centre = self.provider_index[self.r["cancer_centre"]["code"]]
        oncology = np.isin(modality, ONCOLOGY)
        at_centre = oncology & (self.rng.random(len(modality)) < self.r["cancer_centre"]["share_of_oncology"])
        provider = np.where(at_centre, centre, home)
        return np.where(modality == MODALITY["palliative"], self.community, provider)

    def _add_pathway_events(self, c: _Cohort) -> None:
        """The pathway's rows, from referral to first treatment; none after the patient's death."""
        add = self.parts.add
        e = c.route == ROUTE["emergency"]
        admission_cost = self.cost("emergency_admission", int(e.sum()))
        add("emergency_admission", c.person[e], c.t0[e], c.home[e], cost_pence=admission_cost)
        # most emergency presentations are diagnosed in the admission with no referral recorded
        events = self.r["pathway_events"]
        no_referral = e & (self.rng.random(c.count) < events["emergency_without_referral_share"])
        referred = ~no_referral
        add("referral", c.person[referred], c.t0[referred], c.home[referred], route=c.route[referred])
        # a second referral (screening or urgent) while the pathway is still open: it joins the pathway
        again = ~e & (self.rng.random(c.count) < events["second_referral_while_open_share"])
        again &= c.diagnosis - c.t0 >= 2
        gap = np.maximum(c.diagnosis - c.t0 - 1, 1)
        when = c.t0 + 1 + (self.rng.random(c.count) * gap).astype(np.int64)
        second_route = np.where(self.rng.random(c.count) < 0.5, ROUTE["screening"], ROUTE["urgent_gp"])
        add("referral", c.person[again], when[again], c.home[again], route=second_route[again])
        m = c.missed  # the did-not-attend, dated the day after the referral: a first-seen adjustment
        add("clock_adjustment", c.person[m], c.t0[m] + 1, c.home[m], adjustment_days=c.missed_days[m])
        ne = ~e
        first_seen_cost = self.cost("first_seen", int(ne.sum()))
        add("first_seen", c.person[ne], c.first_seen[ne], c.home[ne], cost_pence=first_seen_cost)
        diagnosis_cost = self.cost("diagnosis", c.count)
        add("diagnosis", c.person, c.diagnosis, c.home, icd=c.icd, stage=c.stage, cost_pence=diagnosis_cost)
        m = c.alive(c.decision)
        add("decision_to_treat", c.person[m], c.decision[m], c.home[m])
        m = c.paused & c.alive(c.decision)
        add("clock_adjustment", c.person[m], c.decision[m], c.home[m], adjustment_days=c.pause_days[m])
        m = c.alive(c.treatment)
        cost = self.modality_cost(c.modality)
        add("treatment", c.person[m], c.treatment[m], c.treat_provider[m], modality=c.modality[m], cost_pence=cost[m])

    def _add_second_treatments(self, c: _Cohort) -> None:
        """A second treatment for a share of patients still alive (not after palliative care or monitoring)."""
        second_day = c.treatment + self.wait("treatment_to_second", c.count)
        m = c.alive(second_day) & (self.rng.random(c.count) < self.r["cancer"]["second_treatment_share"])
        m &= ~np.isin(c.modality, [MODALITY["palliative"], MODALITY["active_monitoring"]])
        second_oncology = np.isin(c.second_modality, ONCOLOGY)
        centre = self.provider_index[self.r["cancer_centre"]["code"]]
        share = self.r["cancer_centre"]["share_of_oncology"]
        second_at_centre = second_oncology & (self.rng.random(c.count) < share)
        provider = np.where(second_at_centre, centre, c.home)
        cost = self.modality_cost(c.second_modality)
        modality = c.second_modality[m]
        # the subsequent treatment's own decision to treat, after the first treatment (31-day standard)
        decided = np.maximum(c.treatment + 1, second_day - self.wait("decision_to_treatment", c.count))
        self.parts.add("decision_to_treat", c.person[m], decided[m], provider[m])
        self.parts.add("treatment", c.person[m], second_day[m], provider[m], modality=modality, cost_pence=cost[m])

    def _add_experience(self, c: _Cohort) -> None:
        """Survey returns: a share of treated patients answer, deprived areas slightly less satisfied."""
        rates, rng = self.r["cancer"], self.rng
        survey = c.treatment + self.wait("treatment_to_experience", c.count)
        m = c.alive(survey) & (rng.random(c.count) < rates["experience_response_share"])
        weights = np.array(rates["experience_score_weights"], float)
        score = rng.choice(11, c.count, p=weights / weights.sum())
        shift = np.array(self.r["deprivation"]["experience_shift"])[c.imd]
        nudge = np.where(rng.random(c.count) < np.abs(shift), np.sign(shift), 0).astype(np.int64)
        score = np.clip(score + nudge, 0, 10)
        self.parts.add("patient_experience", c.person[m], survey[m], c.treat_provider[m], score=score[m])

    # -- referrals that are not cancer ------------------------------------------------------------
    def ruled_out(self) -> int:
        r, rng = self.r, self.rng
        conv = r["cancer"]["urgent_conversion_rate"]
        count = int(rng.poisson(self.urgent_cancers / conv * (1 - conv)))
        # some people are referred more than once in the window
        pool = self.draw_people(
            max(1, int(count * 0.9)), self.cancer_band_weight + 0.3, self.r["population"]["male_share"]
        )
        person = pool[rng.integers(0, len(pool), count)]
        home_pool = self.person_parts[-1]["home"]
        t0 = rng.integers(0, self.span, count)
        home = home_pool[person - pool[0]]
        first_seen = t0 + self.wait("referral_to_first_seen", count)
        ruled_out = np.maximum(first_seen + 1, t0 + self.wait("referral_to_ruled_out", count))
        share = self.r["pathway_events"]["breast_symptomatic_share_of_ruled_out"]
        route = np.where(rng.random(count) < share, ROUTE["breast_symptomatic"], ROUTE["urgent_gp"])
        self.parts.add("referral", person, t0, home, route=route)
        self.parts.add("first_seen", person, first_seen, home, cost_pence=self.cost("first_seen", count))
        self.parts.add("cancer_ruled_out", person, ruled_out, home, cost_pence=self.cost("cancer_ruled_out", count))
        return count

    # -- deaths and end-of-life care -------------------------------------------------------------
    def deaths(self) -> int:
        r, rng = self.r, self.rng
        d = r["deaths"]
        dying = self.cancer_death < self.span
        cancer_deaths = self.cancer_person[dying]
        total = self.n * d["crude_rate_per_100k"] / 1e5 * self.span / 365.25
        other_count = max(0, int(rng.poisson(max(total - len(cancer_deaths), 0))))
        other = self.draw_people(other_count, self.death_band_weight, self.r["population"]["male_share"])
        person = np.concatenate([cancer_deaths, other])
        is_cancer = np.concatenate([np.ones(len(cancer_deaths), bool), np.zeros(len(other), bool)])
        day = np.concatenate([self.cancer_death[dying], rng.integers(0, self.span, len(other))])
        all_home = np.concatenate([p["home"] for p in self.person_parts])
        count = len(person)
        places = list(schema.PLACES)
        residence = self.pick(d["usual_residence"], count, places)
        place = np.empty(count, np.int64)
        for res, key in (
            ("home", "place_given_home"),
            ("care_home", "place_given_care_home"),
            ("other", "place_given_other"),
        ):
            for cancer in (False, True):
                mask = (residence == places.index(res)) & (is_cancer == cancer)
                table = d["cancer_place_given_home"] if (cancer and res == "home") else d[key]
                place[mask] = self.pick(table, int(mask.sum()), places)
        # a few deaths in "other" places are in religious establishments (a usual place of residence)
        religious = (place == places.index("other")) & (
            rng.random(count) < r["pathway_events"]["religious_establishment_share_of_other_deaths"]
        )
        place[religious] = places.index("religious_establishment")
        hospices = r["hospice_share"]
        hospice = self.pick(hospices, count, self.providers)
        community = self.community
        home = all_home[person]
        death_provider = np.select(
            [place == places.index("hospital"), place == places.index("hospice")], [home, hospice], community
        )
        self.parts.add("death", person, day, death_provider, place=place, residence=residence)

        def share(key: str) -> np.ndarray:
            return np.where(is_cancer, d[key]["cancer"], d[key]["other"])

        m = rng.random(count) < share("palliative_register_share")
        when = day - self.uniform_int(d["register_days_before_death"], count)
        self.parts.add(
            "palliative_register",
            person[m],
            when[m],
            community,
            cost_pence=self.cost("palliative_register", int(m.sum())),
        )
        m = rng.random(count) < share("specialist_palliative_share")
        when = day - self.uniform_int(d["specialist_days_before_death"], count)
        spc_provider = np.where(rng.random(count) < 0.5, hospice, community)
        spc_cost = self.cost("specialist_palliative_care", int(m.sum()))
        self.parts.add("specialist_palliative_care", person[m], when[m], spc_provider[m], cost_pence=spc_cost)
        m = (place == places.index("hospice")) | (rng.random(count) < d["hospice_stay_share_not_dying_there"])
        when = day - self.uniform_int(d["hospice_days_before_death"], count)
        self.parts.add(
            "hospice_stay", person[m], when[m], hospice[m], cost_pence=self.cost("hospice_stay", int(m.sum()))
        )
        m = rng.random(count) < d["emergency_admission_last_90d_share"]
        when = day - rng.integers(1, 91, count)
        # an emergency admission of a cancer patient must not predate the referral it would have led to
        if len(self.cancer_person):
            first_ref = np.full(self.person_count, -1, np.int64)
            first_ref[self.cancer_person] = self.cancer_first_referral
            m &= (first_ref[person] < 0) | (when > first_ref[person])
        self.parts.add(
            "emergency_admission",
            person[m],
            when[m],
            home[m],
            cost_pence=self.cost("emergency_admission", int(m.sum())),
        )
        return count


def _affine_permutation(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """The first ``k`` values of a random permutation of range(n), without materialising it."""
    while True:
        a = int(rng.integers(1, n)) if n > 1 else 1
        if np.gcd(a, n) == 1:
            break
    b = int(rng.integers(0, n))
    return (a * np.arange(k, dtype=np.int64) + b) % n


def _nhs_number_of(ids: np.ndarray, rng: np.random.Generator, shift: int | None = None) -> np.ndarray:
    """A distinct, valid NHS number for each distinct id below 90 million, all in the 900–999 range
    that is never issued to people in England.

    Why it is a bijection without a lookup table: among the ten 9-digit prefixes that differ only
    in their last digit (weight 2), the weighted sums differ by 0, 2, ..., 18 — ten distinct
    residues mod 11 — so at most one of them has no valid check digit. Id ``i`` takes the
    ``i mod 9``-th valid prefix of group ``i div 9`` (groups scrambled by an affine map).
    """
    groups = 10_000_000  # 8-digit stems 90,000,000 .. 99,999,999
    if len(ids) and ids.max() >= groups * 9:
        raise SynthError("more than 90 million people: out of synthetic NHS numbers")
    a = 7_654_321  # coprime with 10^7
    b = int(rng.integers(0, groups))  # drawn even when ``shift`` is given, so the random stream is unchanged
    b = b if shift is None else shift
    stem = 90_000_000 + (a * (ids // 9) + b) % groups
    rank = ids % 9
    stem_sum = np.zeros(len(ids), np.int64)
    rest = stem.copy()
    for weight in range(3, 11):  # digits 1-8 of the prefix; the 9th digit has weight 2
        stem_sum += (rest % 10) * weight
        rest //= 10
    # last prefix digit k is invalid when (stem_sum + 2k) % 11 == 1, i.e. 2k ≡ 1 - stem_sum (mod 11); 2⁻¹ = 6
    bad = ((1 - stem_sum) * 6) % 11  # 10 means no invalid digit in this group
    digit = np.where(rank >= bad, rank + 1, rank)
    first_nine = stem * 10 + digit
    check = nhs_number.check_digits(first_nine)
    return first_nine * 10 + check


def generate(
    population: int,
    years: int,
    seed: int = 0,
    start: date | None = None,
    rates: dict[str, Any] | None = None,
    error_rate: float = 0.0,
    id_offset: int | None = None,
) -> Economy:
    """Generate an economy; inject ``error_rate`` × rows realistic errors (see :mod:`.errors`).

    ``id_offset`` makes one chunk of a larger economy: people get ids from ``id_offset`` up and one
    shared NHS-number mapping, so chunks generated with different seeds and offsets ``k × population``
    never share a person or a record id (the benchmark builds 100M events this way, in bounded memory).
    """
    if population < 1000:
        raise SynthError("population must be at least 1,000")
    if years < 1:
        raise SynthError("years must be at least 1")
    if not 0.0 <= error_rate <= 0.5:
        raise SynthError("error_rate must be between 0 and 0.5")
    start = start or default_start(years)
    gen = _Generator(rates or load_rates(), population, years, start, seed, id_offset)
    gen.setup_people()
    cancers = gen.cancers()
    ruled_out = gen.ruled_out()
    deaths = gen.deaths()
    gen.finish_people()
    cols = gen.parts.concat()
    in_window = (cols["day"] >= 0) & (cols["day"] < gen.span)
    cols = {k: v[in_window] for k, v in cols.items()}
    order = np.argsort(cols["day"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    table, injected, row_day = inject(gen, cols, error_rate)
    meta = {"cancers": cancers, "ruled_out_referrals": ruled_out, "deaths_generated": deaths}
    return Economy(table, injected, start, years, seed, population, row_day, meta)


def contract_year_bounds(start: date, years: int) -> list[tuple[date, date]]:
    """[first day, last day] of each contract year."""
    out = []
    for y in range(years):
        first = date(start.year + y, start.month, start.day)
        out.append((first, date(start.year + y + 1, start.month, start.day) - timedelta(days=1)))
    return out
