"""End to end on the real parts: KRaft broker -> producer -> Structured Streaming -> pyfunc UDF -> Delta."""

import json

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from fraud_ml.io.kafka import create_topic
from fraud_ml.streaming.producer import replay, replay_frame
from fraud_ml.streaming.query import run_stream

pytestmark = pytest.mark.integration


def stream_config(make_config, kafka_broker, registered_champion, topic, *extra):
    return make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        f"kafka.topic={topic}",
        "kafka.partitions=2",
        "stream.max_offsets_per_trigger=700",
        *extra,
    )


@pytest.mark.parametrize("reader", ["librdkafka", "spark_kafka"])
def test_produce_stream_exactly_n_rows(
    spark, kafka_broker, registered_champion, make_config, champion_test_split, reader
):
    topic = f"e2e-exact-{reader}"
    cfg = stream_config(make_config, kafka_broker, registered_champion, topic, f"stream.reader={reader}")
    frame = replay_frame(champion_test_split, 1500)  # more than the split: cycles with suffixed ids
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    report = replay(frame, cfg, rate=0)
    assert report.sent == 1500

    run_stream(spark, cfg, available_now=True)

    preds = DeltaTable(cfg.table_path("predictions")).to_pandas()
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    assert len(preds) == 1500 and preds["transaction_id"].nunique() == 1500
    assert set(preds["transaction_id"]) == set(frame["transaction_id"])
    assert preds["probability"].between(0, 1).all()
    assert preds["model_version"].eq(registered_champion.champion.version).all()
    # maxOffsetsPerTrigger=700 -> at least three micro-batches whose counts sum to N.
    assert metrics["batch_id"].is_unique and len(metrics) >= 3
    assert metrics["rows"].sum() == 1500 and metrics["quarantined"].sum() == 0
    assert (metrics["latency_p99_ms"] >= metrics["latency_p50_ms"]).all() and (metrics["rows_per_s"] > 0).all()
    assert metrics["flagged"].sum() == preds["decision"].sum()
    # labels replayed next to predictions, never used as features; decisions follow the threshold
    merged = preds.merge(frame[["transaction_id", "Class"]], on="transaction_id")
    assert (merged["label"] == merged["Class"]).all()
    threshold = registered_champion.threshold
    assert ((merged["probability"] >= threshold).astype(int) == merged["decision"]).all()

    # A second availableNow run on the same checkpoint finds nothing new: no duplicates.
    run_stream(spark, cfg, available_now=True)
    assert DeltaTable(cfg.table_path("predictions")).to_pyarrow_dataset().count_rows() == 1500


@pytest.mark.parametrize("reader", ["librdkafka", "spark_kafka"])
def test_bad_messages_are_quarantined_next_to_good_ones(
    spark, kafka_broker, registered_champion, make_config, champion_test_split, reader
):
    topic = f"e2e-bad-{reader}"
    cfg = stream_config(make_config, kafka_broker, registered_champion, topic, f"stream.reader={reader}")
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    good = replay_frame(champion_test_split, 50)
    replay(good, cfg, rate=0)
    body = json.loads(json.dumps({"transaction_id": "bad-1", "V1": 1.0}))
    bad_values = [
        b"{not json",
        b"",
        bytes([0xFF, 0xFE, 0x00]),
        json.dumps(body).encode(),
        json.dumps(
            {
                **{c: 1.0 for c in good.columns if c not in ("transaction_id", "source", "Class")},
                "transaction_id": "bad-2",
                "Amount": -5,
            }
        ).encode(),
    ]
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for i, value in enumerate(bad_values):
        producer.produce(topic, key=f"bad-{i}".encode(), value=value)
    producer.flush(30)

    run_stream(spark, cfg, available_now=True)

    preds = DeltaTable(cfg.table_path("predictions")).to_pandas()
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas()
    assert len(preds) == 50 and len(quarantine) == len(bad_values)
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    assert metrics["quarantined"].sum() == len(bad_values) and metrics["rows"].sum() == 50
    assert len(preds) + len(quarantine) == len(good) + len(bad_values)
    assert sorted(bytes(v) for v in quarantine["raw_value"]) == sorted(bad_values)
    reasons = " | ".join(quarantine["reason"])
    for expected in ("invalid JSON", "empty value", "missing or null field", "negative Amount"):
        assert expected in reasons
    assert quarantine["kafka_offset"].notna().all()
