"""The contract as Open Contracting Data Standard (OCDS 1.1) releases, for anyone to scrutinise.

Campaigners in the seeds could not see who was paid what, nor find any record of the business
case. This publishes, in the standard that procurement transparency tools already read:

- **planning**: the budget (the contract's value) and the decision log's business case, options
  appraisal and consultation records as documents — or a rationale saying none is on record;
- **tender** and **award**: the prime provider as supplier, the commissioners as buyers and payers;
- **contract**: term and value, with gate and variation decisions as documents and amendments;
- **implementation**: one transaction per ledger transfer between two organisations (money the
  prime keeps moves between its own accounts and is not a transaction), and a milestone for
  each stage gate, met or not as evaluated when the payment periods were closed.

Nothing patient-level goes in: the ledger is money between organisations, and the gate's
evidence is rates, not counts. The decision log's head hash is published, which anchors the
log outside its file (see :mod:`carecontract.publish.decisions`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook, slug
from carecontract.publish.decisions import DecisionLog
from carecontract.records.store import Store
from carecontract.terms.loader import Terms
from carecontract.terms.model import FeeStage

OCDS_VERSION = "1.1"
DEFAULT_OCID_PREFIX = "ocds-carect"  # not registered: publishers set their own with --ocid-prefix
# decision kinds → OCDS documentType codes (an open codelist) and the section they belong to
DOCUMENTS = {
    "business_case": ("needsAssessment", "planning"),
    "options_appraisal": ("feasibilityStudy", "planning"),
    "consultation": ("hearingNotice", "planning"),
    "gate": ("physicalProgressReport", "contract"),
    "variation": ("contractArrangements", "contract"),
}
# ledger account kinds that are organisations; the management account is the prime's own retained income
ORGANISATION_ACCOUNTS = (
    accounts.COMMISSIONER,
    accounts.PRIME,
    accounts.SUBCONTRACTOR,
    accounts.kind(accounts.HMRC_VAT),
)


class PublishError(ValueError):
    """Something that must stop a publication (a tampered decision log), said in one line."""


def _money(pounds: float) -> dict[str, Any]:
    return {"amount": round(float(pounds), 2), "currency": "GBP"}


def _when(day: Any) -> str:
    """OCDS dates are date-times; a contract date is taken as midnight UTC."""
    return f"{day.isoformat()}T00:00:00Z"


def _party_id(account: str) -> str:
    if accounts.kind(account) == accounts.kind(accounts.HMRC_VAT):
        return "GB-HMRC"
    return f"carecontract-{accounts.code(account)}"


def _parties(terms: Terms) -> list[dict[str, Any]]:
    c = terms.contract
    parties = [
        {"id": _party_id(accounts.commissioner(x.code)), "name": x.name, "roles": ["buyer", "payer"],
         "identifier": {"scheme": "GB-NHS", "id": x.code, "legalName": x.name}}
        for x in c.commissioners
    ]  # fmt: skip
    parties.append({"id": _party_id(accounts.prime(c.prime.code)), "name": c.prime.name,
                    "roles": ["supplier", "tenderer", "payer", "payee"],
                    "identifier": {"scheme": "GB-NHS", "id": c.prime.code, "legalName": c.prime.name}})  # fmt: skip
    for s in c.subcontractors:
        parties.append({"id": _party_id(accounts.subcontractor(s.code)), "name": s.name, "roles": ["payee"],
                        "identifier": {"scheme": "GB-NHS", "id": s.code, "legalName": s.name},
                        "details": {"subcontractorTo": c.prime.code, "services": list(s.services),
                                    "tumourSites": s.tumour_sites}})  # fmt: skip
    parties.append({"id": _party_id(accounts.HMRC_VAT), "name": "HM Revenue & Customs", "roles": ["payee"]})
    return parties


def _reference(parties: list[dict[str, Any]], party_id: str) -> dict[str, str]:
    party = next(p for p in parties if p["id"] == party_id)
    return {"id": party["id"], "name": party["name"]}


def _documents(records: list[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    out = []
    for r in records:
        document_type, where = DOCUMENTS[r["kind"]]
        if where != section:
            continue
        attachment = r.get("attachment")
        description = r["text"] + f" (decision record {r['seq']}, hash {r['hash']}"
        description += f"; attachment {attachment['name']} sha256 {attachment['sha256']})" if attachment else ")"
        out.append({"id": f"decision-{r['seq']}", "documentType": document_type,
                    "title": r["kind"].replace("_", " ").capitalize(), "description": description,
                    "datePublished": r["at"].replace("+00:00", "Z")})  # fmt: skip
    return out


def _transactions(book: PaymentBook, parties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One OCDS transaction per ledger transfer between two different organisations."""
    by_txn: dict[str, list[dict[str, Any]]] = {}
    for row in book.ledger_rows():
        by_txn.setdefault(row["txn"], []).append(row)
    starts = {d.year: d for d in book.terms.contract.contract_years()}
    out = []
    for txn, rows in by_txn.items():
        payers = [r for r in rows if r["pence"] < 0]
        payees = [r for r in rows if r["pence"] > 0]
        if len(payers) != 1 or len(payees) != 1:
            raise PublishError(f"ledger transaction {txn} is not a transfer between two accounts")
        payer, payee = payers[0], payees[0]
        if not all(accounts.kind(r["account"]) in ORGANISATION_ACCOUNTS for r in (payer, payee)):
            continue  # the prime moving money into its own retained income
        year = payer["period"]
        out.append({"id": txn, "source": f"urn:carecontract:ledger:{slug(book.terms.contract.name)}:{payer['rule']}",
                    "date": _when(starts.get(year) or book.terms.contract.term.start),
                    "value": _money(payee["pence"] / 100),
                    "payer": _reference(parties, _party_id(payer["account"])),
                    "payee": _reference(parties, _party_id(payee["account"]))})  # fmt: skip
    return out


