"""``carecontract dispute open|respond|resolve|list``: notices of calculation error against a reconciliation.

Parse, call :mod:`carecontract.payments.disputes`, record each step in the tamper-evident decision
log (kind ``dispute``), render.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import JsonOption, SetOption, StoreOption, TermsArgument, load, parse_date, require_store
from carecontract.cli.shell import app
from carecontract.errors import UserError
from carecontract.present import console

dispute_app = typer.Typer(help="Notices of calculation error against a reconciliation: open, respond, resolve.")
app.add_typer(dispute_app, name="dispute")

LogOption = Annotated[Path, typer.Option("--log", help="The decision log each step is recorded in.")]
OnOption = Annotated[str | None, typer.Option("--on", help="The date of this step (default: today).")]


def _pence(text: str) -> int:
    try:
        value = Decimal(text.replace(",", "").lstrip("£"))
    except InvalidOperation as exc:
        raise UserError(f"--amount {text!r} is not an amount in pounds (e.g. 125000.50)") from exc
    return int((value * 100).to_integral_value())


def _journal(terms, store: Path):
    from carecontract.payments.book import PaymentBook
    from carecontract.payments.journal import Journal

    require_store(store)
    return Journal(PaymentBook(store, terms).root, terms.contract.name)


def _log(log: Path, terms, text: str, who: str) -> None:
    from carecontract.publish.decisions import DecisionLog

    record = DecisionLog(log).append("dispute", text, terms.contract.name, terms.fingerprint, who=who)
    console.print(f"Recorded in {log} as decision {record['seq']}: hash {record['hash'][:16]}…", highlight=False)


@dispute_app.command("open")
def dispute_open(
    terms_file: TermsArgument,
    store: StoreOption,
    year: Annotated[int, typer.Option(help="The contract year reconciled, by the calendar year it starts in.")],
    by: Annotated[str, typer.Option(help="The party giving notice: the prime's or a commissioner's code.")],
    amount: Annotated[str, typer.Option(help="The amount in dispute, in pounds.")],
    clause: Annotated[str, typer.Option(help="The clause of the contract the calculation breaks.")],
    evidence: Annotated[str, typer.Option(help="The evidence, in words.")],
    reconciliation: Annotated[int | None, typer.Option(help="1 (first) or 2 (subsequent); default: latest.")] = None,
    on: OnOption = None,
    overrides: SetOption = None,
    log: LogOption = Path("decisions.jsonl"),
    as_json: JsonOption = False,
) -> None:
    """Give notice of a calculation error: the amount is held in suspense until the dispute is resolved."""
    from carecontract.payments.disputes import open_dispute

    terms = load(terms_file, overrides)
    day = parse_date(on, "--on") if on else None
    d = open_dispute(
        _journal(terms, store), terms.contract, year, by, _pence(amount), clause, evidence, day, reconciliation
    )
    pounds = f"£{d['amount_pence'] / 100:,.2f}"
    text = f"dispute {d['id']} opened by {by} against {d['reconciliation']}: {pounds} under {clause}: {evidence}"
    _log(log, terms, text, by)
    if as_json:
        print(json.dumps(d, default=str))
        return
    console.print(
        f"Dispute {d['id']}: £{d['amount_pence'] / 100:,.2f} held in suspense; reply due by {d['reply_due']}.",
        highlight=False,
    )


@dispute_app.command("respond")
def dispute_respond(
    terms_file: TermsArgument,
    store: StoreOption,
    dispute_id: Annotated[str, typer.Argument(help="The dispute, e.g. D1.")],
    by: Annotated[str, typer.Option(help="The party replying.")],
    text: Annotated[str, typer.Option(help="The reply.")],
    on: OnOption = None,
    overrides: SetOption = None,
    log: LogOption = Path("decisions.jsonl"),
) -> None:
    """Reply to a notice of error (within the reply window); the dispute is then under review."""
    from carecontract.payments.disputes import respond

    terms = load(terms_file, overrides)
    d = respond(_journal(terms, store), terms.contract, dispute_id, by, text, parse_date(on, "--on") if on else None)
    late = " (late)" if d["steps"][-1].get("late") else ""
    _log(log, terms, f"dispute {dispute_id}: reply by {by}{late}: {text}", by)
    console.print(f"Dispute {dispute_id} is under review{late}.", highlight=False)


@dispute_app.command("resolve")
def dispute_resolve(
    terms_file: TermsArgument,
    store: StoreOption,
    dispute_id: Annotated[str, typer.Argument(help="The dispute, e.g. D1.")],
    outcome: Annotated[str, typer.Option(help="upheld, partly or rejected.")],
    text: Annotated[str, typer.Option(help="The reasons.")],
    who: Annotated[str, typer.Option(help="Who decided.")],
    amount: Annotated[str | None, typer.Option(help="For partly: the amount awarded, in pounds.")] = None,
    on: OnOption = None,
    overrides: SetOption = None,
    log: LogOption = Path("decisions.jsonl"),
) -> None:
    """Resolve a dispute: the amount awarded goes to the claimant and the rest back from suspense."""
    from carecontract.payments.disputes import resolve

    if outcome not in ("upheld", "partly", "rejected"):
        raise UserError(f"--outcome {outcome!r}: upheld, partly or rejected")
    terms = load(terms_file, overrides)
    awarded = _pence(amount) if amount else None
    day = parse_date(on, "--on") if on else None
    d = resolve(_journal(terms, store), terms.contract, dispute_id, outcome, text, awarded, day, who)  # type: ignore[arg-type]
    _log(log, terms, f"dispute {dispute_id} {outcome}: £{d['awarded_pence'] / 100:,.2f} awarded: {text}", who)
    console.print(f"Dispute {dispute_id} {outcome}: £{d['awarded_pence'] / 100:,.2f} to the claimant.", highlight=False)


@dispute_app.command("list")
def dispute_list(
    terms_file: TermsArgument, store: StoreOption, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """Every dispute, its state and its steps."""
    from carecontract.payments.disputes import list_disputes

    terms = load(terms_file, overrides)
    disputes = list_disputes(_journal(terms, store))
    if as_json:
        print(json.dumps(disputes, default=str))
        return
    for d in disputes:
        console.print(
            f"{d['id']} {d['status']}: {d['by']} against {d['reconciliation']}, "
            f"£{d['amount_pence'] / 100:,.2f}, {d['clause']}",
            highlight=False,
        )
