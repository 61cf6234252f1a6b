"""The alerts query in Spark's real-time mode on the real broker: decisions and dead letters."""

from __future__ import annotations

import json
import time

import pytest

from fraud_ml.schema import FEATURES


def read_topic(servers: str, topic: str, expected: int, timeout_s: float = 90.0) -> list:
    """Every message of ``topic`` once ``expected`` have arrived (or the timeout passed)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"read-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    out, deadline = [], time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out += [m for m in consumer.consume(500, 0.5) if m.error() is None]
        out += [m for m in consumer.consume(500, 2.0) if m.error() is None]  # nothing more should come
    finally:
        consumer.close()
    return out


@pytest.mark.integration
def test_real_time_alerts_carry_the_pyfunc_decisions_and_refused_messages_go_to_dead_letter(
    spark, kafka_broker, registered_champion, topic_config, champion_test_split, tmp_path
):
    from confluent_kafka import Producer

    from fraud_ml.alerts.booster_sql import compile_model_dir
    from fraud_ml.alerts.query import start_alerts
    from fraud_ml.io.kafka import create_topic
    from fraud_ml.io.mlflow import download_verified, load_verified
    from fraud_ml.streaming.messages import ValidationLimits, decode_messages
    from fraud_ml.streaming.producer import replay, replay_frame

    servers = kafka_broker.bootstrap_servers
    cfg = topic_config(
        "alerts-in",
        2,  # real-time mode holds one task per partition: the test session has two slots
        "alerts.topic=alerts-out",
        "alerts.dead_letter_topic=alerts-dead",
        "alerts.emit=all",
        f"alerts.checkpoint_dir={tmp_path / 'alerts-checkpoint'}",
        "alerts.starting_offsets=earliest",
        "alerts.batch_duration=20 seconds",
        "alerts.warmup_rows=2000",  # none of them may reach the topics (the counts below)
    )
    for topic in ("alerts-out", "alerts-dead"):
        create_topic(servers, topic, 1)
    frame = replay_frame(champion_test_split.sort_values("Class", ascending=False), 150)
    assert replay(frame, cfg, rate=0).sent == 150
    bad = [b"{not json", b"", json.dumps({"transaction_id": "x", "V1": "1.5"}).encode(), b'{"transaction_id": "y"}']
    producer = Producer({"bootstrap.servers": servers})
    for i, value in enumerate(bad):
        producer.produce("alerts-in", value=value, key=f"bad-{i}".encode())
    producer.flush(10)

    uri = registered_champion.champion.model_uri
    champion = compile_model_dir(download_verified(uri), registered_champion.champion.version)
    query = start_alerts(spark, cfg, champion)
    try:
        alerts = read_topic(servers, "alerts-out", len(frame))
        dead = read_topic(servers, "alerts-dead", len(bad))
    finally:
        query.stop()

    assert query.exception() is None
    by_id = {m.key().decode(): json.loads(m.value()) for m in alerts}
    assert set(by_id) == set(frame["transaction_id"]) and len(alerts) == len(frame)
    expected = load_verified(uri).predict(frame[FEATURES].astype(float))
    for tx_id, (decision, probability) in zip(
        frame["transaction_id"], zip(expected["decision"], expected["probability"])
    ):
        alert = by_id[tx_id]
        assert alert["model_version"] == registered_champion.champion.version
        assert abs(alert["probability"] - probability) <= 1e-5 and alert["decision"] == decision
        assert alert["kafka_timestamp_ms"] > 0
    assert sum(a["decision"] for a in by_id.values()) > 0

    reasons = decode_messages(bad, ValidationLimits.from_config(cfg))["reason"].tolist()
    got = {m.key().decode(): (m.value(), dict((k, v.decode()) for k, v in m.headers())) for m in dead}
    assert len(dead) == len(bad)
    for i, (value, reason) in enumerate(zip(bad, reasons)):
        body, headers = got[f"bad-{i}"]
        assert body == value and headers["reason"] == reason
        assert headers["source.topic"] == "alerts-in" and int(headers["source.offset"]) >= 0
