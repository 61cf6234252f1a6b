"""The alerts path's validation (Spark SQL, with and without its Java fast path) against the stream's
decoder: the same messages refused, with the same reasons, except where the two JSON readers cannot
agree (listed in the module); the fast path takes the producer's messages and no refused one."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_ml.alerts.validation_sql import register_fast_path, validate
from fraud_ml.config import load_config
from fraud_ml.ops.fuzzing import fuzzed_messages
from fraud_ml.schema import FEATURES
from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages

LIMITS = ValidationLimits.from_config(load_config(env={}))
NOW_MS = 1_790_000_000_000
KAFKA_SCHEMA = "row INT, key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"


FAST_PATH = [pytest.param(False, id="rules"), pytest.param(True, id="fast-path")]


def kafka_rows(spark, values: list[bytes | None]):
    when = datetime.fromtimestamp(NOW_MS / 1000, timezone.utc)
    return spark.createDataFrame([(i, None, v, "t", 0, i, when) for i, v in enumerate(values)], KAFKA_SCHEMA)


def both(spark, values: list[bytes | None], fast_path: bool = False) -> tuple[list, list]:
    """(decoder reasons, SQL reasons) of ``values``, read at Kafka time NOW_MS."""
    out = validate(kafka_rows(spark, values), LIMITS, fast_path).select("row", REASON).toPandas()
    sql = out.sort_values("row")[REASON].tolist()
    python = decode_messages(values, LIMITS, now_ms=NOW_MS)[REASON].tolist()
    return python, [None if r != r else r for r in sql]


def fast_path_fields(spark, values: list[bytes | None]) -> pd.DataFrame:
    """What ``FastMessage`` returns for each value, one row each (``taken``: it returned the fields)."""
    name = register_fast_path(spark, LIMITS)
    out = (
        kafka_rows(spark, values)
        .selectExpr("row", f"{name}(value, unix_millis(timestamp)) AS f")
        .selectExpr("row", "f IS NOT NULL AS taken", "f.*")
        .toPandas()
    )
    return out.sort_values("row").reset_index(drop=True)


def readers_disagree(value: bytes | None, python: str, sql: str) -> bool:
    """The documented differences (fraud_ml/alerts/validation_sql.py): both refuse, in other words."""
    long_integer = re.search(rb"\d{39,}", value or b"") is not None
    too_deep = python.startswith("nesting too deep") and sql == "invalid JSON"
    return too_deep or (long_integer and sql.startswith("wrong field type") and "expected integer" in sql)


def body(**changes) -> dict:
    out = {
        "transaction_id": "tx-1",
        "event_time": NOW_MS - 1000,
        **{c: 0.5 for c in FEATURES},
        "Amount": 12.5,
        "label": 0,
        "source": "real",
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()
CASES = [
    json.dumps(body()).encode(),
    json.dumps(body(Time=7, Amount=0)).encode(),  # integers where numbers are expected
    None,
    b"",
    b"x" * (LIMITS.max_message_bytes + 1),
    b'{"transaction_id": "tx-\xff"}',
    b"{not json",
    b"[1, 2]",
    b"42",
    json.dumps(body(deep=[[[[[[[[[[1]]]]]]]]]])).encode(),
    json.dumps(body(deep="[[[[[[[[[[[[[[[")).encode(),  # brackets inside a string are no nesting
    json.dumps(body(V1="1.5")).encode(),
    json.dumps(body(V2=True, Amount=[1])).encode(),
    json.dumps(body(label=1.0)).encode(),
    json.dumps(body(event_time="2026-01-01")).encode(),
    json.dumps(body(transaction_id=123)).encode(),
    json.dumps(body(source={"a": 1})).encode(),
    json.dumps(body(transaction_id=DROP)).encode(),
    json.dumps(body(transaction_id="  ")).encode(),
    json.dumps(body(V3=DROP, V9=None)).encode(),
    json.dumps(body(transaction_id="t" * (LIMITS.max_id_length + 1))).encode(),
    json.dumps(body(transaction_id="tx 1")).encode(),
    json.dumps(body(transaction_id="tx-1\n")).encode(),
    json.dumps(body(source="s" * (LIMITS.max_source_length + 1))).encode(),
    json.dumps(body(source="a b")).encode(),
    json.dumps(body(label=2)).encode(),
    json.dumps(body(V4=10**400)).encode(),
    json.dumps(body(Amount=-0.01)).encode(),
    json.dumps(body(Amount=LIMITS.max_amount * 2)).encode(),
    json.dumps(body(Time=-1)).encode(),
    json.dumps(body(Time=LIMITS.max_time + 1)).encode(),
    json.dumps(body(V5=-(LIMITS.max_abs_feature + 1), V28=LIMITS.max_abs_feature * 3)).encode(),
    json.dumps(body(event_time=0)).encode(),
    json.dumps(body(event_time=NOW_MS + LIMITS.max_event_time_ahead_ms + 1)).encode(),
    json.dumps(body(event_time=2**70)).encode(),
    json.dumps(body(label=DROP, event_time=DROP, source=DROP)).encode(),
    b"\xef\xbb\xbf" + json.dumps(body()).encode(),  # a UTF-8 byte order mark
    json.dumps(body()).encode().replace(b'"label": 0', b'"label": 3, "label": 1'),  # the last of repeated keys
]


@pytest.mark.integration
@pytest.mark.parametrize("fast_path", FAST_PATH)
def test_each_rule_gives_the_decoders_reason(spark, fast_path):
    python, sql = both(spark, CASES, fast_path)
    assert python[0] is None and python[1] is None and python[-2] is None and python[-1] is None
    assert sum(r is not None for r in python) == len(CASES) - 6
    assert sql == python


@pytest.mark.integration
@pytest.mark.parametrize("fast_path", FAST_PATH)
def test_fuzzed_messages_are_refused_exactly_when_the_decoder_refuses_them(spark, fast_path):
    pairs, _ = fuzzed_messages(4000, seed=21, event_time_ms=NOW_MS - 5000)
    values = [v for _, v in pairs]
    python, sql = both(spark, values, fast_path)
    assert [r is None for r in sql] == [r is None for r in python]
    differ = [(v, p, s) for v, p, s in zip(values, python, sql) if p != s]
    assert all(readers_disagree(v, p, s) for v, p, s in differ), differ[:5]
    assert sum(r is None for r in python) > 1500 and len({r.split(":")[0] for r in python if r}) >= 6


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=12
)
FIELDS = ["transaction_id", "event_time", "label", "source", *FEATURES, "other"]


@st.composite
def messages(draw) -> bytes:
    changes = {f: draw(json_values | st.just(DROP)) for f in draw(st.lists(st.sampled_from(FIELDS), max_size=3))}
    return json.dumps(body(**changes)).encode()


@pytest.mark.integration
@pytest.mark.parametrize("fast_path", FAST_PATH)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(messages(), min_size=1, max_size=40))
def test_any_message_gets_the_same_decision_and_reason(spark, fast_path, values):
    python, sql = both(spark, values, fast_path)
    assert sql == python


def assert_fast_path_agrees(spark, values: list[bytes | None]) -> pd.DataFrame:
    """Every message the fast path takes is valid for the decoder, with the decoder's fields exactly."""
    fast = fast_path_fields(spark, values)
    python = decode_messages(values, LIMITS, now_ms=NOW_MS)
    taken = fast["taken"].to_numpy()
    assert python.loc[taken, REASON].isna().all(), python.loc[taken, REASON].dropna().head().tolist()
    for column in ["transaction_id", "source", *FEATURES]:
        expected, got = python.loc[taken, column].to_numpy(), fast.loc[taken, column].to_numpy()
        assert (expected == got).all(), column
    for column in ("event_time", "label"):
        expected = python.loc[taken, column].astype("float64").to_numpy()
        got = fast.loc[taken, column].astype("float64").to_numpy()
        assert np.array_equal(expected, got, equal_nan=True), column
    return fast


