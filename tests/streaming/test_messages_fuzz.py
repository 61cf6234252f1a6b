"""Property-based fuzzing of the decoder and the scoring function: any bytes give exactly one row or one reason.

Pure Python (Hypothesis): arbitrary bytes, arbitrary JSON values, and mutations of valid
messages (huge integers, big floats, strings, booleans, nulls, nesting, unicode edge cases
with lone surrogates and NUL, repeated keys, truncation, byte flips). The integration test
on the real broker and stream is tests/streaming/test_stream_fuzz.py.
"""

import json
import math
import re

import numpy as np
import pyarrow as pa
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_ml.config import load_config
from fraud_ml.io.delta import BatchTag
from fraud_ml.schema import FEATURES, ID_COL, PCA_FEATURES
from fraud_ml.streaming.messages import (
    REASON,
    ValidationLimits,
    decode_messages,
    decode_slow,
)
from fraud_ml.streaming.routing import route_batch
from fraud_ml.streaming.scoring import KAFKA_COLUMNS, score_batch
from fraud_ml.training.pyfunc_model import ChampionModel

LIMITS = ValidationLimits.from_config(load_config(env={}))
NOW_MS = 1_790_000_000_000
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_body(i: int = 0) -> dict:
    return {
        "transaction_id": f"tx-{i}",
        "event_time": NOW_MS - 1000,
        **{c: 0.25 * (k % 7) for k, c in enumerate(FEATURES)},
        "Amount": 42.0,
        "label": i % 2,
        "source": "real",
    }


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "\ufeff", "𝔘"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
FIELDS = ["transaction_id", "event_time", "label", "source", *FEATURES, "unknown"]


def dumps(value) -> bytes:
    """JSON text as producers write it: Python's encoder (NaN/Infinity tokens, \\uXXXX escapes)."""
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def mutated_messages(draw) -> bytes:
    body = valid_body(draw(st.integers(0, 10)))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            body.pop(field, None)
        else:
            body[field] = draw(json_values)
    raw = dumps(body)
    kind = draw(st.sampled_from(["as is", "truncate", "flip", "duplicate key", "wrap", "deep", "utf8 garbage"]))
    if kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif kind == "flip":
        pos = draw(st.integers(0, len(raw) - 1))
        raw = raw[:pos] + bytes([draw(st.integers(0, 255))]) + raw[pos + 1 :]
    elif kind == "duplicate key":
        field = draw(st.sampled_from(FIELDS))
        raw = raw[:-1] + b', "' + field.encode() + b'": ' + dumps(draw(json_values)) + b"}"
    elif kind == "wrap":
        raw = b"[" + raw + b"]"
    elif kind == "deep":
        depth = draw(st.integers(1, 40))
        raw = raw[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "utf8 garbage":
        raw = raw.replace(b"tx-", b"tx-\xff\xfe", 1)
    return raw


def assert_one_row_or_one_reason(values: list, out) -> None:
    """Each value gives a row: a reason and nothing else, or every field within every bound."""
    assert len(out) == len(values)
    id_ok = re.compile(LIMITS.id_pattern).fullmatch
    for _, row in out.iterrows():
        if row[REASON] is not None:
            assert isinstance(row[REASON], str) and row[REASON]
            assert row[ID_COL] is None and row[FEATURES].isna().all()
            continue
        assert isinstance(row[ID_COL], str) and id_ok(row[ID_COL]) and len(row[ID_COL]) <= LIMITS.max_id_length
        row[ID_COL].encode("utf-8")  # storable as UTF-8 (no lone surrogate)
        x = row[FEATURES].to_numpy(np.float64)
        assert np.isfinite(x).all()
        assert 0 <= row["Time"] <= LIMITS.max_time and 0 <= row["Amount"] <= LIMITS.max_amount
        assert (np.abs(row[PCA_FEATURES].to_numpy(np.float64)) <= LIMITS.max_abs_feature).all()
        assert row["label"] is None or row["label"] is np.nan or str(row["label"]) in ("0", "1", "<NA>")
        if not (row["event_time"] is None or str(row["event_time"]) == "<NA>"):
            assert LIMITS.min_event_time_ms <= int(row["event_time"]) <= NOW_MS + LIMITS.max_event_time_ahead_ms
        if row["source"] is not None:
            row["source"].encode("utf-8")
    pa.Table.from_pandas(out)  # every value the stream keeps converts to Arrow


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_arbitrary_bytes(values):
    assert_one_row_or_one_reason(values, decode_messages(values, LIMITS, NOW_MS))


@FUZZ
@given(st.lists(json_values.map(dumps), max_size=10))
def test_arbitrary_json_values(values):
    assert_one_row_or_one_reason(values, decode_messages(values, LIMITS, NOW_MS))


@FUZZ
@given(st.lists(mutated_messages(), min_size=1, max_size=12))
def test_mutations_of_valid_messages(values):
    assert_one_row_or_one_reason(values, decode_messages(values, LIMITS, NOW_MS))


@FUZZ
@given(st.lists(st.one_of(mutated_messages(), st.binary(max_size=200), st.none()), min_size=1, max_size=12))
def test_a_batch_decodes_each_message_as_if_alone(values):
    together = decode_messages(values, LIMITS, NOW_MS)
    for i, value in enumerate(values):
        alone = decode_messages([value], LIMITS, NOW_MS).iloc[0]
        assert together.loc[i, REASON] == alone[REASON]
        if alone[REASON] is None:
            np.testing.assert_array_equal(
                together.loc[i, FEATURES].to_numpy(np.float64), alone[FEATURES].to_numpy(np.float64)
            )
            assert together.loc[i, ID_COL] == alone[ID_COL]


@FUZZ
@given(mutated_messages())
def test_the_fast_path_and_the_slow_path_agree_on_accepted_messages(value):
    row = decode_messages([value], LIMITS, NOW_MS).iloc[0]
    if row[REASON] is None:
        slow = decode_slow(value, limits=LIMITS)
        assert isinstance(slow, tuple), slow
        assert slow[0] == row[ID_COL]
        np.testing.assert_array_equal(
            np.array(slow[1 : 1 + len(FEATURES)], dtype=np.float64), row[FEATURES].to_numpy(np.float64)
        )


class _Pyfunc:
    """A loaded-pyfunc stand-in: the project's ChampionModel on a small booster (no MLflow store needed)."""

    def __init__(self, threshold: float = 0.5) -> None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(400, len(FEATURES)))
        booster = xgb.train(
            {"max_depth": 3, "objective": "binary:logistic"},
            xgb.DMatrix(x, label=(x[:, 14] < -0.5).astype(int), feature_names=FEATURES),
            10,
        )
        self.model = ChampionModel()
        self.model.booster, self.model.threshold = booster, threshold
        self.model.feature_names, self.model.reasons_top_k, self.model.reasons_method = FEATURES, 3, "approx"
        self.model.prior_odds_ratio = 1.0  # no prior correction: probabilities are the raw scores

    def predict(self, frame):
        return self.model.predict(None, frame)


