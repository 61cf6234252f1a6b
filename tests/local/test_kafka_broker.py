import pytest
from confluent_kafka import Consumer, Producer

from fraud_ml.errors import KafkaUnavailableError
from fraud_ml.io.kafka import admin_client, create_topic
from fraud_ml.local.kafka_broker import LocalKafkaBroker

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
    c = Consumer(
        {"bootstrap.servers": kafka_broker.bootstrap_servers, "group.id": "t", "auto.offset.reset": "earliest"}
    )
    c.subscribe(["kl-rt"])
    msg = None
    for _ in range(40):
        msg = c.poll(0.5)
        if msg is not None and msg.error() is None:
            break
    c.close()
    assert msg is not None and msg.value() == b"hello" and msg.key() == b"k"


def test_second_broker_on_a_taken_port_fails_clearly(kafka_broker, tmp_path):
    clash = LocalKafkaBroker(
        kafka_broker.jars_dir, tmp_path / "k2", port=kafka_broker.port, controller_port=kafka_broker.controller_port
    )
    with pytest.raises(KafkaUnavailableError, match="is taken by another process"):
        clash.start()


def test_cluster_ids_that_start_with_a_dash_format_the_storage(kafka_broker, tmp_path, monkeypatch):
    from fraud_ml.local import kafka_broker as broker_module

    monkeypatch.setattr(broker_module, "new_cluster_id", lambda: "-Gf7yk0TQkK3QLN2uQHOSQ")
    broker = LocalKafkaBroker(kafka_broker.jars_dir, tmp_path / "dash")
    broker.format_storage(broker.write_config())
    assert "cluster.id=-Gf7yk0TQkK3QLN2uQHOSQ" in (tmp_path / "dash" / "data" / "meta.properties").read_text()


def test_a_stale_pid_file_never_signals_an_unrelated_process(tmp_path):
    import subprocess
    import sys

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        broker = LocalKafkaBroker(tmp_path / "jars", tmp_path / "stale")
        broker.pid_file.parent.mkdir(parents=True)
        broker.pid_file.write_text(str(bystander.pid))  # the pid was reused by another program
        assert broker.pid() is None
        broker.stop()
        broker.kill()
        assert bystander.poll() is None, "stop() signalled a process that is not the broker"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_broker_still_exec_ing_java_is_not_taken_for_a_dead_one(kafka_broker, tmp_path, monkeypatch):
    # Right after the fork /proc shows the forking Python, not kafka.Kafka: start() once read that
    # as "Kafka exited during start-up". The broker it started is judged by its own process handle.
    from fraud_ml.local import kafka_broker as broker_module
    from fraud_ml.local.kafka_broker import free_port

    monkeypatch.setattr(broker_module, "is_broker_process", lambda pid, properties: False)
    broker = LocalKafkaBroker(
        kafka_broker.jars_dir, tmp_path / "slow-exec", port=free_port(), controller_port=free_port()
    )
    try:
        broker.start()
        assert admin_client(broker.bootstrap_servers).list_topics(timeout=10).brokers
    finally:
        broker._process.kill()
        broker._process.wait()
