"""A micro-batch replayed after a crash between its commits ends as its first attempt would have.

In-process: ``MicroBatchWriter`` on static Kafka-shaped batches, the crash raised at each
fault point (``fraud_ml.streaming.writer.fault_point``), then a fresh writer (as after a restart:
recent ids reloaded from Delta, same query id) replays the batch. The same crash points
with a real ``kill -9`` of the driver process are in tests/streaming/test_exactly_once.py.
"""

import json
from datetime import datetime, timezone

import pytest
from deltalake import DeltaTable

from fraud_ml.schema import FEATURES
from fraud_ml.streaming import writer as writer_module
from fraud_ml.streaming.batch_scoring import Scoring
from fraud_ml.streaming.routing import ALREADY_SCORED, WITHIN_BATCH
from fraud_ml.streaming.scoring import KAFKA_SPARK_DDL
from fraud_ml.streaming.writer import FAULT_POINTS, MicroBatchWriter


class Crash(Exception):
    """Stands in for the driver dying at a fault point."""


def body(tx_id: str, i: int) -> bytes:
    return json.dumps({"transaction_id": tx_id, **{c: 0.1 * (i % 7) for c in FEATURES}, "label": i % 2}).encode()


def batch(spark, values: list[tuple[str, bytes]], first_offset: int):
    now = datetime.now(timezone.utc)
    rows = [(key.encode(), value, "t", i % 2, first_offset + i, now) for i, (key, value) in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SPARK_DDL)


def new_writer(spark, cfg, version: str, query_id: str = "query-1", run: str = "run-1") -> MicroBatchWriter:
    writer = MicroBatchWriter(
        cfg, Scoring(spark, cfg.with_overrides(["stream.reader=spark_kafka"], env={}), ["Amount"]), version
    )
    writer.bind(query_id, run)
    return writer


def table(cfg, name):
    return DeltaTable(cfg.table_path(name)).to_pandas()


@pytest.fixture
def batches(spark):
    first = [(f"e{i}", body(f"early-{i}", i)) for i in range(5)]
    crashed = (
        [(f"r{i}", body(f"rp-{i}", i)) for i in range(30)]
        + [("bad", b"{oops"), ("empty", b""), ("nan", body("n", 1).replace(b'"V1": 0.1', b'"V1": NaN'))]
        + [("dup", body("rp-3", 3)), ("dup", body("rp-4", 4))]  # repeated within the batch
        + [("again", body("early-1", 1))]
    )  # scored by batch 0
    return batch(spark, first, 0), batch(spark, crashed, 100), len(first), len(crashed)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_replay_after_a_crash_at_each_fault_point(spark, registered_champion, make_config, monkeypatch, batches, point):
    cfg = make_config()
    version = registered_champion.champion.version
    first, crashed, n_first, n_crashed = batches
    writer = new_writer(spark, cfg, version)
    writer(first, 0)

    def crash(at, batch_id):
        if at == point and batch_id == 1:
            raise Crash(at)

    monkeypatch.setattr(writer_module, "fault_point", crash)
    with pytest.raises(Crash):
        writer(crashed, 1)
    writer.close()  # the dead driver's lease lapses
    monkeypatch.setattr(writer_module, "fault_point", lambda at, batch_id: None)
    replay = new_writer(spark, cfg, version, run="run-2")
    replay(crashed, 1)
    replay.close()

    preds, quarantine, metrics = table(cfg, "predictions"), table(cfg, "quarantine"), table(cfg, "batch_metrics")
    assert len(preds) + len(quarantine) == n_first + n_crashed
    assert preds["transaction_id"].is_unique
    assert sorted(metrics["batch_id"]) == [0, 1]
    by_batch = metrics.set_index("batch_id")
    assert by_batch.loc[1, "rows"] == 30 and by_batch.loc[1, "quarantined"] == 6
    assert sorted(quarantine["reason"]) == sorted(
        ["invalid JSON", "empty value", "non-finite value in: V1", WITHIN_BATCH, WITHIN_BATCH, ALREADY_SCORED + "0"]
    )
    dupes = quarantine[quarantine["reason"].str.startswith("duplicate")]
    assert dupes["raw_value"].notna().all() and dupes["key"].isin(["dup", "again"]).all()
    # Everything of batch 1 carries the start time its first attempt pinned.
    started = by_batch.loc[1, "started_at"]
    assert (preds.loc[preds["batch_id"] == 1, "scored_at"] == started).all()
    assert (quarantine.loc[quarantine["batch_id"] == 1, "quarantined_at"] == started).all()


@pytest.mark.timeout(900)
def test_a_replay_scores_with_the_model_version_its_first_attempt_pinned(
    spark, registered_champion, make_config, champion_delta_root, monkeypatch, batches
):
    from fraud_ml.training.champion import train_champion
    from fraud_ml.training.splits import load_splits

    cfg = make_config("mlflow.model_name=replay-model")
    champion_cfg = cfg.with_overrides([f"delta.root={champion_delta_root}", "train.xgboost.n_estimators=5"], env={})
    v1 = train_champion(load_splits(spark, champion_cfg), champion_cfg).champion.version
    first, crashed, _, _ = batches
    monkeypatch.setattr(
        writer_module,
        "fault_point",
        lambda at, batch_id: (_ for _ in ()).throw(Crash(at)) if at == "after_predictions" else None,
    )
    writer = new_writer(spark, cfg, v1)
    with pytest.raises(Crash):
        writer(first, 0)
    writer.close()
    v2 = train_champion(load_splits(spark, champion_cfg), champion_cfg).champion.version
    assert v2 != v1
    monkeypatch.setattr(writer_module, "fault_point", lambda at, batch_id: None)
    restarted = new_writer(spark, cfg, v2, run="run-2")  # the restart resolves the new champion...
    restarted(first, 0)  # ...but the replayed batch keeps its pinned v1
    restarted(crashed, 1)
    restarted.close()
    metrics = table(cfg, "batch_metrics").set_index("batch_id")
    assert metrics.loc[0, "model_version"] == v1 and metrics.loc[1, "model_version"] == v2
    preds = table(cfg, "predictions")
    assert set(preds.loc[preds["batch_id"] == 0, "model_version"]) == {v1}
    assert set(preds.loc[preds["batch_id"] == 1, "model_version"]) == {v2}


def test_a_second_writer_with_the_same_app_id_is_refused(spark, registered_champion, make_config):
    from fraud_ml.errors import StreamConflictError

    cfg = make_config()
    holder = new_writer(spark, cfg, registered_champion.champion.version, query_id="query-A", run="run-A")
    try:
        with pytest.raises(StreamConflictError, match="held by another running query \\(query-A\\)"):
            new_writer(spark, cfg, registered_champion.champion.version, query_id="query-B", run="run-B")
    finally:
        holder.close()
