"""The contract as Open Contracting Data Standard (OCDS 1.1) releases, for anyone to scrutinise.

Campaigners in the seeds could not see who was paid what, nor find any record of the business
case. This publishes, in the standard that procurement transparency tools already read:

- **planning**: the budget (the contract's value) and the decision log's business case, options
  appraisal and consultation records as documents — or a rationale saying none is on record;
- **tender** and **award**: the prime provider as supplier, the commissioners as buyers and payers;
- **contract**: term and value, with gate and variation decisions as documents and amendments;
- **implementation**: one transaction per ledger transfer between two organisations (money the
  prime keeps moves between its own accounts and is not a transaction), and a milestone for
  each stage gate, met or not as evaluated when the payment periods were closed;
- **outcomes** with the OCDS metrics extension: the contract's outcome targets as
  ``contract.agreedMetrics`` (target, threshold, weight, the clause), the observed rate of each
  closed year as ``implementation.metrics``, and what each kind of organisation received each
  year as a financial metric;
- **what each payment pays for**: a ``payment`` milestone for each closed contract year (with
  its ``value``, as OCDS 1.2 adds in standard PR #1434, issue #438), and each transaction linked
  to it by ``relatedImplementationMilestone`` (the transaction related milestones extension, which
  PR #1434 points to for exactly this).

Nothing patient-level goes in: the ledger is money between organisations, and the gate's
evidence is rates, not counts. The decision log's head hash is published, which anchors the
log outside its file (see :mod:`carecontract.publish.decisions`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carecontract.errors import UserError
from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook, slug
from carecontract.payments.ledger import transfers
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.money import money_by_kind
from carecontract.records.store import Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.terms.model import FeeStage

OCDS_VERSION = "1.1"
#: The OCDS extensions the package uses, declared as the standard asks (each extension's extension.json).
EXTENSIONS = (
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_metrics_extension/master/extension.json",
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_transaction_milestones_extension/master/extension.json",
)
DEFAULT_OCID_PREFIX = "ocds-carect"  # not registered: publishers set their own with --ocid-prefix
# decision kinds → OCDS documentType codes (an open codelist) and the section they belong to
DOCUMENTS = {
    "business_case": ("needsAssessment", "planning"),
    "options_appraisal": ("feasibilityStudy", "planning"),
    "consultation": ("hearingNotice", "planning"),
    "gate": ("physicalProgressReport", "contract"),
    "variation": ("contractArrangements", "contract"),
    "dispute": ("financialProgressReport", "contract"),  # a notice of calculation error and its steps
}
# ledger account kinds that are organisations; the management account is the prime's own retained income
ORGANISATION_ACCOUNTS = (
    accounts.COMMISSIONER,
    accounts.PRIME,
    accounts.SUBCONTRACTOR,
    accounts.kind(accounts.HMRC_VAT),
)


class PublishError(UserError, ValueError):
    """Something that must stop a publication (a tampered decision log), said in one line."""


def _money(pounds: float) -> dict[str, Any]:
    return {"amount": round(float(pounds), 2), "currency": "GBP"}


def _when(day: Any) -> str:
    """OCDS dates are date-times; a contract date is taken as midnight UTC."""
    return f"{day if isinstance(day, str) else day.isoformat()}T00:00:00Z"


def _party_id(account: str) -> str:
    if accounts.kind(account) == accounts.kind(accounts.HMRC_VAT):
        return "GB-HMRC"
    return f"carecontract-{accounts.code(account)}"


def _parties(terms: Terms) -> list[dict[str, Any]]:
    c = terms.contract
    parties = [
        {
            "id": _party_id(accounts.commissioner(x.code)),
            "name": x.name,
            "roles": ["buyer", "payer"],
            "identifier": {"scheme": "GB-NHS", "id": x.code, "legalName": x.name},
        }
        for x in c.commissioners
    ]
    parties.append(
        {
            "id": _party_id(accounts.prime(c.prime.code)),
            "name": c.prime.name,
            "roles": ["supplier", "tenderer", "payer", "payee"],
            "identifier": {"scheme": "GB-NHS", "id": c.prime.code, "legalName": c.prime.name},
            "details": {"organisationKind": c.prime.kind},
        }
    )
    for s in c.subcontractors:
        parties.append(
            {
                "id": _party_id(accounts.subcontractor(s.code)),
                "name": s.name,
                "roles": ["payee"],
                "identifier": {"scheme": "GB-NHS", "id": s.code, "legalName": s.name},
                "details": {
                    "subcontractorTo": c.prime.code,
                    "organisationKind": s.kind,
                    "services": list(s.services),
                    "tumourSites": s.tumour_sites,
                },
            }
        )
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
        out.append(
            {
                "id": f"decision-{r['seq']}",
                "documentType": document_type,
                "title": r["kind"].replace("_", " ").capitalize(),
                "description": description,
                "datePublished": r["at"].replace("+00:00", "Z"),
            }
        )
    return out


def _transactions(book: PaymentBook, parties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One OCDS transaction per transfer between two different organisations, of what was paid
    (:meth:`PaymentBook.paid_rows`: the journal's payments on account, true-ups and reconciliations,
    else the closed statements), each linked to the payment milestone of its contract year."""
    by_txn: dict[str, list[dict[str, Any]]] = {}
    for row in book.paid_rows():
        by_txn.setdefault(row["txn"], []).append(row)
    starts = {d.year: d for d in book.terms.contract.contract_years()}
    out = []
    for txn, rows in by_txn.items():
        if sum(r["pence"] for r in rows) != 0:
            raise PublishError(f"ledger transaction {txn} does not balance")
        pairs = transfers(rows)
        for n, (payer, payee, pence) in enumerate(pairs):
            if not all(accounts.kind(r["account"]) in ORGANISATION_ACCOUNTS for r in (payer, payee)):
                continue  # the prime moving money into its own retained income; money into or out of suspense
            year = payer["period"]
            out.append(
                {
                    "id": txn if len(pairs) == 1 else f"{txn}-{n + 1}",
                    "source": f"urn:carecontract:ledger:{slug(book.terms.contract.name)}:{payer['rule']}",
                    "date": _when(payer.get("on") or starts.get(year) or book.terms.contract.term.start),
                    "value": _money(pence / 100),
                    "payer": _reference(parties, _party_id(payer["account"])),
                    "payee": _reference(parties, _party_id(payee["account"])),
                    "relatedImplementationMilestone": {"id": _payment_id(year), "title": _payment_title(book, year)},
                }
            )
    return out


