"""fraud_ml.streaming.kafka_source: batch planning (pure) and reading exact offset ranges from the real broker."""

import json

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from fraud_ml.errors import StreamStateError
from fraud_ml.io.kafka import create_topic
from fraud_ml.streaming.kafka_source import (
    SourceSettings,
    _check_start,
    balanced_groups,
    end_offsets,
    fetch_records,
    initial_offsets,
    read_ranges,
)


def settings(servers: str = "127.0.0.1:1", topic: str = "t", **changes) -> SourceSettings:
    base = dict(
        bootstrap_servers=servers,
        topic=topic,
        starting_offsets="earliest",
        max_offsets_per_trigger=0,
        fail_on_data_loss=True,
        tasks=2,
        fetch_timeout_s=20,
        records_per_batch=50,
    )
    return SourceSettings(**{**base, **changes})


# ----------------------------------------------------------------------------- planning (pure)
def test_starting_offsets_earliest_latest_and_json():
    marks = {0: (5, 100), 1: (0, 40)}
    assert initial_offsets("earliest", marks, "t") == {0: 5, 1: 0}
    assert initial_offsets("latest", marks, "t") == {0: 100, 1: 40}
    assert initial_offsets(json.dumps({"t": {"0": 17, "1": -1}}), marks, "t") == {0: 17, 1: 40}
    assert initial_offsets(json.dumps({"t": {"0": -2}}), marks, "t") == {0: 5, 1: 0}  # absent partition: earliest


def test_a_batch_limit_is_split_in_proportion_and_always_moves_forward():
    marks = {0: (0, 1000), 1: (0, 100), 2: (0, 0)}
    assert end_offsets({0: 0, 1: 0, 2: 0}, marks, None) == {0: 1000, 1: 100, 2: 0}
    limited = end_offsets({0: 0, 1: 0, 2: 0}, marks, 110)
    assert sum(limited.values()) == 110 and limited == {0: 100, 1: 10, 2: 0}
    assert sum(end_offsets({0: 999, 1: 99, 2: 0}, marks, 1).values()) == 999 + 99 + 1
    # A partition added to the topic is read from its earliest offset.
    assert end_offsets({0: 1000}, {0: (0, 1000), 1: (3, 8)}, None) == {0: 1000, 1: 8}


def test_ranges_are_grouped_into_tasks_of_similar_size():
    groups = balanced_groups([(0, 0, 100), (1, 0, 10), (2, 0, 90), (3, 0, 5)], tasks=2)
    sizes = sorted(sum(e - s for _, s, e in g) for g in groups)
    assert sizes == [100, 105] and sorted(r for g in groups for r in g) == [
        (0, 0, 100),
        (1, 0, 10),
        (2, 0, 90),
        (3, 0, 5),
    ]
    assert balanced_groups([(0, 0, 3)], tasks=4) == [[(0, 0, 3)]]


def test_lost_offsets_fail_the_query_unless_told_to_skip_them():
    with pytest.raises(StreamStateError, match="offsets 3..9 of t/0 were deleted"):
        _check_start(settings(), 0, 3, 10, 50)
    with pytest.raises(StreamStateError, match="the topic was recreated"):
        _check_start(settings(), 0, 80, 0, 50)
    assert _check_start(settings(fail_on_data_loss=False), 0, 3, 10, 50) == 10
    assert _check_start(settings(), 0, 20, 10, 50) == 20


def test_client_secrets_travel_as_separate_options_spark_redacts():
    options = settings().options({"sasl.password": "s3cret", "security.protocol": "SASL_SSL"})
    assert "s3cret" not in options["settings"] and options["kafka.sasl.password"] == "s3cret"
    back, client = SourceSettings.from_options(options)
    assert back == settings() and client == {"sasl.password": "s3cret", "security.protocol": "SASL_SSL"}


# ----------------------------------------------------------------------------- reading (real broker)


