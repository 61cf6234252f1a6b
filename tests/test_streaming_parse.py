"""parse_transactions on a static DataFrame shaped like the Kafka source: every bad input gets a reason."""
import json
from datetime import datetime, timezone

import pytest
from pyspark.sql import types as T

from fraud_ml.schema import FEATURES
from fraud_ml.streaming import REASON, ValidationLimits, parse_transactions

KAFKA_SCHEMA = T.StructType([
    T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType()),
    T.StructField("topic", T.StringType()), T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()), T.StructField("timestamp", T.TimestampType()),
])


def good(tx_id="t1", **changes):
    body = {"transaction_id": tx_id, "event_time": 1_700_000_000_000, **{c: 0.5 for c in FEATURES},
            "Amount": 12.5, "label": 0, "source": "real"}
    body.update(changes)
    return body


def encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


CASES = [
    ("valid", encode(good()), None),
    ("extra unknown field", encode(good(merchant="acme", nested={"a": 1})), None),
    ("label absent", encode({k: v for k, v in good().items() if k != "label"}), None),
    ("invalid JSON", b'{"transaction_id": "x", "V1": ', "invalid JSON"),
    ("not an object", b"[1, 2, 3]", "invalid JSON"),
    ("empty value", b"", "empty value"),
    ("binary garbage", bytes(range(256)), "invalid JSON"),
    ("missing id", encode({k: v for k, v in good().items() if k != "transaction_id"}), "missing field: transaction_id"),
    ("missing feature", encode({k: v for k, v in good().items() if k != "V3"}), "missing or null field: V3"),
    ("null feature", encode(good(V7=None)), "missing or null field: V7"),
    ("NaN feature", encode(good(V9=float("nan"))), "non-finite value in: V9"),
    ("Infinity feature", encode(good(V2=float("inf"))), "non-finite value in: V2"),
    ("string for number", encode(good(V5="abc")), "invalid JSON or wrong field type"),
    ("negative amount", encode(good(Amount=-3.0)), "negative Amount"),
    ("absurd magnitude", encode(good(V11=1e12)), "out of range: |value| > 1000 in V11"),
    ("oversized", encode(good(padding="x" * 70_000)), "oversized message"),
]


@pytest.fixture(scope="module")
def parsed(spark):
    now = datetime.now(timezone.utc)
    rows = [(name.encode(), value, "t", 0, i, now) for i, (name, value, _) in enumerate(CASES)]
    rows.append((b"null", None, "t", 0, len(CASES), now))
    df = spark.createDataFrame(rows, KAFKA_SCHEMA)
    return {r["kafka_offset"]: r for r in parse_transactions(df, ValidationLimits()).collect()}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_each_message_is_valid_or_has_a_reason(parsed, index):
    _, _, expected = CASES[index]
    reason = parsed[index][REASON]
    if expected is None:
        assert reason is None
        assert parsed[index]["transaction_id"] == "t1" and parsed[index]["Amount"] == 12.5
    else:
        assert reason is not None and expected in reason


def test_null_value_is_empty(parsed):
    assert parsed[len(CASES)][REASON] == "empty value"


def test_raw_bytes_and_coordinates_are_kept(parsed):
    row = parsed[6]  # binary garbage
    assert bytes(row["raw_value"]) == bytes(range(256))
    assert row["kafka_topic"] == "t" and row["kafka_partition"] == 0 and row["kafka_offset"] == 6


def test_duplicates_are_recorded_not_rescored(spark):
    from fraud_ml.streaming import mark_duplicates

    now = datetime.now(timezone.utc)
    rows = [
        (b"a", encode(good("a")), "t", 1, 5, now),
        (b"a", encode(good("a")), "t", 0, 9, now),   # same id, lower partition: this one is first
        (b"b", encode(good("b")), "t", 0, 10, now),
        (b"c", encode(good("c")), "t", 0, 11, now),  # scored in an earlier batch
        (b"x", b"{bad", "t", 0, 12, now),
    ]
    parsed = parse_transactions(spark.createDataFrame(rows, KAFKA_SCHEMA))
    earlier = spark.createDataFrame([("c", 3)], "transaction_id string, batch_id long")
    out = {(r["kafka_partition"], r["kafka_offset"]): r[REASON] for r in mark_duplicates(parsed, earlier).collect()}
    assert out[(0, 9)] is None and out[(0, 10)] is None
    assert out[(1, 5)] == "duplicate transaction_id: repeated within the batch"
    assert out[(0, 11)] == "duplicate transaction_id: already scored in batch 3"
    assert out[(0, 12)].startswith("invalid JSON")
