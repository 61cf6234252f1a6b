"""Exactly once under faults, on the real broker, Spark and Delta: every message lands once.

The streaming job runs as a real subprocess (`jobs/stream_score.py`) in its own process
group, so SIGKILL takes down the Python driver and its JVM together, as a crash would.
Faults: the driver killed at each commit boundary (``FRAUD_ML_FAULT_AT``) and at random
moments, the broker stopped and killed -9 mid-stream, a new champion version, the
checkpoint deleted between runs, and a second query with the same ``stream.app_id``.
Counts are read back with `deltalake`.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.io.delta import table_rows
from fraud_ml.io.kafka import create_topic
from fraud_ml.streaming.producer import encode_messages, replay, replay_frame, send_raw
from fraud_ml.streaming.writer import FAULT_ENV, FAULT_POINTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# The stream as its own driver process (kill -9 takes it whole): small, fast triggers.
DRIVER_PROCESS = ("stream.trigger_interval=200 milliseconds", "spark.master=local[2]", "stream.driver_memory=1g")


def _cli_overrides(cfg) -> list[str]:
    keys = [
        "kafka.bootstrap_servers",
        "kafka.topic",
        "kafka.partitions",
        "delta.root",
        "mlflow.tracking_uri",
        "mlflow.artifact_location",
        "mlflow.model_name",
        "stream.checkpoint_dir",
        "stream.max_offsets_per_trigger",
        "stream.trigger_interval",
        "spark.master",
        "stream.driver_memory",
        "spark.shuffle_partitions",
    ]
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


def start_stream_process(cfg, log_path: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "jobs/stream_score.py", *_cli_overrides(cfg), *extra],
        cwd=PROJECT_ROOT,
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
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


def drain(cfg, log_path: Path) -> None:
    """Restart from the checkpoint and finish the topic (--available-now)."""
    proc = start_stream_process(cfg, log_path, "--available-now")
    assert proc.wait(timeout=300) == 0, log_path.read_text()[-3000:]


def assert_exactly(cfg, frame) -> None:
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["transaction_id", "batch_id"])
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    assert len(preds) == len(frame), f"{len(preds)} predictions for {len(frame)} transactions"
    assert preds["transaction_id"].is_unique, "a transaction was written twice"
    assert set(preds["transaction_id"]) == set(frame["transaction_id"]), "a transaction is missing"
    assert not metrics.duplicated(["query_id", "batch_id"]).any(), "a batch was counted twice in batch_metrics"
    assert metrics["rows"].sum() == len(frame)
    assert table_rows(cfg.table_path("quarantine")) == 0


def mixed_messages(split, n_good: int) -> tuple[list[tuple[bytes, bytes]], set[str]]:
    """(key, value) pairs: good transactions with a bad message every 9th and a repeated id every 11th."""
    frame = replay_frame(split, n_good)
    keys, values = encode_messages(frame, int(time.time() * 1000))
    out, bad_kinds = [], [b"{broken", b"", b'{"transaction_id": "x", "Time": 1e400}', b"[1]"]
    for i, (key, value) in enumerate(zip(keys, values)):
        out.append((key, value))
        if i % 9 == 4:
            out.append((f"bad-{i}".encode(), bad_kinds[i % len(bad_kinds)]))
        if i % 11 == 7:
            out.append((keys[i - 3], values[i - 3]))  # same key: same partition, later offset
    return out, set(frame["transaction_id"])


def assert_each_message_once(cfg, sent: int, ids: set[str]) -> None:
    """predictions + quarantine hold every (partition, offset) once; ids scored once; one metrics row per batch."""
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(
        columns=["transaction_id", "kafka_partition", "kafka_offset", "query_id", "batch_id"]
    )
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas(
        columns=["kafka_partition", "kafka_offset", "reason", "raw_value"]
    )
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    coordinates = list(zip(preds["kafka_partition"], preds["kafka_offset"])) + list(
        zip(quarantine["kafka_partition"], quarantine["kafka_offset"])
    )
    assert len(coordinates) == sent, f"{len(preds)} predictions + {len(quarantine)} quarantined for {sent} messages"
    assert len(set(coordinates)) == sent, "a message is in both tables or twice in one"
    assert preds["transaction_id"].is_unique and set(preds["transaction_id"]) == ids
    assert not metrics.duplicated(["query_id", "batch_id"]).any()
    assert metrics["rows"].sum() == len(preds) and metrics["quarantined"].sum() == len(quarantine)
    assert quarantine["raw_value"].notna().all()
    assert quarantine["reason"].str.startswith("duplicate transaction_id").any()


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_9_at_each_commit_boundary(
    kafka_broker, registered_champion, make_config, champion_test_split, tmp_path, point, topic_config
):
    topic = f"eo-fault-{point}"
    cfg = topic_config(topic, 2, "stream.max_offsets_per_trigger=150", *DRIVER_PROCESS)
    messages, ids = mixed_messages(champion_test_split, 400)
    send_raw(messages, cfg)
    log_path = tmp_path / "stream.log"
    crashed = start_stream_process(cfg, log_path, "--available-now", env={FAULT_ENV: f"{point}:1"})
    assert crashed.wait(timeout=300) == -signal.SIGKILL, log_path.read_text()[-3000:]
    assert f"killing the driver {point} of batch 1" in log_path.read_text()
    drain(cfg, log_path)
    assert "was partly committed before a restart" in log_path.read_text()
    assert_each_message_once(cfg, len(messages), ids)


def test_kill_9_driver_three_times_loses_and_duplicates_nothing(
    kafka_broker, registered_champion, make_config, champion_test_split, tmp_path, topic_config
):
    topic = "eo-kill"
    cfg = topic_config(topic, 2, "stream.max_offsets_per_trigger=250", *DRIVER_PROCESS)
    frame = replay_frame(champion_test_split, 3000)
    replay(frame, cfg, rate=0)
    rng = random.Random(20261129)
    log_path = tmp_path / "stream.log"
    kills = 0
    for _ in range(3):
        before = table_rows(cfg.table_path("batch_metrics"))
        proc = start_stream_process(cfg, log_path)
        # Let it commit at least one new batch, then crash it at a random moment of the next ones.
        wait_until(lambda b=before: table_rows(cfg.table_path("batch_metrics")) > b, 240, proc, "a committed batch")
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            kill_9(proc)
            kills += 1
    assert kills == 3
    assert table_rows(cfg.table_path("predictions")) < len(frame), "the crashes came too late to test anything"
    drain(cfg, log_path)
    assert_exactly(cfg, frame)


@pytest.mark.parametrize("how", ["stop", "kill -9"])
def test_broker_lost_mid_stream(registered_champion, make_config, new_broker, champion_test_split, tmp_path, how):
    broker = new_broker(tmp_path / "kafka").start()
    try:
        cfg = make_config(
            f"kafka.bootstrap_servers={broker.bootstrap_servers}",
            "kafka.topic=eo-broker",
            "stream.max_offsets_per_trigger=400",
            "stream.trigger_interval=500 milliseconds",
            "spark.master=local[2]",
            "stream.driver_memory=1g",
        )
        create_topic(broker.bootstrap_servers, "eo-broker", 2)
        frame = replay_frame(champion_test_split, 1600)
        first, second = frame.iloc[:800], frame.iloc[800:]
        replay(first, cfg, rate=0)
        log_path = tmp_path / "stream.log"
        proc = start_stream_process(cfg, log_path)
        wait_until(lambda: table_rows(cfg.table_path("batch_metrics")) >= 1, 240, proc, "the first batch")
        if how == "stop":
            broker.stop()
        else:
            broker.kill()
        time.sleep(3)
        broker.start()
        replay(second, cfg, rate=0)
        # The running job either rides through the loss or fails clearly; either way, stop it,
        # then a restart from the checkpoint must finish the topic with nothing lost or duplicated.
        try:
            wait_until(lambda: table_rows(cfg.table_path("predictions")) >= len(frame), 60, proc, "all rows")
        except AssertionError:
            pass
        if proc.poll() is None:
            kill_9(proc)
        drain(cfg, log_path)
        assert_exactly(cfg, frame)
    finally:
        broker.stop()


def test_a_deleted_checkpoint_never_skips_new_transactions(
    kafka_broker, registered_champion, make_config, champion_test_split, tmp_path, topic_config
):
    topic = "eo-new-checkpoint"
    cfg = topic_config(
        topic, 2, "stream.max_offsets_per_trigger=200", "spark.master=local[2]", "stream.driver_memory=1g"
    )
    frame = replay_frame(champion_test_split, 900)
    old, new = frame.iloc[:500], frame.iloc[500:]
    replay(old, cfg, rate=0)
    log_path = tmp_path / "stream.log"
    drain(cfg, log_path)
    assert table_rows(cfg.table_path("predictions")) == len(old)
    first_query = set(DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["query_id"])["query_id"])
    shutil.rmtree(cfg.get("stream.checkpoint_dir"))  # what an operator does after an incompatible change
    replay(new, cfg, rate=0)
    drain(cfg, log_path)  # a new query id: batch ids start at 0 again, from the earliest offsets
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["transaction_id", "query_id"])
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas(columns=["reason"])
    assert preds["transaction_id"].is_unique and set(preds["transaction_id"]) == set(frame["transaction_id"])
    assert preds["query_id"].nunique() == 2 and len(first_query) == 1
    assert set(preds.loc[~preds["query_id"].isin(first_query), "transaction_id"]) == set(new["transaction_id"])
    # The old messages, read again, are recorded as duplicates, not scored twice.
    assert (
        len(quarantine) == len(old)
        and quarantine["reason"].str.startswith("duplicate transaction_id: already scored in batch").all()
    )


def test_a_second_query_with_the_same_app_id_is_refused(
    kafka_broker, registered_champion, make_config, champion_test_split, tmp_path, topic_config
):
    topic = "eo-two-queries"
    cfg = topic_config(topic, 2, "stream.max_offsets_per_trigger=300", *DRIVER_PROCESS)
    frame = replay_frame(champion_test_split, 1200)
    replay(frame.iloc[:600], cfg, rate=0)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    first = start_stream_process(cfg, log_a)
    wait_until(lambda: table_rows(cfg.table_path("batch_metrics")) >= 1, 240, first, "the first batch of query A")
    other = cfg.with_overrides([f"stream.checkpoint_dir={tmp_path / 'other-checkpoint'}"], env={})
    second = start_stream_process(other, log_b, "--available-now")
    assert second.wait(timeout=300) == 2, log_b.read_text()[-3000:]
    errors = [ln for ln in log_b.read_text().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "is held by another running query" in errors[0], errors
    replay(frame.iloc[600:], cfg, rate=0)
    wait_until(lambda: table_rows(cfg.table_path("predictions")) >= len(frame), 120, first, "all rows by query A")
    kill_9(first)
    drain(cfg, log_a)
    assert_exactly(cfg, frame)
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["query_id"])
    assert preds["query_id"].nunique() == 1, "query B wrote rows"


def test_restart_with_a_new_champion_version(
    spark, kafka_broker, registered_champion, make_config, champion_delta_root, champion_test_split, tmp_path
):
    import mlflow

    from fraud_ml.io.mlflow import setup_mlflow
    from fraud_ml.streaming.query import run_stream
    from fraud_ml.training.champion import train_champion
    from fraud_ml.training.splits import load_splits

    topic = "eo-model"
    cfg = make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        f"kafka.topic={topic}",
        "mlflow.model_name=eo-model",
    )
    champion_cfg = cfg.with_overrides([f"delta.root={champion_delta_root}", "train.xgboost.n_estimators=10"], env={})
    first_version = train_champion(load_splits(spark, champion_cfg), champion_cfg).champion.version
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    frame = replay_frame(champion_test_split, 1200)
    replay(frame.iloc[:600], cfg, rate=0)
    run_stream(spark, cfg, available_now=True)

    second = train_champion(
        load_splits(spark, champion_cfg.with_overrides(["train.xgboost.max_depth=3"], env={})), champion_cfg
    ).champion.version
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
