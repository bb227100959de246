"""``carecontract spark-cluster``: a Spark standalone cluster on this machine, to try ``--spark-master``.

The master and workers run as their own processes from PySpark's own launcher (nothing to
download) and keep running after ``start`` returns, until ``stop``; their ids, logs and work files
are kept in ``--dir``. A managed cluster (Databricks, EMR, Dataproc, Synapse) needs none of this:
see docs/scale.md, "Running on a Spark cluster".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import JsonOption
from carecontract.cli.shell import app
from carecontract.present import console

cluster_app = typer.Typer(
    help="A Spark standalone cluster on this machine (master + workers) for --engine spark --spark-master.",
    no_args_is_help=True,
)
app.add_typer(cluster_app, name="spark-cluster")

DirOption = Annotated[Path, typer.Option("--dir", help="Folder for the cluster's process ids, logs and work files.")]
DEFAULT_DIR = Path(".carecontract-spark")


@cluster_app.command("start")
def start(
    folder: DirOption = DEFAULT_DIR,
    host: Annotated[str, typer.Option(help="Address the master and workers listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The master's port (the URL's).")] = 7077,
    webui_port: Annotated[int, typer.Option(help="The master's status page (also /json).")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    cores: Annotated[int, typer.Option(min=1, help="Cores each worker offers.")] = 1,
    memory: Annotated[str, typer.Option(help="Memory each worker offers its executors (Spark's 1g each).")] = "1g",
    as_json: JsonOption = False,
) -> None:
    """Start a master and workers, wait until every worker has registered, print the master URL."""
    from carecontract.cluster import StandaloneCluster

    cluster = StandaloneCluster(folder.resolve(), host, port, webui_port, workers, cores, memory).start()
    if as_json:
        print(json.dumps({"url": cluster.url, "status": cluster.status_url, "pids": cluster.pids}))
        return
    console.print(f"[green]✓[/] Spark master {cluster.url} with {workers} worker(s) ({cores} core(s), {memory} each)")
    console.print(f"  status {cluster.status_url}; logs in {folder}")
    console.print(f"  use it: carecontract measures ... --engine spark --spark-master {cluster.url}")
    console.print(f"  stop it: carecontract spark-cluster stop --dir {folder}")


@cluster_app.command("status")
def status(folder: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """The recorded cluster's processes and what its master says (workers, cores, applications)."""
    from carecontract.cluster import StandaloneCluster

    cluster = StandaloneCluster.recorded(folder)
    state = cluster.status()
    running = cluster.running()
    if as_json:
        print(json.dumps({"url": cluster.url, "running": running, "master": state}))
        return
    console.print(f"{cluster.url}: {len(running)} of {len(cluster.pids)} processes running")
    if state:
        apps = ", ".join(a["name"] for a in state.get("activeapps", [])) or "none"
        console.print(f"  {state['aliveworkers']} worker(s) alive, {state['cores']} core(s); applications: {apps}")
    else:
        console.print(f"  the master does not answer on {cluster.status_url}")


@cluster_app.command("stop")
def stop(folder: DirOption = DEFAULT_DIR) -> None:
    """Stop the cluster recorded in --dir: its workers (with their executors), then its master."""
    from carecontract.cluster import StandaloneCluster

    cluster = StandaloneCluster.recorded(folder)
    cluster.stop()
    console.print(f"[green]✓[/] stopped {cluster.url}")
