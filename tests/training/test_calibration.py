"""fraud_ml.training.calibration: prior shift to the production fraud rate, reweighted metrics, thresholds."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_ml.schema import FEATURES, LABEL
from fraud_ml.training.calibration import (
    brier_score,
    choose_threshold,
    effective_fraud_rate,
    prior_odds_ratio,
    prior_shift,
    production_weights,
    reliability,
    weighted_metrics,
    wilson_interval,
)

PRODUCTION = 0.00172


def test_prior_shift_matches_the_closed_form():
    # Fitted at 28.6 % fraud, used at 0.172 %: r = (0.00172/0.99828) / (0.286/0.714).
    r = prior_odds_ratio(0.286, PRODUCTION)
    assert r == pytest.approx((0.00172 / 0.99828) / (0.286 / 0.714))
    p = np.array([0.0, 0.1, 0.5, 0.9, 0.999, 1.0])
    expected = r * p / (r * p + 1 - p)
    assert np.allclose(prior_shift(p, r), expected)
    # Known values: p = 0.5 under the fitted prior means odds 1, so the shifted odds are r.
    assert prior_shift(np.array([0.5]), r)[0] == pytest.approx(r / (1 + r))
    # Shifting there and back is the identity; a ratio of 1 changes nothing.
    assert np.allclose(prior_shift(prior_shift(p, r), 1 / r), p)
    assert prior_shift(p, 1.0) is not None and np.array_equal(prior_shift(p, 1.0), p)


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=200), st.floats(1e-4, 1e3))
def test_prior_shift_is_monotone_and_stays_a_probability(scores, ratio):
    p = np.sort(np.array(scores))
    shifted = prior_shift(p, ratio)
    assert np.all(np.diff(shifted) >= 0) and np.all((shifted >= 0) & (shifted <= 1))


def test_ranking_and_average_precision_are_unchanged():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.2
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    shifted = prior_shift(s, prior_odds_ratio(0.2, PRODUCTION))
    assert average_precision_score(y, shifted) == pytest.approx(average_precision_score(y, s))
    assert roc_auc_score(y, shifted) == pytest.approx(roc_auc_score(y, s))


def test_effective_rate_counts_scale_pos_weight_and_weights_reach_the_production_rate():
    labels = np.array([1] * 10 + [0] * 90)
    assert effective_fraud_rate(labels) == pytest.approx(0.1)
    assert effective_fraud_rate(labels, scale_pos_weight=9.0) == pytest.approx(0.5)
    w = production_weights(labels, PRODUCTION)
    assert w[labels == 1].sum() / w.sum() == pytest.approx(PRODUCTION)
    with pytest.raises(ValueError):
        prior_odds_ratio(0.0, PRODUCTION)


def test_weighted_metrics_at_the_production_rate():
    # 10 frauds, 90 normals; the threshold flags 9 frauds and 9 normals.
    labels = np.array([1] * 10 + [0] * 90)
    scores = np.r_[np.full(9, 0.9), 0.1, np.full(9, 0.8), np.full(81, 0.1)]
    raw = weighted_metrics(labels, scores, 0.5)
    assert raw["precision"] == pytest.approx(0.5) and raw["recall"] == pytest.approx(0.9)
    prod = weighted_metrics(labels, scores, 0.5, production_weights(labels, PRODUCTION))
    assert prod["recall"] == pytest.approx(0.9) and prod["fpr"] == pytest.approx(0.1)
    # At 0.172 % fraud, 10 % of normals flagged swamp 90 % of frauds: precision = 0.9 pi / (0.9 pi + 0.1 (1-pi)).
    pi = PRODUCTION
    assert prod["precision"] == pytest.approx(0.9 * pi / (0.9 * pi + 0.1 * (1 - pi)))
    assert prod["alerts_per_10k"] == pytest.approx(10_000 * (0.9 * pi + 0.1 * (1 - pi)))


def test_threshold_strategies():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(200, int), np.zeros(2000, int)]
    scores = np.clip(np.r_[rng.normal(0.7, 0.15, 200), rng.normal(0.3, 0.15, 2000)], 0, 1)
    fpr_t = choose_threshold(labels, scores, "target_fpr", target_fpr=0.01)
    assert (scores[labels == 0] >= fpr_t).mean() <= 0.01
    assert (scores[labels == 0] >= np.nextafter(fpr_t, 0) - 1e-9).mean() > 0.005  # the lowest such threshold
    recall_t = choose_threshold(labels, scores, "target_recall", target_recall=0.9)
    assert (scores[labels == 1] >= recall_t).mean() >= 0.9
    assert (scores[labels == 1] > recall_t).mean() < 0.9  # the highest such threshold
    f1_raw = choose_threshold(labels, scores, "max_f1")
    f1_prod = choose_threshold(labels, scores, "max_f1", production_weights(labels, PRODUCTION))
    assert f1_prod > f1_raw  # rarer frauds: precision needs a stricter threshold
    best = max(weighted_metrics(labels, scores, t)["f1"] for t in np.unique(scores))
    assert weighted_metrics(labels, scores, f1_raw)["f1"] == pytest.approx(best)
    with pytest.raises(ValueError, match="unknown threshold strategy"):
        choose_threshold(labels, scores, "nope")


def test_calibration_error_is_lower_after_the_correction():
    # Scores that are the exact posterior under a 25 % prior, labels drawn from it: at the
    # production rate the corrected scores are the posterior there, the raw ones are not.
    rng = np.random.default_rng(2)
    n = 40_000
    y = (rng.random(n) < 0.25).astype(int)
    x = rng.normal(np.where(y == 1, 1.5, 0.0), 1.0)
    likelihood_ratio = np.exp(1.5 * x - 1.5**2 / 2)
    raw = 0.25 * likelihood_ratio / (0.25 * likelihood_ratio + 0.75)
    corrected = prior_shift(raw, prior_odds_ratio(0.25, 0.01))
    w = production_weights(y, 0.01)
    assert brier_score(y, corrected, w) < brier_score(y, raw, w)
    assert reliability(y, corrected, w)[3] < reliability(y, raw, w)[3] / 5


def test_wilson_interval_covers_the_estimate():
    lo, hi = wilson_interval(3, 1230)
    assert lo < 3 / 1230 < hi and hi < 0.01
    assert wilson_interval(0, 100)[0] == 0.0


def test_production_rate_thresholds_flag_fewer_real_normals(sample_csv):
    """On the real sample's held-out normals, a threshold chosen at 0.172 % flags fewer than one at 28.6 %."""
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(sample_csv)
    train, rest = train_test_split(frame, test_size=0.4, stratify=frame["Class"], random_state=3)
    validation, held_out = train_test_split(rest, test_size=0.5, stratify=rest["Class"], random_state=3)
    model = xgb.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.08, n_jobs=1, random_state=3)
    model.fit(train[FEATURES], train["Class"])
    r = prior_odds_ratio(effective_fraud_rate(train["Class"].to_numpy()), PRODUCTION)
    val = prior_shift(model.predict_proba(validation[FEATURES])[:, 1], r)
    held = prior_shift(model.predict_proba(held_out[FEATURES])[:, 1], r)
    y_val = validation["Class"].to_numpy()
    at_sample = choose_threshold(y_val, val, "max_f1")
    at_production = choose_threshold(y_val, val, "max_f1", production_weights(y_val, PRODUCTION))
    normals = held[held_out[LABEL].to_numpy() == 0]
    assert (normals >= at_production).sum() < (normals >= at_sample).sum()
