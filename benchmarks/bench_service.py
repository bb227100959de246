"""The service under load: every public route at 32 concurrent clients, before and after, in one run.

A bounded load test against 127.0.0.1 only (locust, headless, a fixed request count per phase):

1. a store of ``--events`` synthetic events (3 contract years) with its periods closed, and a
   further slice of the same economy to ingest while the service is under load;
2. the service started with uvicorn on a random local port, once from the code before this change
   (``--before``: a git ref, exported with ``git archive``; default ``main``) and once from this
   worktree, each on its own copy of the store;
3. for each, two phases of ``--requests`` requests from ``--users`` clients with no think time:
   *steady* (the store unchanged) and *ingest* (an ingest of the further slice runs into the store
   from the phase's start, followed by the refresh of the new version's figures that ``carecontract
   ingest`` does; the phase lasts at least until both are done, and the first request after them
   must answer from the new version);
4. p50, p95, requests per second and errors, by route and in total; the server's resident memory
   before and after each phase. Results go to ``results-service.md``.

The mix: every route the public may call, as the public calls it (published periods, at most two
breakdowns), and the signed-in dashboard's measures over ``--windows`` distinct (period, breakdown)
pairs, as an auditor and a commissioner (each its own cached figure). No request leaves 127.0.0.1.

    python benchmarks/bench_service.py                          # 300k events, 1,500 requests a phase
    python benchmarks/bench_service.py --events 10000000 --requests 20000 --before none   # the issue's goal
    python benchmarks/bench_service.py --store /data/store10m --more '/data/more/*.parquet' --before none

``--store`` reuses a store built beforehand (read-only: each phase runs on a hard-linked copy, which
is safe because a store's files are never rewritten, only added and the manifest replaced), so a 10M
store is built once; ``--more`` names the slice to ingest under load (default: a tenth of the store's
events, generated once into ``--work``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

from carecontract.records.store import Store

HERE = Path(__file__).parent
ROOT = HERE.parent
TERMS = ROOT / "contracts" / "staffordshire-cancer.yaml"
NAME = "staffordshire-cancer-care"
EVENTS_PER_PERSON_YEAR = 0.186  # as bench_scale.py
START = date(2017, 4, 1)
YEARS = 3
KEY = "bench-service-key-of-at-least-thirty-two-bytes"
SERVER = """
import sys
from pathlib import Path
import uvicorn
from carecontract.service import Tokens, create_app
from carecontract.terms import load_terms
store, terms, tokens, port = sys.argv[1:5]
app = create_app(store, [load_terms(terms)], Tokens.load(Path(tokens)))
# as `carecontract serve`: no per-request access line from uvicorn, its fastest parser and loop if installed
options = {}
try:
    import httptools  # noqa: F401
    options["http"] = "httptools"
except ImportError:
    pass
try:
    import uvloop  # noqa: F401
    options["loop"] = "uvloop"
except ImportError:
    pass
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False, **options)
"""
# the ingest as `carecontract ingest` does it: the commit, then the new version's figures (when the
# code under test has them: the code before this change had no refresh)
INGEST = """
import json, sys, time
from datetime import date
from pathlib import Path
from carecontract.records.ingest import ingest
started = time.perf_counter()
ingest([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]), as_of=date.today())
took = {"ingest_s": time.perf_counter() - started}
try:
    from carecontract.measures.cube import refresh
except ImportError:
    refresh = None
if refresh is not None:
    started = time.perf_counter()
    refresh(Path(sys.argv[1]))
    took["refresh_s"] = time.perf_counter() - started
