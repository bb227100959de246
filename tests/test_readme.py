"""The README's "Using it" section, run as written, in order, so it can never drift from the program.

Every shell command of its ``bash`` block runs in one folder (with the repository's ``contracts/``
beside it), then its Python block. A command fails the test if it exits non-zero, prints a
traceback or prints nothing (or an empty list). Only sizes are made smaller, to keep the test fast:
the population of ``synth`` and ``cc.synthesise`` (and so the pathway ``explain`` is asked about: the README's is a
referral in the README's own economy, checked below, so the test asks about the small economy's
first referral instead), and the runs of ``stress``. ``serve`` runs until its banner is printed
and the dashboard answers, on a free port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    following = README.find("\n## ", start + 1)
    return README[start : following if following != -1 else None]


def _block(section: str, language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block in the README's section"
    return match.group(1)


USING_IT = _section("Using it")
COMMANDS = [line for line in _block(USING_IT, "bash").splitlines() if line.strip()]
PYTHON = _block(USING_IT, "python")


def _smaller(command: str, pathway: str | None) -> str:
    command = re.sub(r"--population \d+", "--population 30000", command)
    command = re.sub(r"--runs \d+", "--runs 200", command)
    if pathway:
        command = re.sub(r"--pathway \S+", f"--pathway {pathway}", command)
    return command


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "120", "CARECONTRACT_KEY": "readme-" + "0" * 32, "PYTHONPATH": str(ROOT / "src")}
    env["CARECONTRACT_KEY_FILE"] = str(tmp_path / "unused.key")
    return env


def _first_referral(folder: Path) -> str:
    import duckdb

    files = sorted(str(p) for p in (folder / "data").glob("activity-*.csv"))
    query = "SELECT record_id FROM read_csv(?, all_varchar=true) WHERE event_type = 'referral' ORDER BY record_id"
    return duckdb.execute(query + " LIMIT 1", [files]).fetchall()[0][0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check(command: str, proc: subprocess.CompletedProcess) -> None:
    said = f"`{command}` (exit {proc.returncode})\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, said
    assert "Traceback" not in proc.stdout + proc.stderr, said
    assert proc.stdout.strip() not in ("", "[]", "{}"), f"empty result from {said}"
    assert "Empty DataFrame" not in proc.stdout, said


def _serve(command: str, cwd: Path, env: dict[str, str]) -> None:
    port = _free_port()
    script = f'carecontract() {{ "{sys.executable}" -m carecontract.cli "$@"; }}\nexec {command} --port {port}'
    server = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert page.status == 200 and page.read()
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"`{command}` did not answer on port {port} within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=20)
        banner = server.stdout.read().decode() if server.stdout else ""
        assert "Dashboard http://" in banner and "Traceback" not in banner


@pytest.mark.slow
def test_every_command_in_using_it_runs_in_order(tmp_path: Path) -> None:
    (tmp_path / "contracts").symlink_to(ROOT / "contracts")
    env = _environment(tmp_path)
    pathway = None
    for command in COMMANDS:
        if command.startswith("carecontract explain"):
            pathway = _first_referral(tmp_path)
        shown = _smaller(command, pathway)
        if command.startswith("carecontract serve"):
            _serve(shown.split("#")[0].strip(), tmp_path, env)
            continue
        script = f'carecontract() {{ "{sys.executable}" -m carecontract.cli "$@"; }}\n{shown}'
        proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
        _check(shown, proc)
    # then the Python block, as a notebook would run it, in a fresh folder
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    (notebook / "contracts").symlink_to(ROOT / "contracts")
    code = re.sub(r"population=[\d_]+", "population=30_000", PYTHON)
    proc = subprocess.run([sys.executable, "-c", code], cwd=notebook, env=env, capture_output=True, text=True)
    _check("the README's Python block", proc)
    assert "tumour_site" in proc.stdout and (notebook / "report.html").stat().st_size > 100_000


def test_the_readme_explains_a_pathway_its_own_economy_has() -> None:
    """The README's ``explain`` names a referral that the README's ``synth`` command makes.

    Generating 1.1 million people is slow, so this reads only the first few thousand rows the
    generator writes (record ids are numbered in generation order, the same for any start date).
    """
    explain = next(c for c in COMMANDS if c.startswith("carecontract explain"))
    pathway = re.search(r"--pathway (\S+)", explain).group(1)  # type: ignore[union-attr]
    synth = next(c for c in COMMANDS if c.startswith("carecontract synth"))
    population = int(re.search(r"--population (\d+)", synth).group(1))  # type: ignore[union-attr]
    seed = int(re.search(r"--seed (\d+)", synth).group(1))  # type: ignore[union-attr]
    start = re.search(r"--start (\S+)", synth)
    from datetime import date

    import pyarrow.compute as pc

    from carecontract.synth.economy import generate

    economy = generate(population, 1, seed, date.fromisoformat(start.group(1)) if start else None)
    found = economy.events.filter(pc.equal(economy.events["record_id"], pathway))
    assert found.column("event_type").to_pylist() == ["referral"]
