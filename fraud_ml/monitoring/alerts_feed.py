"""The newest records of the alerts topic and their latency, for the dashboard and the demo summary.

An alert carries its input's Kafka timestamp (``kafka_timestamp_ms``); the alerts topic is
created with ``LogAppendTime`` (jobs/alerts.py), so the record's own timestamp is when the
broker appended the alert, and the difference is the alerts path's end-to-end latency.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from fraud_ml.config import Config

log = logging.getLogger(__name__)

ALERT_COLUMNS = ["transaction_id", "probability", "decision", "model_version", "kafka_timestamp_ms", "alert_ms"]


def read_recent_alerts(cfg: Config, n: int, timeout_s: float = 5.0) -> pd.DataFrame | None:
    """The ``n`` newest records of ``alerts.topic`` (by broker timestamp, from all its partitions, each
    read up to its last ``n``); None if the topic does not exist."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    topic = cfg.get("alerts.topic")
    consumer = Consumer(
        {
            "bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
            "group.id": "fraud-ml-dashboard-alerts",
            "enable.auto.commit": False,
            **cfg.kafka_client_options(),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or (
            metadata.error is not None and metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            return None
        partitions = sorted(metadata.partitions)
        wanted, assignment = 0, []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            start = max(low, high - max(1, n))  # the newest n may all sit in one partition
            wanted += high - start
            if high > start:
                assignment.append(TopicPartition(topic, p, start))
        rows: list[dict] = []
        if assignment:
            consumer.assign(assignment)
            while len(rows) < wanted:
                batch = consumer.consume(min(5000, wanted - len(rows)), timeout_s)
                if not batch:
                    break
                rows += [_row(m) for m in batch if m.error() is None]
        alerts = pd.DataFrame([r for r in rows if r is not None], columns=ALERT_COLUMNS)
        return alerts.sort_values("alert_ms", kind="stable").tail(n).reset_index(drop=True)
    finally:
        consumer.close()


def _row(message) -> dict | None:
    """One alert as a row; a record that is not an alert (another producer on the topic) is skipped, logged."""
    try:
        alert = json.loads(message.value())
        return {**{c: alert.get(c) for c in ALERT_COLUMNS[:-1]}, "alert_ms": message.timestamp()[1]}
    except (TypeError, ValueError, AttributeError):
        log.warning("alerts topic: offset %d of partition %d is not an alert", message.offset(), message.partition())
        return None


def alert_latency(alerts: pd.DataFrame) -> dict[str, float | int | None]:
    """Count, flagged count and latency p50/p99/max (ms) of alert rows."""
    latency = (alerts["alert_ms"] - alerts["kafka_timestamp_ms"]).to_numpy(dtype=float)
    latency = latency[np.isfinite(latency)]
    pct = lambda q: float(np.percentile(latency, q)) if latency.size else None  # noqa: E731
    return {
        "alerts": len(alerts),
        "flagged": int((alerts["decision"] == 1).sum()),
        "latency_p50_ms": pct(50),
        "latency_p99_ms": pct(99),
        "latency_max_ms": float(latency.max()) if latency.size else None,
    }