print(json.dumps(took))
"""


# -- the store -------------------------------------------------------------------------------------


def build(work: Path, events: int) -> tuple[Path, list[Path], str]:
    """The store (periods closed), the further slice's files, and the commissioner code to sign in as."""
    from carecontract.payments.book import PaymentBook
    from carecontract.records.ingest import ingest
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.terms import load_terms

    people = int(events / YEARS / EVENTS_PER_PERSON_YEAR)
    store = work / "store"
    marker = work / f"built-{events}.json"
    terms = load_terms(TERMS)
    commissioner = terms.contract.commissioners[0].code
    if marker.exists():
        return store, [Path(p) for p in json.loads(marker.read_text())], commissioner
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = write_economy(generate(people, YEARS, seed=5, start=START), work / "data", "parquet")
    started = time.perf_counter()
    ingest(files, store, as_of=date.today())
    print(f"ingested {events:,} events' economy in {time.perf_counter() - started:.1f} s", flush=True)
    PaymentBook(store, terms).close()
    later = people // 10  # a further tenth of the population, ingested under load
    more = write_economy(generate(later, YEARS, seed=6, start=START, id_offset=people), work / "more", "parquet")
    marker.write_text(json.dumps([str(p) for p in more]))
    return store, more, commissioner


def reuse(args: argparse.Namespace) -> tuple[Path, list[Path], str]:
    """A store built beforehand (``--store``), the slice to ingest under load, the commissioner."""
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.terms import load_terms

    store = args.store.resolve()
    if not Store(store).exists():
        raise SystemExit(f"{store}: not a store")
    commissioner = load_terms(TERMS).contract.commissioners[0].code
    if args.more:
        more = sorted(Path(p) for p in glob.glob(args.more))
        if not more:
            raise SystemExit(f"--more {args.more!r}: no such files")
        return store, more, commissioner
    accepted = sum(b.accepted for b in Store(store).batches())
    people = int(accepted / 10 / YEARS / EVENTS_PER_PERSON_YEAR)
    target = args.work / f"more-{people}"
    marker = target / "files.json"
    if not marker.exists():
        shutil.rmtree(target, ignore_errors=True)
        # ids above any of the store's own (a 10M-event economy has about 18M people; synthetic NHS
        # numbers run out at 90M ids)
        files = write_economy(generate(people, YEARS, seed=6, start=START, id_offset=80_000_000), target, "parquet")
        marker.write_text(json.dumps([str(p) for p in files]))
    return store, [Path(p) for p in json.loads(marker.read_text())], commissioner


def copy_store(source: Path, target: Path) -> None:
    """The store for one phase: hard links where the file system allows (a store's files are never
    rewritten in place), else a copy."""
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def export(ref: str, work: Path) -> Path:
    """The package's source at ``ref`` (``git archive``), to run the service as it was."""
    commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True)
    target = work / f"src-{commit.stdout.strip()[:10]}"
    if not target.exists():
        archive = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, check=True, capture_output=True)
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(target, filter="data")
    return target / "src"


# -- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "CARECONTRACT_KEY": KEY}