def _payment_id(year: int) -> str:
    return f"payment-{year}"


def _payment_title(book: PaymentBook, year: int) -> str:
    return f"Payment for contract year {year}/{str(year + 1)[-2:]} of {book.terms.contract.name}"


def _closed(book: PaymentBook) -> dict[int, dict[str, Any]]:
    """The latest closed version of each contract year (the manifest lists versions in order)."""
    return {v["period"]: v for v in book.manifest()["versions"]}


def _on_account_only(book: PaymentBook) -> dict[int, int]:
    """Years the journal has paid on account and not reconciled yet, with what was paid so far (pence):
    a statement closed for such a year (``close``) is what is due, not what was paid."""
    from carecontract.payments.journal import Journal

    entries = Journal(book.root, book.terms.contract.name).entries()
    reconciled = {e["year"] for e in entries if e["kind"] in ("reconciliation", "subsequent")}
    paid: dict[int, int] = {}
    for e in entries:
        if e["kind"] == "on_account" and e["year"] not in reconciled:
            paid[e["year"]] = paid.get(e["year"], 0) + int(e["pence"])
    return paid


def _payment_milestones(book: PaymentBook) -> list[dict[str, Any]]:
    """One ``payment`` milestone per closed contract year: what it pays for, its value (what the
    commissioners paid, net of any gain/loss share) and when it was met (the year closed)."""
    c = book.terms.contract
    out = []
    for year, version in sorted(_closed(book).items()):
        result = version["result"]
        index = year - c.term.start.year
        what = "the Stage 1 fee year" if result["kind"] == "fee" else "the outcomes achieved"
        achieved = result.get("achievement")
        if achieved is not None:
            what += (
                f" (weighted achievement {achieved:.3f}, at-risk pot released £{result['released_pence'] / 100:,.2f})"
            )
        net = result["paid_by_commissioners_pence"]
        out.append(
            {
                "id": _payment_id(year),
                "title": _payment_title(book, year),
                "type": "payment",
                "description": f"Pays for {what}; closed as version {version['version']} on the data as at "
                f"{version.get('as_at') or 'the latest submission'} (store version {version.get('store_version')}).",
                "dueDate": _when(c.term.year_end(index)),
                "dateMet": version["created"].replace("+00:00", "Z"),
                "status": "met",
                "value": _money(net / 100),
            }
        )
    on_account = _on_account_only(book)
    out = [m for m in out if int(m["id"].removeprefix("payment-")) not in on_account]
    for year, pence in sorted(on_account.items()):
        out.append(
            {
                "id": _payment_id(year),
                "title": _payment_title(book, year),
                "type": "payment",
                "description": f"Payments on account so far (£{pence / 100:,.2f}); the year is not reconciled yet.",
                "dueDate": _when(c.term.year_end(year - c.term.start.year)),
                "status": "scheduled",
                "value": _money(pence / 100),
            }
        )
    return sorted(out, key=lambda m: m["id"])


