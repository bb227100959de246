"""The decision log: any edited, removed or reordered record, or changed attachment, is detected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecontract.publish.decisions import DecisionLog, DecisionLogError


def _log(tmp: Path, n: int = 3) -> DecisionLog:
    log = DecisionLog(tmp / "decisions.jsonl")
    (tmp / "case.pdf").write_bytes(b"%PDF business case")
    for i in range(n):
        log.append(
            "business_case" if i == 0 else "variation",
            f"decision {i}",
            "Contract",
            "fp",
            attach=tmp / "case.pdf" if i == 0 else None,
        )
    return log


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert log.verify() == []
    assert [r["seq"] for r in log.records()] == [1, 2, 3]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_changing_any_byte_is_detected(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    log = _log(tmp_path_factory.mktemp("log"))
    raw = bytearray(log.path.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    raw[position] = replacement
    log.path.write_bytes(bytes(raw))
    assert log.verify()


def test_removed_reordered_and_truncated_records_are_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text(lines[0] + lines[2])
    assert any("does not follow" in str(p) for p in log.verify())
    log.path.write_text(lines[1] + lines[0] + lines[2])
    assert log.verify()
    log.path.write_text(lines[0] + lines[1])  # the last record cut off: the head file notices
    assert any("head says 3" in str(p) for p in log.verify())


def test_a_changed_attachment_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    stored = next(log.attachments.iterdir())
    stored.write_bytes(b"%PDF a different business case")
    assert any("attachment case.pdf" in str(p) for p in log.verify())


def test_nothing_is_appended_to_a_tampered_log(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.path.write_text(log.path.read_text().replace("decision 1", "decision 9"))
    with pytest.raises(DecisionLogError, match="does not verify"):
        log.append("gate", "gate passed", "Contract", "fp")


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(DecisionLogError, match="unknown kind"):
        log.append("vote", "x", "C", "fp")
    with pytest.raises(DecisionLogError, match="needs its text"):
        log.append("gate", "  ", "C", "fp")
    with pytest.raises(DecisionLogError, match="no such file"):
        log.append("gate", "x", "C", "fp", attach=tmp_path / "missing.pdf")


def test_decide_and_verify_from_the_command_line(tmp_path: Path) -> None:
    terms = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True, cwd=tmp_path
        )

    ok = cli("decide", str(terms), "--kind", "options_appraisal", "--text", "Three options compared")
    assert ok.returncode == 0 and "Recorded decision 1" in ok.stdout
    assert cli("decisions", "verify").returncode == 0
    (tmp_path / "decisions.jsonl").write_text((tmp_path / "decisions.jsonl").read_text().replace("Three", "Two"))
    bad = cli("decisions", "verify")
    assert bad.returncode == 1 and "tampered" in bad.stderr


# -- appends under a lock, crashes repaired provably, the published head checked ----------------


def _append_many(path: str, worker: int, n: int) -> None:
    log = DecisionLog(path)
    for i in range(n):
        log.append("variation", f"worker {worker} decision {i}", "Contract", "fp", who=f"w{worker}")


def test_parallel_appends_never_fork_the_chain(tmp_path: Path) -> None:
    """Eight processes appending at once (the issue forked the chain in 3 of 6 such trials)."""
    import multiprocessing

    path = str(tmp_path / "decisions.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(path, w, 3)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    log = DecisionLog(path)
    assert log.verify() == []
    records = log.records()
    assert [r["seq"] for r in records] == list(range(1, 25))
    assert len({r["text"] for r in records}) == 24  # every append kept, none lost or doubled


def _crash_at(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Make the next append die at ``step``: before the record is written, or before the head moves on."""
    from carecontract.publish import decisions

    if step == "record":
        monkeypatch.setattr(decisions, "_append_line", lambda path, line: (_ for _ in ()).throw(SystemExit("crash")))
        return
    real = decisions.write_json_atomic
    calls = []

    def crash_on_second(path: Path, data: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise SystemExit("crash")
        real(path, data)

    monkeypatch.setattr(decisions, "write_json_atomic", crash_on_second)


@pytest.mark.parametrize("step", ["record", "head"])
def test_a_crash_mid_append_is_repaired_provably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    log = _log(tmp_path, 2)
    with monkeypatch.context() as patched:
        _crash_at(patched, step)
        with pytest.raises(SystemExit):
            log.append("gate", "the interrupted one", "Contract", "fp")
    problems = log.verify()
    assert problems and "interrupted" in str(problems[0]) and "decisions repair" in str(problems[0])
    with pytest.raises(DecisionLogError, match="does not verify"):
        log.append("gate", "refused until repaired", "Contract", "fp")
    done = log.repair()
    assert ("completed" in done) == (step == "head"), done
    assert log.verify() == []
    assert len(log.records()) == (3 if step == "head" else 2)
    log.append("gate", "after the repair", "Contract", "fp")
    assert log.verify() == [] and log.records()[-1]["seq"] == (4 if step == "head" else 3)


def test_a_torn_last_line_is_cut_only_when_it_is_the_pending_record(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)
    from carecontract.publish import decisions

    records = log.records()
    pending = {**records[-1], "seq": 3, "prev": records[-1]["hash"], "text": "torn"}
    pending["hash"] = decisions._digest(pending)
    head = json.loads(log.head_path.read_text())
    log.head_path.write_text(json.dumps(head | {"pending": pending}))
    whole = log.path.read_bytes()
    log.path.write_bytes(whole + decisions._line(pending).encode()[:40])  # the write stopped part-way
    assert "part-way" in str(log.verify()[0])
    assert "cut" in log.repair() and log.verify() == [] and log.path.read_bytes() == whole
    # the same state with bytes that are not the pending record's is tampering: never repaired
    log.head_path.write_text(json.dumps(head | {"pending": pending}))
    log.path.write_bytes(whole + b'{"seq": 3, "forged": true')
    with pytest.raises(DecisionLogError, match="cannot be repaired"):
        log.repair()
    assert log.path.read_bytes().endswith(b"true")  # left as found, for investigation


def test_a_repair_never_hides_tampering(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    log.path.write_text(log.path.read_text().replace("decision 1", "decision 9"))
    with pytest.raises(DecisionLogError, match="cannot be repaired"):
        log.repair()
    assert log.verify()


def _rewrite_history(log: DecisionLog) -> None:
    """What the issue's attacker did: change a record, re-hash the chain after it, and rewrite the head."""
    from carecontract.publish import decisions

    records, prev = log.records(), decisions.GENESIS
    out = []
    for record in records:
        record = {**record, "prev": prev}
        if record["seq"] == 1:
            record["text"] = "a different business case"
        record["hash"] = decisions._digest(record)
        prev = record["hash"]
        out.append(decisions._line(record))
    log.path.write_text("".join(out))
    log.head_path.write_text(json.dumps({"count": len(records), "head": prev}))


def test_a_rewritten_history_fails_against_the_published_head(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    published = log.records()[-1]["hash"]
    assert log.verify(expect_head=published) == []
    assert log.verify(expect_head=published[:16]) == []  # as the CLI prints it
    _rewrite_history(log)
    assert log.verify() == []  # the local head file cannot tell
    problems = log.verify(expect_head=published)
    assert problems and "does not lead to the published head" in str(problems[0])
    log.append("gate", "a later decision", "Contract", "fp")  # history extending a head still leads to it
    assert log.verify(expect_head=log.records()[2]["hash"]) == []


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True, cwd=tmp_path
    )


def test_verify_and_publish_check_the_published_head(tmp_path: Path, paid_store: Path) -> None:
    terms = str(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml")
    log = _log(tmp_path, 2)
    release = tmp_path / "release.json"
    publish = ("publish", terms, "--store", str(paid_store), "--ocds", str(release), "--log", str(log.path))
    first = _cli(tmp_path, *publish)
    assert first.returncode == 0, first.stderr
    head = json.loads(release.read_text())["decisionLog"]["headHash"]
    assert _cli(tmp_path, "decisions", "verify", "--log", str(log.path), "--expect-head", head).returncode == 0
    assert _cli(tmp_path, "decisions", "verify", "--log", str(log.path), "--release", str(release)).returncode == 0
    _rewrite_history(log)
    assert _cli(tmp_path, "decisions", "verify", "--log", str(log.path)).returncode == 0
    for anchor in (("--expect-head", head), ("--release", str(release))):
        bad = _cli(tmp_path, "decisions", "verify", "--log", str(log.path), *anchor)
        assert bad.returncode == 1 and "does not lead to the published head" in bad.stderr, bad.stderr
    refused = _cli(tmp_path, *publish)
    assert refused.returncode == 2 and "does not lead to the published head" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and json.loads(release.read_text())["decisionLog"]["headHash"] == head


@pytest.mark.parametrize(
    ("where", "content"),
    [("log", b"1\n"), ("log", b"[1, 2]\n"), ("log", b"\xff\xfe\n"), ("head", b"{not json"), ("head", b"[]")],
)
def test_corrupt_lines_and_heads_give_one_line_naming_them(
    tmp_path: Path, paid_store: Path, where: str, content: bytes
) -> None:
    terms = str(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml")
    log = _log(tmp_path, 2)
    if where == "log":
        log.path.write_bytes(log.path.read_bytes() + content)
    else:
        log.head_path.write_bytes(content)
    verify = _cli(tmp_path, "decisions", "verify", "--log", str(log.path))
    assert verify.returncode == 1 and "Traceback" not in verify.stderr, verify.stderr
    assert ("line 3" in verify.stderr) if where == "log" else ("head" in verify.stderr)
    out = tmp_path / "r.json"
    publish = _cli(tmp_path, "publish", terms, "--store", str(paid_store), "--ocds", str(out), "--log", str(log.path))
    assert publish.returncode == 2 and "Traceback" not in publish.stderr, publish.stderr
    assert len(publish.stderr.strip().splitlines()) == 1 and not out.exists()


def test_publish_remembers_every_head_it_published(tmp_path: Path, paid_store: Path) -> None:
    """A release written somewhere else next time still has to extend the head published before."""
    terms = str(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml")
    log = _log(tmp_path, 2)
    first = ("publish", terms, "--store", str(paid_store), "--ocds", str(tmp_path / "a.json"), "--log", str(log.path))
    assert _cli(tmp_path, *first).returncode == 0
    assert log.published_heads() == [log.records()[-1]["hash"]]
    _rewrite_history(log)
    again = ("publish", terms, "--store", str(paid_store), "--ocds", str(tmp_path / "b.json"), "--log", str(log.path))
    refused = _cli(tmp_path, *again)
    assert refused.returncode == 2 and "does not lead to the published head" in refused.stderr, refused.stderr
    assert not (tmp_path / "b.json").exists()