def start_server(src: Path, store: Path, tokens: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(store), str(TERMS), str(tokens), str(port)], env=env_for(src)
    )
    host = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{host}/api/whoami", timeout=2).read()
            return server, host
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the service from {src} did not start") from None
            time.sleep(0.2)
    raise SystemExit("the service did not answer in 60 s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the requests ----------------------------------------------------------------------------------


def mix(windows: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """(route label, path with query, role): the public's routes, and signed-in measures over
    ``windows`` distinct (period, breakdown) pairs."""
    api = f"/api/contracts/{NAME}"
    public: list[tuple[str, str]] = [
        ("public whoami", "/api/whoami"),
        ("public contracts", "/api/contracts"),
        ("public measures", f"{api}/measures"),
        ("public measures", f"{api}/measures?by=commissioner"),
        ("public measures", f"{api}/measures?by=provider&by=tumour_site"),
        ("public measures", f"{api}/measures?from=2018-04-01&to=2019-03-31&by=imd_quintile"),
        ("public payments", f"{api}/payments"),
        ("public accountability", f"{api}/accountability"),
        ("public viability", f"{api}/viability"),
        ("public quality", "/api/quality"),
        ("dashboard page", "/"),
    ]
    out = [(label, path, "public") for label, path in public]
    rng = random.Random(seed)
    breakdowns = ["", "&by=provider", "&by=commissioner&by=provider", "&by=tumour_site"]
    for i in range(windows):
        first = START + timedelta(days=rng.randrange(0, 365 * YEARS - 120))
        last = first + timedelta(days=rng.randrange(30, 365))
        query = f"?from={first}&to={last}{breakdowns[i % len(breakdowns)]}"
        role = "commissioner" if i % 2 else "auditor"
        out.append((f"{role} measures (distinct windows)", f"{api}/measures{query}", role))
    return out


def load(
    host: str,
    requests: list[tuple[str, str, dict[str, str]]],
    users: int,
    count: int,
    busy: subprocess.Popen | None = None,
) -> dict[str, Any]:
    """``count`` requests from ``users`` locust clients (no think time), drawn from ``requests`` in
    turn, and on until ``busy`` (the ingest) has finished."""
    order = iter(range(10**9))

    class Client(FastHttpUser):
        wait_time = constant(0)

        @task
        def ask(self) -> None:
            label, path, headers = requests[next(order) % len(requests)]
            with self.client.get(path, name=label, headers=headers, catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")

    Client.host = host
    env = Environment(user_classes=[Client])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    started = time.perf_counter()
    while env.stats.total.num_requests + env.stats.total.num_failures < count or (busy and busy.poll() is None):
        gevent.sleep(0.05)
    runner.quit()
    elapsed = time.perf_counter() - started
    rows = {}
    for entry in [*sorted(env.stats.entries.values(), key=lambda e: e.name), env.stats.total]:
        rows[entry.name] = {
            "requests": entry.num_requests,
            "errors": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
            "rps": entry.num_requests / elapsed,
        }
    rows["Aggregated"]["seconds"] = elapsed
    return rows


def visible_next(host: str, store: Path) -> bool | None:
    """Does the first request after the ingest (and its refresh) answer from the new version? None:
    the code under test does not say which version it answers from."""
    api = f"/api/contracts/{NAME}/measures"
    with urllib.request.urlopen(f"{host}{api}", timeout=600) as response:
        served = response.headers.get("X-Carecontract-Store-Version")
    return None if served is None else served == Store(store).version()


def warm(host: str, requests: list[tuple[str, str, dict[str, str]]]) -> float:
    """One request to each public route (the first figures of a store version), seconds taken."""
    started = time.perf_counter()
    for label, path, _ in requests:
        if label.startswith("public") or label == "dashboard page":
            urllib.request.urlopen(f"{host}{path}", timeout=600).read()
    return time.perf_counter() - started


def run_side(
    side: str, src: Path, store: Path, more: list[Path], commissioner: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Both phases on a fresh copy of the store, for the code in ``src``."""
    work = args.work
    out: dict[str, Any] = {}
    for phase in ("steady", "ingest"):
        copy = work / f"run-{side}-{phase}" / "store"
        copy_store(store, copy)
        tokens = copy.parent / "tokens.json"
        tokens.write_text(
            json.dumps(
                {
                    "t-bench-auditor": {"role": "auditor", "organisation": None},
                    "t-bench-commissioner": {"role": "commissioner", "organisation": commissioner},
                }
            )
        )
        requests = [
            (label, path, {} if role == "public" else {"Authorization": f"Bearer t-bench-{role}"})
            for label, path, role in mix(args.windows)
        ]
        server, host = start_server(src, copy, tokens)
        try:
            warmed = warm(host, requests)
            before = rss_mib(server.pid)
            ingest = None
            if phase == "ingest":
                command = [sys.executable, "-c", INGEST, str(copy), *map(str, more)]
                ingest = subprocess.Popen(command, env=env_for(src), stdout=subprocess.PIPE, text=True)
            rows = load(host, requests, args.users, args.requests, ingest)
            if ingest is not None:
                took = json.loads(ingest.communicate()[0].strip().splitlines()[-1])  # the ingest's own seconds
                rows["Aggregated"] |= took
                rows["Aggregated"]["visible_next"] = visible_next(host, copy)
            rows["Aggregated"] |= {"warm_s": warmed, "rss_before_mib": before, "rss_after_mib": rss_mib(server.pid)}
            out[phase] = rows
        finally:
            server.terminate()
            server.wait(30)
        print(side, phase, json.dumps(rows["Aggregated"], default=str)[:400], flush=True)
    return out


# -- the results -----------------------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]], phase: str) -> list[str]:
    sides = list(results)
    names = list(results[sides[-1]][phase])
    head = "| route | " + " | ".join(f"{s} p50 ms | {s} p95 ms | {s} req/s | {s} errors" for s in sides)
    lines = [head + (" | p95 before/after |" if len(sides) == 2 else " |")]
    lines.append("|---" * (1 + 4 * len(sides) + (1 if len(sides) == 2 else 0)) + "|")
    for name in names:
        cells = []
        for s in sides:
            row = results[s][phase].get(name)
            cells += (
                [f"{row['p50']:.0f}", f"{row['p95']:.0f}", f"{row['rps']:.1f}", str(row["errors"])]
                if row
                else ["–"] * 4
            )
        ratio = ""
        if len(sides) == 2 and all(name in results[s][phase] for s in sides):
            after = results[sides[1]][phase][name]["p95"] or 1
            ratio = f" {results[sides[0]][phase][name]['p95'] / after:.1f}× |"
        shown = "**total**" if name == "Aggregated" else name
        lines.append(f"| {shown} | " + " | ".join(cells) + (" |" + ratio if ratio else " |"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=1500, help="requests per phase")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--windows", type=int, default=40, help="distinct signed-in (period, breakdown) pairs")
    parser.add_argument("--before", default="main", help="git ref of the code before ('none': after only)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/carecontract-bench-service"))
    parser.add_argument("--out", type=Path, default=HERE / "results-service.md")
    parser.add_argument(
        "--store", type=Path, help="a store built beforehand, used read-only (--events is then ignored)"
    )
    parser.add_argument("--more", help="files to ingest under load, a glob (with --store; default: generated)")
    args = parser.parse_args()
    os.environ["CARECONTRACT_KEY"] = KEY
    store, more, commissioner = reuse(args) if args.store else build(args.work, args.events)
    sides = {} if args.before == "none" else {"before": export(args.before, args.work)}
    sides["after"] = ROOT / "src"
    results = {side: run_side(side, src, store, more, commissioner, args) for side, src in sides.items()}
    write(results, args, sum(b.accepted for b in Store(store).batches()))


def write(results: dict[str, dict[str, Any]], args: argparse.Namespace, accepted: int) -> None:
    from timing import write_results

    source = f"--store {args.store} " if args.store else f"--events {args.events} "
    lines = [
        "# The service under load",
        "",
        f"`python benchmarks/bench_service.py {source}--requests {args.requests} "
        f"--users {args.users} --windows {args.windows} --before {args.before}`, {date.today()}; "
        "a shared 2-core machine under other work, so read the ratios (both sides measured in the same run).",
        "",
        f"Store: {accepted:,} accepted events (3 contract years, periods closed); the ingest adds a further "
        "tenth of the economy. The locust clients run on the same two cores as the service.",
        "",
    ]
    for phase, title in (("steady", "Steady store"), ("ingest", "While an ingest runs into the store")):
        lines += [f"## {title}", "", *table(results, phase), ""]
        for side, by_phase in results.items():
            agg = by_phase[phase]["Aggregated"]
            extra = ""
            if "ingest_s" in agg:
                extra = f", ingest {agg['ingest_s']:.1f} s"
                if "refresh_s" in agg:
                    extra += f" then its figures saved in {agg['refresh_s']:.1f} s"
                extra += (
                    f" (all during the load); the next request answered from the new version: {agg['visible_next']}"
                )
            lines.append(
                f"- {side}: {agg['seconds']:.1f} s for {agg['requests']} requests; first request of each public "
                f"route {agg['warm_s']:.1f} s; server memory {agg['rss_before_mib']:.0f} → "
                f"{agg['rss_after_mib']:.0f} MiB{extra}"
            )
        lines.append("")
    lines += [
        "The issue's goal is p95 ≤ 100 ms with no errors for every public route at 32 clients on a 10M-event",
        "store, steady and during an ingest. For it, build the store once and reuse it:",
        "`python benchmarks/bench_service.py --store PATH --requests 20000 --before none` (each phase on a",
        "hard-linked copy; the ingest phase includes the refresh of the new version's figures that",
        "`carecontract ingest` does).",
    ]
    write_results(lines, args.out)


if __name__ == "__main__":
    main()