_STEP_TITLES = {
    "open": "Notice of calculation error",
    "respond": "Reply to the notice",
    "resolve": "Resolution",
}
_DISPUTE_STATUS = {"disputed": "scheduled", "under_review": "scheduled", "resolved": "met"}


def _dispute_milestones(book: PaymentBook) -> list[dict[str, Any]]:
    """One milestone per dispute over a reconciliation (a notice of calculation error), with each
    step as it was recorded (notice, reply, resolution) as a document of its own: who, when, the
    clause, the amount held in suspense and, once resolved, the amount awarded. The Accord Project's
    obligation states (disputed, under review, resolved) are said in words; the OCDS milestone
    status is ``scheduled`` while the dispute is open (due: the reply date) and ``met`` once
    resolved. The decision log's record of each step is published with the contract's documents."""
    from carecontract.payments.disputes import list_disputes
    from carecontract.payments.journal import Journal

    c = book.terms.contract
    out = []
    for d in list_disputes(Journal(book.root, c.name)):
        state = d["status"].replace("_", " ")
        documents = []
        for n, step in enumerate(d["steps"], 1):
            text = f"{step['text']} (by {step['who'] or 'the parties'} on {step['on']}"
            text += "; reply late)" if step.get("late") else ")"
            documents.append(
                {
                    "id": f"dispute-{d['id']}-{n}",
                    "documentType": DOCUMENTS["dispute"][0],
                    "title": f"{_STEP_TITLES.get(step['step'], step['step'])} (dispute {d['id']})",
                    "description": text,
                    "datePublished": step["at"].replace("+00:00", "Z"),
                }
            )
        description = (
            f"{c.name}, {d['reconciliation']}: {d['by']} disputes £{d['amount_pence'] / 100:,.2f} under "
            f"{d['clause']}; held in suspense while open (not paid, not lost). State: {state}."
        )
        if d["status"] == "resolved":
            description += f" Outcome: {d.get('outcome')}, £{(d.get('awarded_pence') or 0) / 100:,.2f} awarded."
        milestone: dict[str, Any] = {
            "id": f"dispute-{d['id']}",
            "title": f"Dispute {d['id']} over the payment for {d['year']}/{str(d['year'] + 1)[-2:]}",
            "type": "assessment",
            "description": description,
            "dueDate": _when(d["reply_due"]),
            "status": _DISPUTE_STATUS.get(d["status"], "scheduled"),
            "documents": documents,
        }
        if d["status"] == "resolved":
            milestone["dateMet"] = _when(d["steps"][-1]["on"])
        out.append(milestone)
    return out


def _agreed_metrics(terms: Terms) -> list[dict[str, Any]]:
    """Each outcome's target (with its threshold, weight and clause) as an OCDS metric of the contract."""
    c = terms.contract
    out = []
    for o in c.outcomes:
        notes = f"weight {o.weight:g} of the at-risk pot"
        notes += f"; nothing paid below {o.threshold:g}, linear to the target" if o.threshold is not None else ""
        notes += f"; paid on the {o.basis} rate" + (f"; clause {o.clause}" if o.clause else "")
        out.append(
            {
                "id": o.measure,
                "title": o.measure.replace("_", " "),
                "description": "An outcome the at-risk share of the price is paid on (docs/measures.md).",
                "observations": [
                    {"id": f"{o.measure}-target", "measure": o.target, "notes": notes, "period": _period(terms)}
                ],
            }
        )
    return out


