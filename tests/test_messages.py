"""fraud_ml.messages: the Python-side decoder the scoring UDF runs (no Spark needed)."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from fraud_ml.messages import REASON, ValidationLimits, classify, decode_messages
from fraud_ml.schema import FEATURES
from test_streaming_parse import CASES, encode, good


@pytest.fixture(scope="module")
def decoded():
    return decode_messages([value for _, value, _ in CASES])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_each_case_gets_the_expected_reason(decoded, index):
    _, _, expected = CASES[index]
    reason = decoded.loc[index, REASON]
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason


def test_valid_rows_keep_every_value_in_order():
    bodies = [good(f"id-{i}", V1=i * 0.25, Amount=10.0 + i, label=i % 2, event_time=1_000 + i) for i in range(50)]
    values = [encode(b) for b in bodies]
    values.insert(7, b"{broken")
    values.insert(20, None)
    out = decode_messages(values)
    assert len(out) == 52
    assert out.loc[7, REASON].startswith("invalid JSON") and out.loc[20, REASON] == "empty value"
    valid = out[out[REASON].isna()].reset_index(drop=True)
    assert valid["transaction_id"].tolist() == [b["transaction_id"] for b in bodies]
    np.testing.assert_array_equal(valid[FEATURES].to_numpy(), np.array([[b[c] for c in FEATURES] for b in bodies]))
    assert valid["label"].tolist() == [b["label"] for b in bodies]
    assert valid["event_time"].tolist() == [b["event_time"] for b in bodies]
    assert (valid["source"] == "real").all()


def test_optional_fields_may_be_absent_but_not_mistyped():
    bare = {k: v for k, v in good().items() if k not in ("label", "event_time", "source")}
    out = decode_messages([encode(bare), encode(good(label=1.5)), encode(good(event_time="soon")),
                           encode(good(source=3)), encode(good(V2=True)), encode(good(transaction_id=42))])
    assert out.loc[0, REASON] is None
    assert pd.isna(out.loc[0, "label"]) and pd.isna(out.loc[0, "event_time"]) and out.loc[0, "source"] is None
    for row in range(1, 6):
        assert out.loc[row, REASON] == "invalid JSON or wrong field type", row


def test_integers_are_accepted_for_features():
    out = decode_messages([encode(good(Amount=12, V1=0))])
    assert out.loc[0, REASON] is None and out.loc[0, "Amount"] == 12.0


@pytest.mark.parametrize("value, expected", [
    (encode(good(transaction_id="   ")), "missing field: transaction_id"),
    (encode({**{c: 1.0 for c in FEATURES}, "transaction_id": None}), "missing field: transaction_id"),
    (encode(good(V3=None, V8=None)), "missing or null field: V3, V8"),
    (encode(good(Time=-1.0)), "out of range: negative Time"),
    (encode(good(Amount=2e6)), "out of range: Amount > 1e+06"),
    (encode(good(V1=float("-inf"), V2=float("nan"))), "non-finite value in: V1, V2"),
    (b'{"transaction_id": "t", "V1": 1e400}', "missing or null field"),
    (b"\x00\x01\x02", "invalid JSON or wrong field type"),
    (b"42", "invalid JSON or wrong field type"),
])
def test_reasons_are_specific(value, expected):
    assert expected in decode_messages([value]).loc[0, REASON]


def test_limits_are_configurable():
    limits = ValidationLimits(max_message_bytes=100, max_abs_feature=0.1, max_amount=5.0)
    out = decode_messages([encode(good()), encode(good(Amount=1.0, **{c: 0.0 for c in FEATURES[:-1]}))], limits)
    assert out.loc[0, REASON].startswith("oversized message")
    small = {"transaction_id": "s", **{c: 0.0 for c in FEATURES}}
    out = decode_messages([json.dumps({**small, "V5": 0.5}).encode(), json.dumps({**small, "Amount": 6}).encode()],
                          ValidationLimits(max_abs_feature=0.1, max_amount=5.0))
    assert out.loc[0, REASON] == "out of range: |value| > 0.1 in V5"
    assert out.loc[1, REASON] == "out of range: Amount > 5"


def test_slow_path_reads_non_finite_tokens_for_the_range_check():
    row = classify(b'{"transaction_id": "n", ' + b", ".join(f'"{c}": NaN'.encode() for c in FEATURES) + b"}")
    assert row[0] == "n" and all(math.isnan(v) for v in row[1:1 + len(FEATURES)])


def test_empty_batch():
    out = decode_messages([])
    assert len(out) == 0 and list(out.columns)[:2] == [REASON, "transaction_id"]