PYFUNC = _Pyfunc()


def kafka_batch(values: list) -> pa.RecordBatch:
    n = len(values)
    return pa.RecordBatch.from_pydict(
        {
            "key": pa.array([b"k\xff" if i % 2 else None for i in range(n)], pa.binary()),
            "value": pa.array(values, pa.binary()),
            "topic": pa.array(["t"] * n, pa.string()),
            "partition": pa.array([i % 3 for i in range(n)], pa.int32()),
            "offset": pa.array(range(n), pa.int64()),
            "timestamp": pa.array([NOW_MS * 1000] * n, pa.timestamp("us", tz="UTC")),
        }
    ).select(KAFKA_COLUMNS)


@FUZZ
@given(
    st.lists(
        st.one_of(mutated_messages(), st.just(dumps(valid_body(3))), st.binary(max_size=100), st.none()),
        min_size=1,
        max_size=16,
    )
)
def test_scoring_and_routing_put_every_message_in_exactly_one_table(values):
    scored = pa.Table.from_batches([score_batch(PYFUNC, kafka_batch(values), LIMITS, NOW_MS, ["Amount", "V14"])])
    assert scored.num_rows == len(values)
    tag = BatchTag("app", "q", 0, NOW_MS, None, "1")
    routed = route_batch(scored, tag, ["Amount", "V14"], deduplicate=True, recent=None, limits=LIMITS)
    assert routed.predictions.num_rows + routed.quarantine.num_rows == len(values)
    keys = sorted(
        zip(routed.predictions["kafka_partition"].to_pylist(), routed.predictions["kafka_offset"].to_pylist())
    ) + sorted(zip(routed.quarantine["kafka_partition"].to_pylist(), routed.quarantine["kafka_offset"].to_pylist()))
    assert sorted(keys) == sorted((i % 3, i) for i in range(len(values)))
    assert routed.predictions[ID_COL].is_valid().to_pylist() == [True] * routed.predictions.num_rows
    assert all(math.isfinite(p) and 0 <= p <= 1 for p in routed.predictions["probability"].to_pylist())
    assert all(r for r in routed.quarantine["reason"].to_pylist())


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2e6, 2e6),
    st.floats(-2e3, 2e3),
    st.integers(-(10**30), 10**30),
    st.integers(-(10**400), 10**400),
    st.integers(-5, 5),
)


def within_bounds(field: str, value) -> bool:
    """The oracle: what the documented bounds accept for one feature."""
    try:
        x = float(value)
    except OverflowError:
        return False
    if not math.isfinite(x):
        return False
    if field == "Amount":
        return 0 <= x <= LIMITS.max_amount
    if field == "Time":
        return 0 <= x <= LIMITS.max_time
    return abs(x) <= LIMITS.max_abs_feature


@FUZZ
@given(st.sampled_from(FEATURES), numbers)
def test_a_feature_is_accepted_exactly_within_its_bounds(field, value):
    body = {**valid_body(), field: value}
    reason = decode_messages([dumps(body)], LIMITS, NOW_MS).loc[0, REASON]
    assert (reason is None) == within_bounds(field, value), (field, value, reason)


@FUZZ
@given(st.one_of(st.integers(), st.integers(-(10**30), 10**30), st.integers(0, 2 * NOW_MS)), st.integers(-3, 3))
def test_event_time_and_label_are_accepted_exactly_within_their_bounds(event_time, label):
    reason = decode_messages([dumps({**valid_body(), "event_time": event_time, "label": label})], LIMITS, NOW_MS).loc[
        0, REASON
    ]
    ok = LIMITS.min_event_time_ms <= event_time <= NOW_MS + LIMITS.max_event_time_ahead_ms and label in (0, 1)
    assert (reason is None) == ok, (event_time, label, reason)


@FUZZ
@given(st.text(max_size=140))
def test_an_id_is_accepted_exactly_when_it_fits_the_pattern(tx_id):
    reason = decode_messages([dumps({**valid_body(), "transaction_id": tx_id})], LIMITS, NOW_MS).loc[0, REASON]
    ok = len(tx_id) <= LIMITS.max_id_length and re.fullmatch(LIMITS.id_pattern, tx_id) is not None
    assert (reason is None) == ok, (tx_id, reason)
