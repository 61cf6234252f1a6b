"""A local Spark standalone cluster (one master + N workers) from pyspark's own ``bin/spark-class``.

Used by ``tests/local/test_cluster.py`` and handy for trying the jobs with
``--set spark.master=spark://127.0.0.1:<port>`` on one machine before a real cluster.
Nothing is installed: the master and workers are the JVM classes that ship inside
the pyspark wheel, started on free ports, and the workers run Python tasks with
this interpreter (the venv), exactly like the driver.

Usage::

    python -m fraud_ml.local.cluster --workers 1 --cores 2 --memory 2g
    # prints the master URL and web UI, runs until Ctrl-C, then stops everything
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fraud_ml.local.kafka_broker import free_port

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class ClusterError(RuntimeError):
    """The standalone cluster did not start, or a worker did not register in time."""


def spark_home() -> Path:
    """The Spark distribution bundled with the installed pyspark (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class StandaloneCluster:
    """Handle on a running master + workers; ``stop()`` ends every process it started."""

    host: str
    port: int
    webui_port: int
    work_dir: Path
    log_dir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{self.host}:{self.webui_port}"

    def state(self, timeout: float = 5.0) -> dict:
        """The master's JSON status page (workers, active and completed applications)."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def alive_workers(self) -> list[dict]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def completed_apps(self) -> list[dict]:
        return list(self.state().get("completedapps", []))

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> list[dict]:
        """Block until ``count`` workers are ALIVE on the master; ClusterError with the logs' tail if not."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            self._check_running()
            try:
                workers = self.alive_workers()
                if len(workers) >= count:
                    return workers
                last_error = f"{len(workers)}/{count} workers alive"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise ClusterError(
            f"{count} worker(s) did not register with {self.master_url} within "
            f"{timeout:.0f}s ({last_error}){self._log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM each started process group (JVM + its executors), SIGKILL what is left."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Executors are children in the worker's process group: make sure none outlives it.
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=5)
        self.procs.clear()

    def _check_running(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise ClusterError(f"{' '.join(proc.args[1:2])} exited with code {proc.returncode}{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.log_dir.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"\n--- {log.name} ---\n" + "\n".join(text))
        return "".join(out)

    def __enter__(self) -> "StandaloneCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # started with start_new_session=True: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def daemon_env(host: str, python: str, daemon_memory: str) -> dict[str, str]:
    """Environment for master/worker JVMs: this pyspark as SPARK_HOME, this Python for tasks."""
    env = dict(os.environ)
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_SUBMIT_OPTS", "SPARK_CONF_DIR"):
        env.pop(name, None)
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": host,
            "SPARK_DAEMON_MEMORY": daemon_memory,
            "PYSPARK_PYTHON": python,
            "PYSPARK_DRIVER_PYTHON": python,
        }
    )
    return env


def start_cluster(
    work_dir: str | os.PathLike | None = None,
    workers: int = 1,
    cores: int = 1,
    memory: str = "1g",
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    python: str | None = None,
    daemon_memory: str = "256m",
) -> StandaloneCluster:
    """Start a master and ``workers`` workers on free ports and wait until all are registered."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="spark-standalone-")).resolve()
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    spark_class = spark_home() / "bin" / "spark-class"
    if not spark_class.is_file():
        raise ClusterError(f"{spark_class} not found: is pyspark installed in this environment?")
    env = daemon_env(host, python or sys.executable, daemon_memory)
    cluster = StandaloneCluster(
        host=host, port=free_port(host), webui_port=free_port(host), work_dir=work_dir, log_dir=log_dir
    )

    def launch(name: str, args: list[str]) -> None:
        log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        try:
            cluster.procs.append(
                subprocess.Popen(
                    [str(spark_class), *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=work_dir,
                    start_new_session=True,
                )
            )
        finally:
            log.close()

    try:
        launch(
            "master",
            [MASTER_CLASS, "--host", host, "--port", str(cluster.port), "--webui-port", str(cluster.webui_port)],
        )
        for i in range(workers):
            worker_dir = work_dir / f"worker-{i}"
            worker_dir.mkdir(exist_ok=True)
            launch(
                f"worker-{i}",
                [
                    WORKER_CLASS,
                    cluster.master_url,
                    "--host",
                    host,
                    "--webui-port",
                    str(free_port(host)),
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--work-dir",
                    str(worker_dir),
                ],
            )
        cluster.wait_for_workers(workers, timeout=timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="1g", help="memory per worker, e.g. 2g")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--work-dir", default=None, help="logs and executor work folders (default: a temp folder)")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # SIGTERM (kill, docker stop) and SIGINT (even when started in the background, where
    # SIGINT is ignored by default) both stop the cluster instead of orphaning the JVMs.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        cluster = start_cluster(
            args.work_dir,
            workers=args.workers,
            cores=args.cores,
            memory=args.memory,
            host=args.host,
            timeout=args.timeout,
        )
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"master {cluster.master_url}  web UI {cluster.webui_url}  logs {cluster.log_dir}", flush=True)
    print(f"run a job on it: python jobs/prepare_data.py --set spark.master={cluster.master_url}", flush=True)
    try:
        while all(p.poll() is None for p in cluster.procs):
            time.sleep(1)
        print("a cluster process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