@pytest.mark.integration
def test_the_fast_path_takes_every_message_the_producer_writes(spark):
    from fraud_ml.ops.bench import bench_frame
    from fraud_ml.streaming.producer import encode_messages

    _, values = encode_messages(bench_frame(2000, seed=4), NOW_MS - 1000)
    assert assert_fast_path_agrees(spark, values)["taken"].all()


@pytest.mark.integration
def test_the_fast_path_takes_no_refused_message(spark):
    pairs, _ = fuzzed_messages(4000, seed=22, event_time_ms=NOW_MS - 5000)
    fast = assert_fast_path_agrees(spark, [v for _, v in pairs] + CASES)
    assert 500 < fast["taken"].sum() < len(fast)


@pytest.mark.integration
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(messages(), min_size=1, max_size=40))
def test_any_message_the_fast_path_takes_is_valid_with_the_same_fields(spark, values):
    assert_fast_path_agrees(spark, values)


@pytest.mark.integration
def test_messages_beyond_what_either_reader_takes_are_refused_by_both(spark):
    nested = json.dumps(body()).encode()[:-1] + b', "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    # Brackets in a string make the depth check read it; 10,000 escapes: no regex may recurse on them.
    long_string = json.dumps(body(note="[" * 10 + '\\"' * 10000)).encode()
    python, sql = both(spark, [nested, long_string], fast_path=True)
    assert python[0].startswith("nesting too deep") and sql[0] in (python[0], "invalid JSON")
    assert python[1] is None and sql[1] is None
