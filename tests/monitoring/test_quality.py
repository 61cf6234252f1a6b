"""fraud_ml.monitoring.quality: fraud-class quality, per-batch aggregates, intervals, alerts (pure pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from fraud_ml.errors import ConfigError
from fraud_ml.monitoring.quality import (
    Quality,
    batch_aggregates,
    describe_interval,
    fraud_rate_per_interval,
    latest_alerts,
    merge_aggregates,
    parse_interval,
    quality_from_aggregates,
    recent,
    score_counts,
    totals,
)

T0 = pd.Timestamp("2024-01-01 00:00:00", tz="UTC")


def rows(batch_ids, seconds, decisions, labels) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": np.asarray(batch_ids, dtype="int64"),
            "scored_at": [T0 + pd.Timedelta(seconds=s) for s in seconds],
            "probability": np.linspace(0, 1, len(batch_ids)),
            "decision": np.asarray(decisions, dtype="int32"),
            "label": pd.array(labels, dtype="Int32"),
        }
    )


def quality(decisions, labels) -> Quality:
    """Quality of rows in one batch, the way the dashboard gets it: aggregates, then their sum."""
    n = len(decisions)
    return quality_from_aggregates(batch_aggregates(rows([0] * n, [0] * n, decisions, labels)))


def test_quality_matches_sklearn_and_ignores_unlabeled_rows():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    d = np.where(rng.random(500) < 0.7, y, ~y).astype(int)
    labels = pd.array(y.astype(int), dtype="Int32")
    labels[:25] = pd.NA
    q = quality(d, labels)
    known = ~pd.isna(labels)
    yk, dk = np.asarray(labels[known], dtype=int), d[known]
    assert q.labeled == 475
    assert q.precision == pytest.approx(precision_score(yk, dk))
    assert q.recall == pytest.approx(recall_score(yk, dk))
    assert q.f1 == pytest.approx(f1_score(yk, dk))
    assert q.confusion_frame().to_numpy().tolist() == confusion_matrix(yk, dk, labels=[0, 1]).tolist()


def test_quality_undefined_rates_are_nan():
    q = quality([0, 0, 0], [0, 0, 0])
    assert (q.tn, q.tp) == (3, 0)
    assert math.isnan(q.precision) and math.isnan(q.recall) and math.isnan(q.f1)
    assert quality([1, 0], [0, 0]).precision == 0.0


def test_batch_aggregates_merge_equals_aggregating_everything():
    frame = rows([0, 0, 1, 1, 1, 2], [0, 0, 50, 50, 50, 130], [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, None, 1])
    whole = batch_aggregates(frame)
    split = merge_aggregates(batch_aggregates(frame.iloc[:3]), batch_aggregates(frame.iloc[3:]))
    pd.testing.assert_frame_equal(whole, split)
    counts = ["rows", "flagged", "labeled", "frauds", "tp", "fp", "fn", "tn"]
    assert whole.set_index("batch_id").loc[1, counts].tolist() == [3, 2, 2, 1, 1, 1, 0, 0]
    t = totals(whole)
    assert t.pop("expected_frauds") == pytest.approx(frame["probability"].sum())  # 6 points of linspace(0, 1): 3
    assert t == {"transactions": 6, "flagged": 3, "frauds": 3, "labeled": 5, "batches": 3}
    q = quality_from_aggregates(whole)
    assert (q.tp, q.fp, q.fn, q.tn) == (2, 1, 1, 1)


def test_recent_window_is_relative_to_newest_batch():
    agg = batch_aggregates(rows([0, 1, 2, 3], [0, 100, 200, 300], [0, 0, 0, 0], [0, 0, 0, 0]))
    assert recent(agg, "scored_at", 100 / 60)["batch_id"].tolist() == [2, 3]
    assert recent(agg, "scored_at", 10)["batch_id"].tolist() == [0, 1, 2, 3]


def test_fraud_rate_per_interval_uses_exactly_the_interval():
    frame = rows([0, 0, 1, 1, 2, 2, 2], [5, 5, 55, 55, 150, 150, 150], [1, 0, 0, 0, 1, 1, 0], [1, 0, 0, 0, 1, 0, None])
    agg = batch_aggregates(frame)
    per_min = fraud_rate_per_interval(agg, "1min")
    assert list(per_min.index) == [T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2)]
    assert per_min["transactions"].tolist() == [4, 0, 3]
    assert per_min["frauds"].tolist() == [1, 0, 1]
    assert per_min["fraud_rate"].iloc[0] == pytest.approx(1 / 4)
    assert math.isnan(per_min["fraud_rate"].iloc[1])  # empty interval: no rate, not 0
    assert per_min["fraud_rate"].iloc[2] == pytest.approx(1 / 2)  # one row has no label
    assert per_min["flag_rate"].iloc[2] == pytest.approx(2 / 3)
    assert per_min["expected_fraud_rate"].iloc[2] == pytest.approx(frame["probability"].iloc[4:].mean())
    per_30s = fraud_rate_per_interval(agg, "30s")
    assert len(per_30s) == 6 and per_30s["transactions"].tolist() == [2, 2, 0, 0, 0, 3]
    assert describe_interval("1min") == "1 minute" and describe_interval("30s") == "30 seconds"
    assert describe_interval("2h") == "2 hours"
    with pytest.raises(ConfigError):
        parse_interval("every now and then")


def test_score_counts_match_numpy_histogram():
    rng = np.random.default_rng(1)
    p = pd.Series(rng.random(300))
    y = pd.Series(pd.array((rng.random(300) < 0.3).astype(int), dtype="Int32"))
    y[:10] = pd.NA
    counts = score_counts(p, y, 10)
    for row, mask in ((0, y == 0), (1, y == 1)):
        mask = mask.fillna(False).to_numpy(bool)
        assert counts[row].tolist() == np.histogram(p[mask], bins=10, range=(0, 1))[0].tolist()
    assert counts[2].sum() == 10 and counts.sum() == 300


def test_latest_alerts_newest_first():
    flagged = pd.DataFrame(
        {
            "scored_at": [T0, T0 + pd.Timedelta(seconds=5), T0 + pd.Timedelta(seconds=5)],
            "batch_id": [0, 1, 1],
            "probability": [0.99, 0.6, 0.8],
            "transaction_id": list("abc"),
        }
    )
    assert latest_alerts(flagged, 2)["transaction_id"].tolist() == ["c", "b"]
