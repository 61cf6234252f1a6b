"""Thousands of fuzzed messages through the real broker and a running stream: each lands once, the query lives."""

import time

import pytest
from deltalake import DeltaTable

from fraud_ml.io.delta import accounted_rows
from fraud_ml.ops.fuzzing import fuzzed_messages
from fraud_ml.streaming.producer import send_raw
from fraud_ml.streaming.query import start_stream

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_fuzzed_messages_mixed_with_good_ones_never_stop_the_stream(
    spark, kafka_broker, registered_champion, make_config, topic_config
):
    topic = "fuzz-e2e"
    cfg = topic_config(topic, 2, "stream.max_offsets_per_trigger=1000", "stream.trigger_interval=200 milliseconds")
    messages, good_ids = fuzzed_messages(4000, seed=20261201, event_time_ms=int(time.time() * 1000))
    stream = start_stream(spark, cfg, available_now=False)
    try:
        send_raw(messages, cfg)
        deadline = time.monotonic() + 600
        while accounted_rows(cfg.table_path("batch_metrics")) < len(messages) and time.monotonic() < deadline:
            assert stream.exception() is None, stream.exception()
            time.sleep(0.5)
        assert stream.is_active and stream.exception() is None, "the stream did not survive the fuzzed messages"
    finally:
        stream.stop()
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(
        columns=["transaction_id", "kafka_partition", "kafka_offset", "probability"]
    )
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas(
        columns=["kafka_partition", "kafka_offset", "reason"]
    )
    coordinates = set(zip(preds["kafka_partition"], preds["kafka_offset"])) | set(
        zip(quarantine["kafka_partition"], quarantine["kafka_offset"])
    )
    assert len(preds) + len(quarantine) == len(messages) == len(coordinates)
    assert stream.writer.accounted_rows == accounted_rows(cfg.table_path("batch_metrics")) == len(messages)
    assert preds["transaction_id"].is_unique and good_ids <= set(preds["transaction_id"])
    assert preds["probability"].between(0, 1).all()
    reasons = quarantine["reason"].str.split(":").str[0].value_counts()
    for kind in ("empty value", "invalid JSON", "wrong field type", "out of range", "duplicate transaction_id"):
        assert reasons.get(kind, 0) > 0, reasons