def _observed_metrics(book: PaymentBook) -> list[dict[str, Any]]:
    """The rate of each outcome in each closed outcomes year (as the payment used it), linked to that
    year's payment milestone; and what each kind of organisation received each year."""
    c = book.terms.contract
    observed: dict[str, list[dict[str, Any]]] = {}
    for year, version in sorted(_closed(book).items()):
        rates = version["result"].get("rates") or {}
        index = year - c.term.start.year
        period = {"startDate": _when(c.term.year_start(index)), "endDate": _when(c.term.year_end(index))}
        for o in c.outcomes:
            if o.measure not in rates:
                continue
            rate = rates[o.measure]
            observation: dict[str, Any] = {
                "id": f"{o.measure}-{year}",
                "period": period,
                "dimensions": {"contractYear": str(year)},
                "relatedImplementationMilestone": {"id": _payment_id(year), "title": _payment_title(book, year)},
            }
            if rate is None:
                observation["notes"] = "no measured rate for the year (no eligible pathways): achievement 0"
            else:
                observation["measure"] = round(rate, 6)
            observed.setdefault(o.measure, []).append(observation)
    metrics = [
        {
            "id": m,
            "title": m.replace("_", " "),
            "description": "Observed rate, as the payment used it.",
            "observations": obs,
        }
        for m, obs in observed.items()
    ]
    kinds = money_by_kind(book.paid_rows(), c)
    if kinds:
        metrics.append(
            {
                "id": "payments-by-organisation-kind",
                "title": "Payments by kind of organisation",
                "description": "What each kind of organisation received each contract year, management fees, "
                "gain/loss shares and VAT included; notes give the share of the year's contract value.",
                "observations": [
                    {
                        "id": f"{k['kind']}-{k['year']}",
                        "value": _money(k["gbp"]),
                        "dimensions": {"contractYear": str(k["year"]), "organisationKind": k["kind"]},
                        "notes": k["label"]
                        + ("" if k["share_of_value"] is None else f": {k['share_of_value']:.1%} of the year's value"),
                    }
                    for k in kinds
                ],
            }
        )
    return metrics


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


def _verified_records(decision_log: str | None, expect_head: str | None = None) -> list[dict[str, Any]]:
    """The decision log's records, refusing a log that fails verification or (given ``expect_head``,
    the head published last) whose history does not extend the head already published."""
    if not decision_log:
        if expect_head:
            raise PublishError(f"a decision log was published (head {expect_head[:16]}…) but none is given now")
        return []
    log = DecisionLog(decision_log)
    if problems := log.verify(expect_head=expect_head):
        raise PublishError(f"{log.path} fails verification, so it cannot be published: {problems[0]}")
    return log.records()


