"""``read_recent_alerts`` on the real broker: the newest n alerts, however the partitions hold them."""

import json
import time

import pytest


@pytest.mark.integration
def test_the_newest_alerts_come_back_even_when_one_partition_holds_them_all(kafka_broker, make_config):
    from confluent_kafka import Producer

    from fraud_ml.alerts.query import ALERTS_TOPIC_CONFIG
    from fraud_ml.io.kafka import ensure_topic
    from fraud_ml.monitoring.alerts_feed import read_recent_alerts

    topic = "feed-uneven"
    cfg = make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"alerts.topic={topic}", "kafka.partitions=4"
    )
    ensure_topic(cfg, topic, config=ALERTS_TOPIC_CONFIG)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    now_ms = int(time.time() * 1000)
    sent = []
    for i in range(30):  # 3 in partitions 1-3, then 21 in partition 0: the newest 12 all sit in partition 0
        partition = 1 + i % 3 if i < 9 else 0
        alert = {"transaction_id": f"t-{i}", "probability": 0.9, "decision": 1, "model_version": "1"}
        producer.produce(topic, value=json.dumps({**alert, "kafka_timestamp_ms": now_ms}), partition=partition)
        producer.flush(10)  # one by one: the broker's append times follow the sending order
        sent.append(f"t-{i}")
        time.sleep(0.002)
    got = read_recent_alerts(cfg, 12)
    assert got["transaction_id"].tolist() == sent[-12:]
    assert len(read_recent_alerts(cfg, 100)) == 30
