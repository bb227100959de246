"""Commands that show the contract to others: the HTML report, OCDS publication, the web service, the decision log."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from carecontract.cli.options import (
    AsAtOption,
    BadOption,
    LogOption,
    SetOption,
    StoreOption,
    TermsArgument,
    load,
    output_file,
    require_store,
    store_at,
    terms_path,
)
from carecontract.cli.shell import app, deprecated_alias, usage_error
from carecontract.present import console, err, progress_bar

DecisionLogOption = Annotated[Path, typer.Option("--log", help="Decision log to include.")]


@app.command()
def report(
    terms_file: TermsArgument,
    store: StoreOption,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    public: Annotated[bool, typer.Option("--public", help="Disclosure control for publication.")] = False,
    runs: Annotated[int, typer.Option(help="Stress-test runs.")] = 5000,
    log: DecisionLogOption = Path("decisions.jsonl"),
    overrides: SetOption = None,
    as_at: AsAtOption = None,
) -> None:
    """One self-contained HTML report (works offline): terms, data quality, flows, outcomes, money, viability."""
    from carecontract.publish.report import build_report

    terms = load(terms_file, overrides)
    view = store_at(store, as_at)
    output_file(out, "--out")
    with progress_bar(sys.stderr.isatty()) as progress:
        progress("report", 0.0)
        text = build_report(terms, view, public=public, runs=runs, decision_log=log if log.exists() else None)
        progress("report", 1.0)
    out.write_text(text)
    edition = "public" if public else "restricted"
    console.print(f"Wrote the {edition} report to {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser.")


@app.command()
def publish(
    terms_file: TermsArgument,
    store: Annotated[Path, typer.Option(help="Store directory (its closed payment periods are published).")],
    ocds: Annotated[Path, typer.Option(help="The OCDS release package (JSON) to write.")] = Path("release.json"),
    log: DecisionLogOption = Path("decisions.jsonl"),
    ocid_prefix: Annotated[str, typer.Option(help="Your registered OCID prefix (ocds-xxxxxx).")] = "ocds-carect",
    overrides: SetOption = None,
) -> None:
    """Publish the contract as an Open Contracting Data Standard release package, with the decision log."""
    from carecontract.publish.decisions import DecisionLog
    from carecontract.publish.ocds import PublishError, published_head, release_package

    terms = load(terms_file, overrides)
    require_store(store)
    output_file(ocds, "--ocds")
    if not re.fullmatch(r"ocds-[a-z0-9]{6}", ocid_prefix):
        raise BadOption(f"--ocid-prefix {ocid_prefix!r} is not an OCID prefix (ocds- and six letters or digits)")
    # the head published last (in the release this replaces) must still be in the log's history
    # and so must every head published from this log before, wherever that release was written
    last_head = published_head(ocds) if ocds.exists() else None
    earlier = DecisionLog(log).published_heads()
    if earlier and log.exists() and (problems := DecisionLog(log).verify(expect_head=earlier[-1])):
        raise PublishError(f"{log} fails verification, so it cannot be published: {problems[0]}")
    package = release_package(terms, store, str(log) if log.exists() else None, ocid_prefix, expect_head=last_head)
    ocds.write_text(json.dumps(package, indent=2, ensure_ascii=False))
    if "decisionLog" in package:
        DecisionLog(log).record_published(package["decisionLog"]["headHash"], str(ocds))
    done = package["releases"][-1]["contracts"][0]["implementation"]
    decisions = package.get("decisionLog", {}).get("records", 0)
    counts = f"{len(done['transactions'])} transactions, {len(done['milestones'])} gate milestone(s)"
    console.print(f"Wrote {len(package['releases'])} releases to {ocds}: {counts}, {decisions} decision(s).")


@app.command()
def serve(
    store: StoreOption,
    terms_files: Annotated[
        list[Path] | None, typer.Argument(metavar="TERMS", help="Contract terms YAML, one or more.")
    ] = None,
    tokens: Annotated[Path | None, typer.Option(help="API tokens JSON (default: made in the store).")] = None,
    log: Annotated[Path, typer.Option("--log", help="Decision log, shown to auditors.")] = Path("decisions.jsonl"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    runs: Annotated[int, typer.Option(help="Stress-test runs per contract.")] = 5000,
    terms_flag: Annotated[
        list[Path] | None, typer.Option("--terms", hidden=True, help="Deprecated: give TERMS as arguments.")
    ] = None,
) -> None:
    """Serve the API (OpenAPI docs at /docs) and the dashboard, each role seeing what it is entitled to."""
    import uvicorn

    from carecontract.service import Tokens, create_app

    if terms_flag:
        if terms_files:
            raise usage_error("give TERMS as arguments, not also as --terms")
        for file in terms_flag:
            terms_path(None, file)  # the deprecation note
        terms_files = terms_flag
    if not terms_files:
        terms_path(None, None)  # "Missing argument 'TERMS'"
    loaded = [load(f, None) for f in terms_files or []]
    require_store(store)
    _check_port(host, port)
    path = tokens or store / "service-tokens.json"
    made = not path.exists()
    known = Tokens.load(path) if tokens else Tokens.load_or_create(path, loaded)
    service = create_app(
        store, loaded, known, log if log.exists() else None, runs, access_log=store / "service-access.jsonl"
    )
    who = ", ".join(p.describe() for _, p in known.listing())
    console.print(f"Tokens: {path}{' (made now, mode 600)' if made else ''}: {who}. No token: the public view.")
    console.print(f"Dashboard http://{host}:{port}/  API docs http://{host}:{port}/docs  (Ctrl+C to stop)")
    uvicorn.run(service, host=host, port=port, log_level="warning", access_log=False, **fast_server())


def fast_server() -> dict[str, str]:
    """uvicorn's C HTTP parser and event loop when installed (``pip install uvicorn[standard]``), which
    spend less of the two cores per request than its pure-Python ones (docs/service.md)."""
    from importlib.util import find_spec

    return ({"http": "httptools"} if find_spec("httptools") else {}) | (
        {"loop": "uvloop"} if find_spec("uvloop") else {}
    )


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on now, before anything is printed or started."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadOption(f"--host {host}: not an address this machine can listen on ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as uvicorn binds: a socket closed a moment ago (TIME_WAIT) does not count as busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise BadOption(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                "another server (a second `carecontract serve`?) may be using it: choose another with --port"
            ) from None


# -- the decision log ---------------------------------------------------------------------------
decisions_app = typer.Typer(
    help="The tamper-evident decision log: add a decision, verify the log.", no_args_is_help=True
)
app.add_typer(decisions_app, name="decisions")


@decisions_app.command("add")
def decisions_add(
    terms_file: TermsArgument,
    kind: Annotated[str, typer.Option(help="business_case, options_appraisal, consultation, gate or variation.")],
    text: Annotated[str, typer.Option(help="What was decided, by whom, and why.")],
    attach: Annotated[Path | None, typer.Option(help="A document to attach (hashed and copied in).")] = None,
    who: Annotated[
        str | None, typer.Option(help="Who took the decision (default: the operating-system user, said so).")
    ] = None,
    overrides: SetOption = None,
    log: LogOption = Path("decisions.jsonl"),
) -> None:
    """Append a hash-chained record of a decision about TERMS to the log (its fingerprint includes any --set)."""
    from carecontract.publish.decisions import DecisionLog

    terms = load(terms_file, overrides)
    if not who:
        who = _os_user()
        err.print(
            f"[yellow]note:[/] no --who given: recorded as taken by {escape(repr(who))}, the operating-system user"
        )
    record = DecisionLog(log).append(kind, text, terms.contract.name, terms.fingerprint, attach, who)
    console.print(f"Recorded decision {record['seq']} ({kind}) in {log} by {who}: hash {record['hash'][:16]}…")


def _os_user() -> str:
    """Who is running the command, as the operating system names them (a log never says null)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no password entry (some containers)
        return "unknown operating-system user"


