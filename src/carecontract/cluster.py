"""A Spark standalone cluster on this machine: one master and its workers, each its own process.

Why: ``--spark-master`` should be tried against a real cluster (a master, workers registering with
it, executors in their own JVMs reading the store), not only Spark's in-process ``local[n]`` mode,
and the parity tests run against one in CI. Nothing is downloaded: PySpark's wheel carries Spark's
launcher (``bin/spark-class``) and jars, which start the standalone ``Master`` and ``Worker``
daemons (the wheel ships no ``sbin/start-master.sh``). The PySpark package itself is the Spark home,
so the daemons are always the driver's own Spark version, whatever ``SPARK_HOME`` says.

:class:`StandaloneCluster` starts the daemons (each in its own process group, so stopping one also
stops the executors it launched), waits until every worker has registered with the master (the
master's ``/json`` status page), and stops them by the ids it recorded. ``tie_to_parent`` makes
the kernel stop the daemons if the process that started them dies without cleaning up (the test
fixture's guard against orphan JVMs); ``carecontract spark-cluster start`` leaves them running
until ``carecontract spark-cluster stop``, which reads their ids from the cluster's folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from carecontract.errors import UserError

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: The file in the cluster's folder that names its processes, for ``stop`` from another process.
STATE_FILE = "cluster.json"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ClusterError(UserError):
    """A cluster that cannot be started or stopped as asked, said in one line."""


def spark_home() -> Path:
    """The PySpark package folder: Spark's launcher and jars, the same version as the driver."""
    spec = find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ClusterError("a Spark cluster needs PySpark: pip install -e '.[spark]'")
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").exists():
        raise ClusterError(f"PySpark at {home} has no bin/spark-class to start a cluster with")
    return home


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to this process when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_spark_daemon(pid: int) -> bool:
    """Whether ``pid`` is still one of Spark's deploy daemons (a recorded id may have been reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"org.apache.spark.deploy." in command


def _listening(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a child that has exited but not been reaped is a zombie: gone for our purposes
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    return True


@dataclass
class StandaloneCluster:
    """A standalone master and ``workers`` workers on ``host``, logs and work files under ``folder``."""

    folder: Path
    host: str = "127.0.0.1"
    port: int = 7077
    webui_port: int = 8080
    workers: int = 1
    cores: int = 1
    memory: str = "1g"
    daemon_memory: str = "512m"
    pids: dict[str, int] = field(default_factory=dict)
    _children: list[subprocess.Popen] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        """The master URL a driver connects to: what ``--spark-master`` takes."""
        return f"spark://{self.host}:{self.port}"

    @property
    def status_url(self) -> str:
        return f"http://{self.host}:{self.webui_port}/json/"

    def status(self) -> dict[str, Any] | None:
        """The master's own status (workers, cores, applications), or None when it does not answer."""
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def _launch(self, name: str, arguments: list[str], tie_to_parent: bool) -> None:
        home = spark_home()
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": self.host,
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            # a port in use is an error, not a silent move to the next one (the URL would be wrong)
            "SPARK_DAEMON_JAVA_OPTS": "-Dspark.port.maxRetries=0",
            # executors start Python workers with this; it must be the driver's Python
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        }
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
        with log:
            child = subprocess.Popen(
                [str(home / "bin" / "spark-class"), *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.folder,
                start_new_session=True,  # its own process group: stopping it stops its executors too
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        self._children.append(child)
        self.pids[name] = child.pid

    def start(self, timeout: float = 120, tie_to_parent: bool = False) -> StandaloneCluster:
        """Start the master and workers, and return once every worker has registered.

        The workers start at once beside the master (they retry until it answers), which saves the
        master's start-up time. On a timeout or a daemon that exits, everything started is stopped
        and :class:`ClusterError` says why, with the end of that daemon's log.
        """
        for port in (self.port, self.webui_port):
            if _listening(self.host, port):
                raise ClusterError(f"port {port} on {self.host} is in use: is a cluster running there already?")
        self.folder.mkdir(parents=True, exist_ok=True)
        common = ["--host", self.host]
        try:
            ports = ["--port", str(self.port), "--webui-port", str(self.webui_port)]
            self._launch("master", [MASTER_CLASS, *common, *ports], tie_to_parent)
            for n in range(1, self.workers + 1):
                work = self.folder / f"work-{n}"
                arguments = [WORKER_CLASS, self.url, *common, "--cores", str(self.cores), "--memory", self.memory]
                arguments += ["--work-dir", str(work), "--webui-port", "0"]
                self._launch(f"worker-{n}", arguments, tie_to_parent)
            self._save()
            self._wait_for_workers(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self._children:
                if child.poll() is not None:
                    name = next(n for n, p in self.pids.items() if p == child.pid)
                    raise ClusterError(f"the Spark {name} exited ({child.returncode}): {self._last_line(name)}")
            status = self.status()
            if status and status.get("status") == "ALIVE" and status.get("aliveworkers", 0) >= self.workers:
                return
            time.sleep(0.25)
        raise ClusterError(f"no {self.workers} worker(s) registered with {self.url} within {timeout:.0f} s")

    def _last_line(self, name: str) -> str:
        lines = (self.folder / f"{name}.log").read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no log"

    def _save(self) -> None:
        state = {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "webui_port": self.webui_port,
            "pids": self.pids,
        }
        (self.folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def running(self) -> list[int]:
        """The recorded daemons still running."""
        return [pid for pid in self.pids.values() if _alive(pid) and _is_spark_daemon(pid)]

    def stop(self, timeout: float = 20) -> None:
        """Stop every daemon this cluster recorded, with its process group; SIGKILL what outlives ``timeout``.

        Workers go first, so each stops its executors while the master still answers. Only recorded
        ids that are still Spark daemons are signalled (an id may have been reused since).
        """
        order = sorted(self.pids, key=lambda name: name == "master")
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            targets = [self.pids[name] for name in order if self.pids[name] in self.running()]
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while targets and time.monotonic() < deadline:
                for child in self._children:
                    child.poll()  # reap our own children
                targets = [pid for pid in targets if _alive(pid)]
                time.sleep(0.1)
            if not targets:
                break
        for child in self._children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)
        (self.folder / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> StandaloneCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def recorded(cls, folder: Path) -> StandaloneCluster:
        """The cluster a ``start`` recorded in ``folder`` (for ``stop`` and ``status`` from another process)."""
        try:
            state = json.loads((folder / STATE_FILE).read_text())
        except FileNotFoundError:
            raise ClusterError(
                f"no cluster recorded in {folder} (start one with `carecontract spark-cluster start`)"
            ) from None
        ports = {k: state[k] for k in ("host", "port", "webui_port")}
        return cls(folder, **ports, pids={name: int(pid) for name, pid in state["pids"].items()})
