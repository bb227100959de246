"""The importer streams: mapping and staging a CWT extract five times larger does not need more memory.

Each size runs in a fresh process; its peak resident set is reset once the libraries are loaded
(Linux: ``5`` to ``/proc/self/clear_refs`` resets VmHWM) and read after staging. Were the records or
events held in memory, 480,000 more events would need hundreds of MiB more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "national" / "cwt" / "cwt-extract.csv"
SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from carecontract.imports import cwt, run
path = Path(sys.argv[1])
folder = Path(tempfile.mkdtemp())
Path("/proc/self/clear_refs").write_text("5")
rejections = run.Rejections(folder / "rejected.parquet", "cwt")
ledgers, _ = run.stage(cwt, [path], folder, rejections, "test", lambda *_: None)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"records": ledgers[0].records, "events": ledgers[0].events,
                  "peak_mib": int(status["VmHWM"].split()[0]) / 1024}))
"""


def _extract(path: Path, records: int) -> Path:
    header, first = EXAMPLE.read_text().splitlines()[:2]
    at = first.index("RJE0000001")
    with open(path, "w") as out:
        out.write(header + "\n")
        for n in range(records):
            out.write(f"{first[:at]}P{n:09d}{first[at + 10 :]}\n")
    return path


def _peak(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_staging_memory_does_not_grow_with_the_extract(tmp_path: Path) -> None:
    small = _peak(_extract(tmp_path / "small.csv", 20_000))
    large = _peak(_extract(tmp_path / "large.csv", 100_000))
    assert (small["records"], large["records"]) == (20_000, 100_000)
    assert large["events"] == 5 * small["events"] == 700_000
    assert large["peak_mib"] - small["peak_mib"] < 30, (small, large)
