"""Exactly once under faults: kill -9 of the streaming driver, a broker restart, a model change.

The streaming job runs as a real subprocess (`jobs/stream_score.py`) in its own
process group, so SIGKILL takes down the Python driver and its JVM together, as a
crash would. Counts are read back with `deltalake`.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.delta_io import table_rows
from fraud_ml.kafka_local import LocalKafkaBroker, create_topic, free_port
from fraud_ml.producer import replay, replay_frame

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli_overrides(cfg) -> list[str]:
    keys = ["kafka.bootstrap_servers", "kafka.topic", "kafka.partitions", "delta.root", "mlflow.tracking_uri",
            "mlflow.artifact_location", "mlflow.model_name", "stream.checkpoint_dir", "stream.max_offsets_per_trigger",
            "stream.trigger_interval", "spark.master", "spark.driver_memory", "spark.shuffle_partitions"]
    args = []
    for key in keys:
        args += ["--set", f"{key}={cfg.get(key)}"]
    return args


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stream_left_behind():
    """A failed wait must not leave a streaming driver running after its test."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            kill_9(proc)


def start_stream_process(cfg, log_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.Popen([sys.executable, "jobs/stream_score.py", *_cli_overrides(cfg), *extra], cwd=PROJECT_ROOT,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    _STARTED.append(proc)
    return proc


def kill_9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_until(predicate, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"stream process exited early ({proc.returncode}) while waiting for {what}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def source_frame(split, n: int):
    return replay_frame(split, n)


def assert_exactly(cfg, frame) -> None:
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["transaction_id", "batch_id"])
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    assert len(preds) == len(frame), f"{len(preds)} predictions for {len(frame)} transactions"
    assert preds["transaction_id"].is_unique, "a transaction was written twice"
    assert set(preds["transaction_id"]) == set(frame["transaction_id"]), "a transaction is missing"
    assert metrics["batch_id"].is_unique, "a batch was counted twice in batch_metrics"
    assert metrics["rows"].sum() == len(frame)
    assert table_rows(cfg.table_path("quarantine")) == 0


def test_kill_9_driver_three_times_loses_and_duplicates_nothing(kafka_broker, registered_champion, make_config,
                                                                 champion_test_split, tmp_path):
    topic = "eo-kill"
    cfg = make_config(f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"kafka.topic={topic}",
                      "kafka.partitions=2", "stream.max_offsets_per_trigger=250", "stream.trigger_interval=200 milliseconds",
                      "spark.master=local[2]", "spark.driver_memory=1g")
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    frame = source_frame(champion_test_split, 3000)
    replay(frame, cfg, rate=0)
    rng = random.Random(20261129)
    log_path = tmp_path / "stream.log"
    kills = 0
    for attempt in range(3):
        before = table_rows(cfg.table_path("batch_metrics"))
        proc = start_stream_process(cfg, log_path)
        # Let it commit at least one new batch, then crash it at a random moment of the next ones.
        wait_until(lambda: table_rows(cfg.table_path("batch_metrics")) > before, 240, proc, "a committed batch")
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            kill_9(proc)
            kills += 1
    assert kills == 3
    assert table_rows(cfg.table_path("predictions")) < len(frame), "the crashes came too late to test anything"
    proc = start_stream_process(cfg, log_path, "--available-now")
    assert proc.wait(timeout=300) == 0, log_path.read_text()[-3000:]
    assert_exactly(cfg, frame)


def test_broker_restart_mid_stream(registered_champion, make_config, base_config, champion_test_split, tmp_path):
    broker = LocalKafkaBroker(jars_dir=Path(base_config.get("kafka.local.jars_dir")), data_dir=tmp_path / "kafka",
                              port=free_port(), controller_port=free_port(), heap="384m").start()
    try:
        cfg = make_config(f"kafka.bootstrap_servers={broker.bootstrap_servers}", "kafka.topic=eo-broker",
                          "stream.max_offsets_per_trigger=400", "stream.trigger_interval=500 milliseconds",
                          "spark.master=local[2]", "spark.driver_memory=1g")
        create_topic(broker.bootstrap_servers, "eo-broker", 2)
        frame = source_frame(champion_test_split, 1600)
        first, second = frame.iloc[:800], frame.iloc[800:]
        replay(first, cfg, rate=0)
        log_path = tmp_path / "stream.log"
        proc = start_stream_process(cfg, log_path)
        wait_until(lambda: table_rows(cfg.table_path("batch_metrics")) >= 1, 240, proc, "the first batch")
        broker.stop()
        time.sleep(3)
        broker.start()
        replay(second, cfg, rate=0)
        # The running job either rides through the restart or fails clearly; either way, stop it,
        # then a restart from the checkpoint must finish the topic with nothing lost or duplicated.
        try:
            wait_until(lambda: table_rows(cfg.table_path("predictions")) >= len(frame), 60, proc, "all rows")
        except AssertionError:
            pass
        if proc.poll() is None:
            kill_9(proc)
        proc = start_stream_process(cfg, log_path, "--available-now")
        assert proc.wait(timeout=300) == 0, log_path.read_text()[-3000:]
        assert_exactly(cfg, frame)
    finally:
        broker.stop()


def test_restart_with_a_new_champion_version(spark, kafka_broker, registered_champion, make_config,
                                            champion_delta_root, champion_test_split, tmp_path):
    import mlflow
    from fraud_ml.streaming import run_stream
    from fraud_ml.tracking import setup_mlflow
    from fraud_ml.training import load_splits, train_champion

    topic = "eo-model"
    cfg = make_config(f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"kafka.topic={topic}",
                      "mlflow.model_name=eo-model")
    champion_cfg = cfg.with_overrides([f"delta.root={champion_delta_root}",
                                       "train.xgboost.n_estimators=10"], env={})
    first_version = train_champion(load_splits(spark, champion_cfg), champion_cfg).champion.version
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    frame = source_frame(champion_test_split, 1200)
    replay(frame.iloc[:600], cfg, rate=0)
    run_stream(spark, cfg, available_now=True)

    second = train_champion(load_splits(spark, champion_cfg.with_overrides(["train.xgboost.max_depth=3"], env={})),
                            champion_cfg).champion.version
    assert second != first_version
    setup_mlflow(cfg)
    assert str(mlflow.MlflowClient().get_model_version_by_alias("eo-model", "champion").version) == second
    replay(frame.iloc[600:], cfg, rate=0)
    run_stream(spark, cfg, available_now=True)

    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["transaction_id", "model_version"])
    assert len(preds) == 1200 and preds["transaction_id"].is_unique
    assert set(preds["model_version"]) == {first_version, second}
    by_version = preds.groupby("model_version").size().to_dict()
    assert by_version == {first_version: 600, second: 600}
    # the old version is kept in the registry
    assert mlflow.MlflowClient().get_model_version("eo-model", first_version).status == "READY"