def published_head(package_path: str | Path) -> str | None:
    """The decision-log head hash an OCDS release package published (None if it published no log);
    :class:`PublishError` if the file is not a release package."""
    try:
        package = json.loads(Path(package_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PublishError(f"{package_path}: not a readable OCDS release package ({exc.__class__.__name__})") from None
    if not isinstance(package, dict) or "releases" not in package:
        raise PublishError(f"{package_path}: not an OCDS release package")
    head = (package.get("decisionLog") or {}).get("headHash")
    return head if isinstance(head, str) else None


def _rationale(terms: Terms, planning_docs: list[dict[str, Any]]) -> str:
    rationale = terms.contract.description or terms.contract.name
    if not planning_docs:
        rationale += " No business case, options appraisal or consultation is on record in the decision log."
    return rationale


def _period(terms: Terms) -> dict[str, Any]:
    term = terms.contract.term
    return {
        "startDate": _when(term.start),
        "endDate": _when(term.end - timedelta(days=1)),
        "durationInDays": (term.end - term.start).days,
    }


def _tender(terms: Terms, rationale: str, buyer: dict[str, str]) -> dict[str, Any]:
    c = terms.contract
    return {
        "id": f"{slug(c.name)}-tender",
        "title": c.name,
        "description": rationale,
        "status": "complete",
        "value": _money(c.value.total_gbp),
        "procuringEntity": buyer,
        "mainProcurementCategory": "services",
        "contractPeriod": _period(terms),
    }


def _award(terms: Terms, prime: dict[str, str]) -> dict[str, Any]:
    c = terms.contract
    return {
        "id": f"{slug(c.name)}-award",
        "title": f"{c.name}: prime provider",
        "status": "active",
        "date": _when(c.term.start),
        "value": _money(c.value.total_gbp),
        "suppliers": [prime],
        "contractPeriod": _period(terms),
    }


def _contract(terms: Terms, records: list[dict[str, Any]]) -> dict[str, Any]:
    c = terms.contract
    metrics = _agreed_metrics(terms)
    return ({"agreedMetrics": metrics} if metrics else {}) | {
        "id": f"{slug(c.name)}-contract",
        "awardID": f"{slug(c.name)}-award",
        "title": c.name,
        "status": "active",
        "period": _period(terms),
        "value": _money(c.value.total_gbp),
        "dateSigned": _when(c.term.start),
        "documents": _documents(records, "contract"),
        "amendments": [
            {"id": f"decision-{r['seq']}", "date": r["at"].replace("+00:00", "Z"), "rationale": r["text"]}
            for r in records
            if r["kind"] == "variation"
        ],
    }


def _releases(
    terms: Terms, book: PaymentBook, records: list[dict[str, Any]], ocid: str, now: str
) -> list[dict[str, Any]]:
    """The four releases: planning, tender, award with contract, and implementation."""
    c = terms.contract
    parties = _parties(terms)
    lead = max(c.commissioners, key=lambda x: x.share)
    buyer = _reference(parties, _party_id(accounts.commissioner(lead.code)))
    prime = _reference(parties, _party_id(accounts.prime(c.prime.code)))
    planning_docs = _documents(records, "planning")
    rationale = _rationale(terms, planning_docs)
    common = {
        "ocid": ocid,
        "date": now,
        "initiationType": "tender",
        "parties": parties,
        "buyer": buyer,
        "language": "en",
    }
    tender, award, contract = _tender(terms, rationale, buyer), _award(terms, prime), _contract(terms, records)
    implementation: dict[str, Any] = {
        "transactions": _transactions(book, parties),
        "milestones": _milestones(book) + _payment_milestones(book) + _dispute_milestones(book),
    }
    if metrics := _observed_metrics(book):
        implementation["metrics"] = metrics
    budget = {"description": "Contract value over the term", "amount": _money(c.value.total_gbp)}
    return [
        {
            **common,
            "id": f"{ocid}-planning",
            "tag": ["planning"],
            "planning": {"rationale": rationale, "budget": budget, "documents": planning_docs},
        },
        {**common, "id": f"{ocid}-tender", "tag": ["tender"], "tender": tender},
        {
            **common,
            "id": f"{ocid}-award",
            "tag": ["award", "contract"],
            "tender": {"id": tender["id"]},
            "awards": [award],
            "contracts": [contract],
        },
        {
            **common,
            "id": f"{ocid}-implementation",
            "tag": ["implementation"],
            "tender": {"id": tender["id"]},
            "awards": [award],
            "contracts": [{**contract, "implementation": implementation}],
        },
    ]


def release_package(
    terms: Terms,
    store: Run | str | Store,
    decision_log: str | None = None,
    ocid_prefix: str = DEFAULT_OCID_PREFIX,
    uri: str | None = None,
    expect_head: str | None = None,
) -> dict[str, Any]:
    """An OCDS 1.1 release package for the contract: planning, tender, award, contract and implementation.

    ``store`` is a Run or a store: only its closed payment book is read. ``expect_head``: the
    decision-log head published last; a log whose history does not pass through it is refused.
    """
    c = terms.contract
    records = _verified_records(decision_log, expect_head)
    book = PaymentBook(store, terms)
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    lead = max(c.commissioners, key=lambda x: x.share)
    package: dict[str, Any] = {
        "uri": uri or f"urn:carecontract:{slug(c.name)}:{terms.fingerprint}",
        "version": OCDS_VERSION,
        "extensions": list(EXTENSIONS),
        "publishedDate": now,
        "publisher": {"name": f"{lead.name}, for the commissioners of {c.name}"},
        "license": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
        "releases": _releases(terms, book, records, f"{ocid_prefix}-{slug(c.name)}", now),
    }
    if records:
        # anchors the log outside its file: a reader can check the log they are given ends here
        package["decisionLog"] = {"records": len(records), "headHash": records[-1]["hash"], "verified": True}
    return package