def _send(servers: str, topic: str, n: int, partition: int = 0, prefix: str = "m") -> None:
    producer = Producer({"bootstrap.servers": servers})
    for i in range(n):
        producer.produce(topic, key=f"k{i}".encode(), value=f"{prefix}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.mark.integration
def test_exact_ranges_are_read_in_order_in_chunks(kafka_broker):
    create_topic(kafka_broker.bootstrap_servers, "src-ranges", 2)
    _send(kafka_broker.bootstrap_servers, "src-ranges", 120, partition=0)
    _send(kafka_broker.bootstrap_servers, "src-ranges", 30, partition=1, prefix="p1")
    chunks = list(read_ranges(settings(kafka_broker.bootstrap_servers, "src-ranges"), {}, [(0, 10, 115), (1, 0, 30)]))
    assert max(len(c.values) for c in chunks) <= 50
    p0 = [v for c in chunks if c.partitions[0] == 0 for v in c.values]
    assert p0 == [f"m-{i}".encode() for i in range(10, 115)]
    assert [int(o) for c in chunks if c.partitions[0] == 1 for o in c.offsets] == list(range(30))
    assert all((c.timestamps_us > 0).all() for c in chunks) and chunks[0].keys[0] == b"k10"
    again = list(read_ranges(settings(kafka_broker.bootstrap_servers, "src-ranges"), {}, [(0, 0, 5)]))
    assert [v for c in again for v in c.values] == [f"m-{i}".encode() for i in range(5)]  # no paused leftovers


@pytest.mark.integration
def test_a_range_ending_on_transaction_markers_completes_with_committed_records_only(kafka_broker):
    servers, topic = kafka_broker.bootstrap_servers, "src-transactions"
    create_topic(servers, topic, 1)
    producer = Producer({"bootstrap.servers": servers, "transactional.id": "src-test"})
    producer.init_transactions(30)
    for commit in (False, True):
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, value=f"{'kept' if commit else 'aborted'}-{i}".encode(), partition=0)
        producer.flush(30)  # on the broker before the abort (an abort would drop unsent records instead)
        (producer.commit_transaction if commit else producer.abort_transaction)(30)
    import time

    from fraud_ml.streaming.kafka_source import watermarks

    deadline = time.monotonic() + 30  # the markers are written just after the commit returns
    while (high := watermarks(settings(servers, topic), {})[0][1]) < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert high == 12  # 10 records and two transaction markers; read_committed plans up to the stable offset
    values = [v for c in read_ranges(settings(servers, topic), {}, [(0, 0, high)]) for v in c.values]
    assert values == [f"kept-{i}".encode() for i in range(5)]


@pytest.mark.integration
def test_records_deleted_before_they_were_read_are_data_loss(kafka_broker):
    servers, topic = kafka_broker.bootstrap_servers, "src-deleted"
    create_topic(servers, topic, 1)
    _send(servers, topic, 20)
    admin = AdminClient({"bootstrap.servers": servers})
    admin.delete_records([TopicPartition(topic, 0, 12)])[TopicPartition(topic, 0, 12)].result(30)
    from fraud_ml.streaming.kafka_source import watermarks

    marks = watermarks(settings(servers, topic), {})
    assert marks[0] == (12, 20)
    with pytest.raises(StreamStateError, match="offsets 3..11 .* were deleted"):
        _check_start(settings(servers, topic), 0, 3, *marks[0])


@pytest.mark.integration
def test_fetch_records_returns_the_named_records(kafka_broker):
    servers, topic = kafka_broker.bootstrap_servers, "src-fetch"
    create_topic(servers, topic, 2)
    _send(servers, topic, 40, partition=1)
    table = fetch_records(settings(servers, topic), {}, [(1, 3), (1, 31), (1, 7)])
    assert sorted(zip(table["offset"].to_pylist(), table["value"].to_pylist())) == [
        (3, b"m-3"),
        (7, b"m-7"),
        (31, b"m-31"),
    ]
    assert set(table["topic"].to_pylist()) == {topic} and table["key"].to_pylist()[0].startswith(b"k")