app.command("decide", hidden=True)(
    deprecated_alias(decisions_add, "`carecontract decide` is now `carecontract decisions add`")
)


@decisions_app.command("verify")
def decisions_verify(
    log: LogOption = Path("decisions.jsonl"),
    expect_head: Annotated[
        str | None, typer.Option(help="The published head hash (at least 16 hex characters) the log must lead to.")
    ] = None,
    release: Annotated[
        Path | None, typer.Option(help="A published OCDS release package whose decision-log head the log must lead to.")
    ] = None,
) -> None:
    """Check that no record was edited, removed or reordered, every attachment is unchanged, and (with
    --expect-head or --release) that the log's history passes through the head that was published."""
    from carecontract.publish.decisions import DecisionLog
    from carecontract.publish.ocds import published_head

    if expect_head and release:
        raise usage_error("give --expect-head or --release, not both")
    if release is not None:
        expect_head = published_head(release)
        if expect_head is None:
            raise BadOption(f"--release {release}: the package publishes no decision log head")
    book = DecisionLog(log)
    problems = book.verify(expect_head=expect_head)
    if problems:
        for problem in problems:
            err.print(f"[bold red]tampered:[/] {log}: {problem}", highlight=False)
        raise typer.Exit(1)
    records = book.records()
    head = records[-1]["hash"][:16] + "…" if records else "empty"
    anchored = f", and it leads to the published head {expect_head[:16]}…" if expect_head else ""
    console.print(f"[green]✓[/] {log}: {len(records)} record(s) intact; head {head}{anchored}")


@decisions_app.command("repair")
def decisions_repair(log: LogOption = Path("decisions.jsonl")) -> None:
    """Finish or undo an append that a crash interrupted, when the files prove which it was; anything
    else is left alone and reported (a repair never hides tampering)."""
    from carecontract.publish.decisions import DecisionLog

    console.print(f"{log}: {DecisionLog(log).repair()}.")
