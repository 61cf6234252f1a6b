import pytest
from confluent_kafka import Consumer, Producer

from fraud_ml.errors import KafkaUnavailableError
from fraud_ml.kafka_local import LocalKafkaBroker, admin_client, create_topic

pytestmark = pytest.mark.integration


def test_broker_serves_topics_with_requested_partitions(kafka_broker):
    assert kafka_broker.pid() is not None
    assert create_topic(kafka_broker.bootstrap_servers, "kl-parts", 3) is True
    assert create_topic(kafka_broker.bootstrap_servers, "kl-parts", 3) is False  # idempotent
    md = admin_client(kafka_broker.bootstrap_servers).list_topics(timeout=10).topics["kl-parts"]
    assert len(md.partitions) == 3


def test_round_trip_message(kafka_broker):
    create_topic(kafka_broker.bootstrap_servers, "kl-rt", 1)
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    p.produce("kl-rt", key=b"k", value=b"hello")
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": kafka_broker.bootstrap_servers, "group.id": "t",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["kl-rt"])
    msg = None
    for _ in range(40):
        msg = c.poll(0.5)
        if msg is not None and msg.error() is None:
            break
    c.close()
    assert msg is not None and msg.value() == b"hello" and msg.key() == b"k"


def test_second_broker_on_a_taken_port_fails_clearly(kafka_broker, tmp_path):
    clash = LocalKafkaBroker(kafka_broker.jars_dir, tmp_path / "k2", port=kafka_broker.port,
                             controller_port=kafka_broker.controller_port)
    with pytest.raises(KafkaUnavailableError, match="is taken by another process"):
        clash.start()