def _milestones(book: PaymentBook) -> list[dict[str, Any]]:
    """Each fee stage's gate: met in the first closed year it passed, not met once the stage ran out."""
    c = book.terms.contract
    closed: dict[int, dict[str, Any]] = {}
    for version in book.manifest()["versions"]:
        closed[version["period"]] = version["result"]
    out = []
    for index, stage in enumerate(c.stages):
        if not isinstance(stage, FeeStage):
            continue
        due = c.term.year_start(stage.max_years)
        evaluations = [(year, r["gate"]) for year, r in sorted(closed.items()) if r.get("gate")]
        passed = next(((year, g) for year, g in evaluations if g["passed"]), None)
        criteria = "; ".join(f"{k} {v}" for k, v in stage.gate.model_dump(exclude_none=True).items() if v)
        milestone: dict[str, Any] = {
            "id": f"gate-{index + 1}",
            "title": f"{stage.name}: gate to the next stage",
            "type": "assessment",
            "description": f"Criteria: {criteria}. Evaluated from the recorded data when each payment period closes.",
            "dueDate": _when(due),
        }
        if passed:
            milestone |= {"status": "met", "dateMet": _when(c.term.year_start(passed[0] - c.term.start.year + 1))}
        elif evaluations and max(year for year, _ in evaluations) >= due.year - 1:
            last = evaluations[-1][1]
            missed = [x["name"] for x in last["criteria"] if not x["passed"]]
            milestone |= {"status": "notMet"}
            milestone["description"] += f" Not met by {due}: {', '.join(missed) or 'no evidence'}."
        else:
            milestone |= {"status": "scheduled"}
        out.append(milestone)
    return out


def release_package(terms: Terms, store: str | Store, decision_log: str | None = None,
                    ocid_prefix: str = DEFAULT_OCID_PREFIX, uri: str | None = None) -> dict[str, Any]:  # fmt: skip
    """An OCDS 1.1 release package for the contract: planning, tender, award, contract and implementation."""
    store = store if isinstance(store, Store) else Store(store)
    c = terms.contract
    log = DecisionLog(decision_log) if decision_log else None
    records = log.records() if log else []
    if log and (problems := log.verify()):
        raise PublishError(f"{log.path} fails verification, so it cannot be published: {problems[0]}")
    book = PaymentBook(store, terms)
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    ocid = f"{ocid_prefix}-{slug(c.name)}"
    parties = _parties(terms)
    lead = max(c.commissioners, key=lambda x: x.share)
    buyer = _reference(parties, _party_id(accounts.commissioner(lead.code)))
    prime = _reference(parties, _party_id(accounts.prime(c.prime.code)))
    value = _money(c.value.total_gbp)
    period = {"startDate": _when(c.term.start), "endDate": _when(c.term.end - timedelta(days=1)),
              "durationInDays": (c.term.end - c.term.start).days}  # fmt: skip
    planning_docs = _documents(records, "planning")
    rationale = c.description or c.name
    if not planning_docs:
        rationale += " No business case, options appraisal or consultation is on record in the decision log."
    common = {"ocid": ocid, "date": now, "initiationType": "tender", "parties": parties, "buyer": buyer,
              "language": "en"}  # fmt: skip
    tender = {"id": f"{slug(c.name)}-tender", "title": c.name, "description": rationale, "status": "complete",
              "value": value, "procuringEntity": buyer, "mainProcurementCategory": "services",
              "contractPeriod": period}  # fmt: skip
    award = {"id": f"{slug(c.name)}-award", "title": f"{c.name}: prime provider", "status": "active",
             "date": _when(c.term.start), "value": value, "suppliers": [prime], "contractPeriod": period}  # fmt: skip
    contract: dict[str, Any] = {
        "id": f"{slug(c.name)}-contract", "awardID": award["id"], "title": c.name, "status": "active",
        "period": period, "value": value, "dateSigned": _when(c.term.start),
        "documents": _documents(records, "contract"),
        "amendments": [{"id": f"decision-{r['seq']}", "date": r["at"].replace("+00:00", "Z"), "rationale": r["text"]}
                       for r in records if r["kind"] == "variation"],
    }  # fmt: skip
    implementation = {"transactions": _transactions(book, parties), "milestones": _milestones(book)}
    releases = [
        {**common, "id": f"{ocid}-planning", "tag": ["planning"],
         "planning": {"rationale": rationale, "budget": {"description": "Contract value over the term",
                                                         "amount": value}, "documents": planning_docs}},
        {**common, "id": f"{ocid}-tender", "tag": ["tender"], "tender": tender},
        {**common, "id": f"{ocid}-award", "tag": ["award", "contract"], "tender": {"id": tender["id"]},
         "awards": [award], "contracts": [contract]},
        {**common, "id": f"{ocid}-implementation", "tag": ["implementation"], "tender": {"id": tender["id"]},
         "awards": [award], "contracts": [{**contract, "implementation": implementation}]},
    ]  # fmt: skip
    package: dict[str, Any] = {
        "uri": uri or f"urn:carecontract:{slug(c.name)}:{terms.fingerprint}",
        "version": OCDS_VERSION,
        "publishedDate": now,
        "publisher": {"name": f"{lead.name}, for the commissioners of {c.name}"},
        "license": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
        "releases": releases,
    }
    if records:
        # anchors the log outside its file: a reader can check the log they are given ends here
        package["decisionLog"] = {"records": len(records), "headHash": records[-1]["hash"], "verified": True}
    return package
