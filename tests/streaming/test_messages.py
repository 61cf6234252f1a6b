"""fraud_ml.streaming.messages: the decoder the scoring function runs on the Python workers (no Spark needed)."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from fraud_ml.config import load_config
from fraud_ml.schema import FEATURES
from fraud_ml.streaming.messages import (
    REASON,
    ValidationLimits,
    decode_messages,
    decode_slow,
)

LIMITS = ValidationLimits.from_config(load_config(env={}))
NOW_MS = 1_790_000_000_000  # 2026-09-21, the batch start of every case


def good(tx_id="t1", **changes):
    body = {
        "transaction_id": tx_id,
        "event_time": NOW_MS - 5_000,
        **{c: 0.5 for c in FEATURES},
        "Amount": 12.5,
        "label": 0,
        "source": "real",
    }
    body.update(changes)
    return body


def encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def without(*fields):
    return {k: v for k, v in good().items() if k not in fields}


CASES = [
    ("valid", encode(good()), None),
    ("extra unknown field", encode(good(merchant="acme", nested={"a": [1, 2]})), None),
    ("label absent", encode(without("label")), None),
    ("integers for features", encode(good(Amount=12, V1=0)), None),
    ("uuid id", encode(good("0f8fad5b-d9cb-469f-a165-70867728950e")), None),
    ("invalid JSON", b'{"transaction_id": "x", "V1": ', "invalid JSON"),
    ("not an object", b"[1, 2, 3]", "invalid JSON: not an object"),
    ("a bare number", b"42", "invalid JSON: not an object"),
    ("empty value", b"", "empty value"),
    ("binary garbage", bytes(range(256)), "invalid JSON"),
    ("trailing garbage", encode(good()) + b"}", "invalid JSON"),
    ("two objects", encode(good()) + encode(good()), "invalid JSON"),
    ("missing id", encode(without("transaction_id")), "missing field: transaction_id"),
    ("blank id", encode(good("   ")), "missing field: transaction_id"),
    ("missing feature", encode(without("V3")), "missing or null field: V3"),
    ("null feature", encode(good(V7=None)), "missing or null field: V7"),
    ("NaN feature", encode(good(V9=float("nan"))), "non-finite value in: V9"),
    ("Infinity feature", encode(good(V2=float("inf"))), "non-finite value in: V2"),
    ("number beyond float64", encode(good()).replace(b'"V4": 0.5', b'"V4": 1e400'), "non-finite value in: V4"),
    (
        "integer with 400 digits",
        encode(good()).replace(b'"V4": 0.5', b'"V4": ' + b"9" * 400),
        "non-finite value in: V4",
    ),
    ("string for number", encode(good(V5="abc")), "wrong field type: V5 (string, expected number)"),
    ("bool for number", encode(good(V2=True)), "wrong field type: V2 (boolean, expected number)"),
    ("float label", encode(good(label=1.0)), "wrong field type: label (number, expected integer)"),
    ("string event_time", encode(good(event_time="soon")), "wrong field type: event_time (string, expected integer)"),
    ("number id", encode(good(transaction_id=42)), "wrong field type: transaction_id (number, expected string)"),
    ("label 2", encode(good(label=2)), "out of range: label must be 0 or 1"),
    ("label beyond 64 bits", encode(good(label=2**70)), "out of range: label must be 0 or 1"),
    ("negative amount", encode(good(Amount=-3.0)), "out of range: negative Amount"),
    ("huge amount", encode(good(Amount=2e6)), "out of range: Amount > 1e+06"),
    ("negative Time", encode(good(Time=-1.0)), "out of range: negative Time"),
    ("Time 1e39", encode(good(Time=1e39)), "out of range: Time > 3.1536e+07"),
    ("absurd magnitude", encode(good(V11=1e12)), "out of range: |value| > 1000 in V11"),
    ("event_time before 2000", encode(good(event_time=86_400_000)), "out of range: event_time before 2000-01-01"),
    (
        "event_time in a week",
        encode(good(event_time=NOW_MS + 7 * 86_400_000)),
        "out of range: event_time more than 1440 minutes ahead",
    ),
    ("event_time beyond 64 bits", encode(good(event_time=10**30)), "out of range: event_time more than"),
    ("negative event_time beyond 64 bits", encode(good(event_time=-(10**30))), "out of range: event_time before"),
    ("id too long", encode(good("x" * 129)), "invalid transaction_id: longer than 128 characters"),
    ("id with a space", encode(good("a b")), "invalid transaction_id: characters outside"),
    ("id with NUL", encode(good("a\u0000b")), "invalid transaction_id: characters outside"),
    (
        "id lone surrogate",
        b'{"transaction_id": "\\ud800", ' + encode(without("transaction_id"))[1:],
        "invalid transaction_id: characters outside",
    ),
    ("source too long", encode(good(source="s" * 65)), "invalid source: longer than 64 characters"),
    ("source with a newline", encode(good(source="a\nb")), "invalid source: characters outside"),
    ("deep nesting", encode(good(extra=json.loads("[" * 20 + "]" * 20))), "nesting too deep: more than 8 levels"),
    ("nesting beyond the parser", b'{"transaction_id": "t", "x": ' + b"[" * 100_000, "oversized message"),
    ("nesting past recursion", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nesting too deep"),
    ("oversized", encode(good(padding="x" * 70_000)), "oversized message: 7"),
]


@pytest.fixture(scope="module")
def decoded():
    return decode_messages([value for _, value, _ in CASES] + [None], LIMITS, NOW_MS)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_each_case_gets_the_expected_reason(decoded, index):
    _, _, expected = CASES[index]
    reason = decoded.loc[index, REASON]
    if expected is None:
        assert reason is None
        assert decoded.loc[index, "Amount"] in (12.0, 12.5)
    else:
        assert reason is not None and reason.startswith(expected), reason
        assert pd.isna(decoded.loc[index, "transaction_id"]) and decoded.loc[index, FEATURES].isna().all()


def test_null_value_is_empty(decoded):
    assert decoded.loc[len(CASES), REASON] == "empty value"


def test_valid_rows_keep_every_value_in_order():
    bodies = [good(f"id-{i}", V1=i * 0.25, Amount=10.0 + i, label=i % 2, event_time=NOW_MS - i) for i in range(50)]
    values = [encode(b) for b in bodies]
    values.insert(7, b"{broken")
    values.insert(20, None)
    out = decode_messages(values, LIMITS, NOW_MS)
    assert len(out) == 52
    assert out.loc[7, REASON].startswith("invalid JSON") and out.loc[20, REASON] == "empty value"
    valid = out[out[REASON].isna()].reset_index(drop=True)
    assert valid["transaction_id"].tolist() == [b["transaction_id"] for b in bodies]
    np.testing.assert_array_equal(valid[FEATURES].to_numpy(), np.array([[b[c] for c in FEATURES] for b in bodies]))
    assert valid["label"].tolist() == [b["label"] for b in bodies]
    assert valid["event_time"].tolist() == [b["event_time"] for b in bodies]
    assert (valid["source"] == "real").all()


def test_optional_fields_may_be_absent():
    out = decode_messages([encode(without("label", "event_time", "source"))], LIMITS, NOW_MS)
    assert out.loc[0, REASON] is None
    assert pd.isna(out.loc[0, "label"]) and pd.isna(out.loc[0, "event_time"]) and out.loc[0, "source"] is None


def test_a_repeated_key_takes_its_last_value_on_both_paths():
    value = encode(good()).replace(b'"Amount": 12.5', b'"Amount": 1.0, "Amount": 99.0')
    assert decode_messages([value], LIMITS, NOW_MS).loc[0, "Amount"] == 99.0
    assert decode_slow(value, LIMITS)[FEATURES.index("Amount") + 1] == 99.0


def test_the_slow_path_reads_non_finite_tokens_for_the_range_check():
    row = decode_slow(b'{"transaction_id": "n", ' + b", ".join(f'"{c}": NaN'.encode() for c in FEATURES) + b"}", LIMITS)
    assert row[0] == "n" and all(np.isnan(v) for v in row[1 : 1 + len(FEATURES)])


def test_event_time_is_bounded_by_the_pinned_batch_start_not_the_clock():
    value = encode(good(event_time=NOW_MS + 3_600_000))  # one hour after the pinned start
    assert decode_messages([value], LIMITS, NOW_MS).loc[0, REASON] is None
    late_start = NOW_MS - 86_400_000  # the same message decided against a start one day earlier
    assert decode_messages([value], LIMITS, late_start).loc[0, REASON].startswith("out of range: event_time")


def test_limits_come_from_the_config():
    cfg = load_config(
        overrides=[
            "stream.validation.max_message_bytes=100",
            "stream.validation.max_abs_feature=0.1",
            "stream.validation.max_amount=5",
            "stream.validation.max_id_length=3",
        ],
        env={},
    )
    limits = ValidationLimits.from_config(cfg)
    small = {"transaction_id": "s", **{c: 0.0 for c in FEATURES}}
    out = decode_messages(
        [
            encode(good()),
            json.dumps({**small, "V5": 0.5}).encode(),
            json.dumps({**small, "Amount": 6}).encode(),
            json.dumps({**small, "transaction_id": "abcd"}).encode(),
        ],
        ValidationLimits(**{**limits.__dict__, "max_message_bytes": 10_000}),
        NOW_MS,
    )
    assert out[REASON].tolist()[1:] == [
        "out of range: |value| > 0.1 in V5",
        "out of range: Amount > 5",
        "invalid transaction_id: longer than 3 characters",
    ]
    assert decode_messages([encode(good())], limits, NOW_MS).loc[0, REASON].startswith("oversized message")


def test_empty_batch():
    out = decode_messages([], LIMITS, NOW_MS)
    assert len(out) == 0 and list(out.columns)[:2] == [REASON, "transaction_id"]


def test_without_a_batch_start_the_upper_event_time_bound_is_left_to_the_driver():
    value = encode(good(event_time=int(time.time() * 1000) + 30 * 86_400_000))  # a month ahead
    assert decode_messages([value], LIMITS).loc[0, REASON] is None  # fraud_ml.streaming.routing refuses it
    assert (
        decode_messages([encode(good(event_time=86_400_000))], LIMITS)
        .loc[0, REASON]
        .startswith("out of range: event_time before")
    )
