"""The jobs on a REAL Spark standalone cluster: a master and one worker started by the test.

The master and worker are the JVM daemons bundled with pyspark (``bin/spark-class``,
fraud_ml.local.cluster), on free ports on 127.0.0.1. Jobs run as separate driver
processes (this test session may already hold a local SparkSession) with
``spark.master=spark://127.0.0.1:<port>``, exactly as on the compose stack or a
real cluster, so the checks cover what local mode hides: jars shipped to
executors, executors writing Delta files the driver commits, and Python tasks
running in the worker with the venv's interpreter.

To run another job on the cluster (e.g. jobs/stream_score.py --available-now with
the ``kafka_broker`` fixture and a registered model) add a ClusterJob and a test
like ``test_prepare_data_runs_on_the_cluster``: ``run_on_cluster`` does the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fraud_ml.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT
from fraud_ml.local.cluster import StandaloneCluster, start_cluster
from fraud_ml.local.jars import missing_jars

SPARK_JARS = PROJECT_ROOT / "var" / "jars" / "spark"
ROWS = 5000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="no Java runtime"),
    pytest.mark.skipif(
        bool(missing_jars(SPARK_JARS, "spark")), reason=f"Spark jars not resolved in {SPARK_JARS}: run `make jars`"
    ),
]


@dataclass
class ClusterJob:
    """A job run as its own driver process against the cluster."""

    name: str
    argv: list[str]  # after the python executable, relative to the repo root
    overrides: list[str] = field(default_factory=list)
    timeout_s: float = 420.0  # a ceiling: ~30-60 s on an idle machine, far more on a loaded one


@dataclass
class JobRun:
    proc: subprocess.CompletedProcess
    app: dict  # the master's record of the application
    work_dir: Path  # the worker's folder for this application (executor logs)
    seconds: float


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> StandaloneCluster:
    """One master + one worker (1 core, 1g), stopped however the tests end."""
    started = start_cluster(
        tmp_path_factory.mktemp("standalone"), workers=1, cores=1, memory="1g", timeout=90, python=sys.executable
    )
    try:
        yield started
    finally:
        started.stop()
    assert all(p.poll() is not None for p in started.procs)


@pytest.fixture
def cluster_conf(cluster: StandaloneCluster, tmp_path: Path) -> Path:
    """conf/local.yaml pointed at the cluster, with every output in tmp_path and a small footprint."""
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    data["spark"].update(
        {
            "master": cluster.master_url,
            "driver_memory": "1g",
            "shuffle_partitions": 2,
            # Executors must fit the 1g worker; one core keeps the test light on a shared machine.
            # Delta's default 50 snapshot partitions cost 50 one-core tasks per table read.
            "conf": {
                "spark.executor.memory": "512m",
                "spark.cores.max": "1",
                "spark.ui.enabled": "false",
                "spark.databricks.delta.snapshotPartitions": "2",
            },
        }
    )
    data["data"].update({"input": "", "synthetic_rows": ROWS})
    data["delta"]["root"] = str(tmp_path / "delta")
    data["stream"]["checkpoint_dir"] = str(tmp_path / "checkpoints")
    data["mlflow"].update(
        {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifact_location": str(tmp_path / "artifacts")}
    )
    path = tmp_path / "cluster-test.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def driver_env() -> dict[str, str]:
    """A clean environment for a driver process: no config overrides or gateway of this session."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRAUD_ML", "PYSPARK_GATEWAY", "MLFLOW_")) and k not in ("SPARK_SUBMIT_OPTS", "SPARK_HOME")
    }
    # Executors start Python workers with the driver's PYSPARK_PYTHON: the venv's interpreter.
    env.update(
        {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    )
    return env


def run_on_cluster(cluster: StandaloneCluster, conf: Path, job: ClusterJob, app_name: str) -> JobRun:
    """Run ``job`` as a driver on ``cluster``; return the process and the master's record of its app."""
    before = {a["id"] for a in cluster.completed_apps()}
    argv = [
        sys.executable,
        *job.argv,
        "--conf",
        str(conf),
        "--set",
        f"spark.master={cluster.master_url}",
        *[a for o in job.overrides for a in ("--set", o)],
    ]
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=driver_env(), capture_output=True, text=True, timeout=job.timeout_s
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, (
        f"{job.name} failed on {cluster.master_url} (rc {proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    # The master moves the app to "completed" once the driver has disconnected.
    deadline = time.monotonic() + 30
    new: list[dict] = []
    while time.monotonic() < deadline:
        new = [a for a in cluster.completed_apps() if a["id"] not in before and a["name"] == app_name]
        if new:
            break
        time.sleep(0.5)
    assert len(new) == 1, f"the master lists no completed app {app_name!r}: {cluster.completed_apps()}"
    app = new[0]
    work_dirs = list(cluster.work_dir.glob(f"worker-*/{app['id']}"))
    assert work_dirs, f"no executor of {app['id']} ran on the worker (nothing in {cluster.work_dir})"
    return JobRun(proc=proc, app=app, work_dir=work_dirs[0], seconds=seconds)


def read_delta(path: Path):
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pandas()


def assert_ran_executors(run: JobRun) -> None:
    assert run.app["state"] == "FINISHED", run.app
    assert run.app["cores"] >= 1, run.app
    executors = [p for p in run.work_dir.iterdir() if p.is_dir()]
    assert executors, f"no executor folder in {run.work_dir}"
    stderr = "\n".join((p / "stderr").read_text(errors="replace") for p in executors if (p / "stderr").is_file())
    assert "CoarseGrainedExecutorBackend" in stderr or "Executor" in stderr, "executor log shows no executor start"


# ----------------------------------------------------------------------------- the cluster itself
def test_cluster_has_one_alive_worker(cluster: StandaloneCluster):
    state = cluster.state()
    assert state["status"] == "ALIVE" and state["url"] == cluster.master_url
    workers = cluster.alive_workers()
    assert len(workers) == 1 and workers[0]["cores"] == 1 and workers[0]["memory"] == 1024


# ----------------------------------------------------------------------------- jobs on the cluster
PREPARE = ClusterJob(name="prepare_data", argv=["jobs/prepare_data.py"])

PROBE_SCRIPT = '''
"""Read a table the cluster wrote, run a pandas UDF on the executors, write and read Delta."""
import json
import sys

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.spark import build_spark


@F.pandas_udf(StringType())
def python_of(col: pd.Series) -> pd.Series:
    import fraud_ml  # the project package must import on the workers too
    return pd.Series([sys.executable] * len(col))


def main(args, cfg):
    spark = build_spark(cfg, "fraud-ml-cluster-probe")
    sc = spark.sparkContext
    train = spark.read.format("delta").load(cfg.table_path("train"))
    out = train.select("transaction_id", "Class", python_of("Amount").alias("python")).repartition(3)
    target = cfg.table_path("train") + "_probe"
    out.write.format("delta").mode("overwrite").save(target)
    print(json.dumps({
        "master": sc.master,
        "app_id": sc.applicationId,
        "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,
        "target": target,
    }))
    spark.stop()


if __name__ == "__main__":
    sys.exit(run_job(main, job_parser(__doc__)))
'''


def test_prepare_data_runs_on_the_cluster(cluster: StandaloneCluster, cluster_conf: Path, tmp_path: Path):
    run = run_on_cluster(cluster, cluster_conf, PREPARE, app_name="fraud-ml-prepare")
    assert_ran_executors(run)
    print(f"prepare_data on the cluster: {run.seconds:.0f}s")

    splits = {name: read_delta(tmp_path / "delta" / name) for name in ("train", "validation", "test")}
    assert sum(len(df) for df in splits.values()) == ROWS
    for name, fraction in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):
        df = splits[name]
        assert abs(len(df) - fraction * ROWS) <= 2, f"{name}: {len(df)} rows"
        assert df["Class"].sum() >= 1, f"{name} has no fraud: the split is not stratified"
        assert set(df["source"]) == {"generated"}
    ids = [set(df["transaction_id"]) for df in splits.values()]
    assert len(ids[0] | ids[1] | ids[2]) == ROWS, "a transaction landed in two splits"

    # Second driver: executors read what the first one wrote and run Python (pandas UDF) tasks.
    script = tmp_path / "cluster_probe.py"
    script.write_text(PROBE_SCRIPT, encoding="utf-8")
    probe = run_on_cluster(
        cluster, cluster_conf, ClusterJob(name="probe", argv=[str(script)]), app_name="fraud-ml-cluster-probe"
    )
    assert_ran_executors(probe)
    print(f"probe on the cluster: {probe.seconds:.0f}s")
    result = json.loads(probe.proc.stdout.strip().splitlines()[-1])
    assert result["master"] == cluster.master_url
    assert result["app_id"] == probe.app["id"]
    assert result["executors"] >= 1
    probe_table = read_delta(Path(result["target"]))
    assert len(probe_table) == len(splits["train"])
    assert set(probe_table["python"]) == {sys.executable}, "worker Python tasks did not use the venv interpreter"


STREAM = ClusterJob(name="stream_score", argv=["jobs/stream_score.py", "--available-now"])


def test_stream_score_runs_on_the_cluster(
    cluster: StandaloneCluster,
    cluster_conf: Path,
    tmp_path: Path,
    kafka_broker,
    registered_champion,
    base_config,
    champion_delta_root,
):
    """The streaming job, unchanged, with --master spark://...: Kafka -> pyfunc UDF on executors -> Delta."""
    from fraud_ml.io.kafka import create_topic
    from fraud_ml.streaming.producer import replay, replay_frame

    topic = "cluster-stream"
    cfg = base_config.with_overrides(
        [f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"kafka.topic={topic}"], env={}
    )
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    champion_root = champion_delta_root
    frame = replay_frame(read_delta(Path(champion_root) / "test"), 600)
    replay(frame, cfg, rate=0)
    job = ClusterJob(
        name=STREAM.name,
        argv=STREAM.argv,
        overrides=[
            f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
            f"kafka.topic={topic}",
            "kafka.partitions=2",
            f"mlflow.tracking_uri={base_config.get('mlflow.tracking_uri')}",
            f"mlflow.artifact_location={base_config.get('mlflow.artifact_location')}",
        ],
    )
    run = run_on_cluster(cluster, cluster_conf, job, app_name="fraud-ml-stream")
    assert_ran_executors(run)
    print(f"stream_score on the cluster: {run.seconds:.0f}s")
    preds = read_delta(tmp_path / "delta" / "predictions")
    assert len(preds) == 600 and preds["transaction_id"].is_unique
    assert set(preds["transaction_id"]) == set(frame["transaction_id"])
    assert preds["probability"].between(0, 1).all()
    assert set(preds["model_version"]) == {registered_champion.champion.version}
    metrics = read_delta(tmp_path / "delta" / "batch_metrics")
    assert metrics["rows"].sum() == 600
