"""Scores at the production fraud rate: prior shift, reweighted evaluation, threshold strategies.

A model fitted on rows with fraud rate ``pi_s`` (the sample's 28.6 %, a SMOTE'd 10 %, or a
``scale_pos_weight`` that acts like one) outputs ``p_s = P(fraud | x)`` under that prior. At
the production rate ``pi_t`` (0.172 % for the Kaggle data) Bayes' rule with the class-
conditional densities unchanged gives

    odds_t(x) = odds_s(x) * r,   r = [pi_t / (1 - pi_t)] / [pi_s / (1 - pi_s)]
    p_t = r p_s / (r p_s + 1 - p_s)

which is the undersampling correction of Dal Pozzolo, Caelen, Johnson and Bontempi
("Calibrating Probability with Undersampling for Unbalanced Classification", IEEE CIDM
2015) with ``beta = r``. It is strictly increasing, so ranking, ROC AUC and AP are
unchanged; only the probabilities (and so the meaning of a threshold) move.

Evaluating "at the production rate" reweights the normals of a labelled split so that
they weigh ``(1 - pi_t) / pi_t`` times the frauds: precision, F1, cost and alerts per
10,000 transactions are then what the same model would show on production traffic.
Recall and the false-positive rate do not depend on the prior.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fraud_ml.config import Config

log = logging.getLogger(__name__)

THRESHOLD_STRATEGIES = ("max_f1", "min_cost", "target_fpr", "target_recall")


def effective_fraud_rate(labels: np.ndarray, scale_pos_weight: float = 1.0) -> float:
    """Fraud rate the model was fitted at: the labels' rate, frauds counted ``scale_pos_weight`` times."""
    labels = np.asarray(labels)
    frauds = float((labels == 1).sum()) * float(scale_pos_weight)
    normals = float((labels == 0).sum())
    if frauds <= 0 or normals <= 0:
        raise ValueError("the training rows need both classes to define a fraud rate")
    return frauds / (frauds + normals)


def prior_odds_ratio(fitted_rate: float, production_rate: float) -> float:
    """``r``: production odds over fitted odds (1 = no correction)."""
    for name, rate in (("fitted", fitted_rate), ("production", production_rate)):
        if not 0.0 < rate < 1.0:
            raise ValueError(f"{name} fraud rate must lie strictly between 0 and 1, got {rate!r}")
    return (production_rate / (1 - production_rate)) / (fitted_rate / (1 - fitted_rate))


def prior_shift(scores: np.ndarray, ratio: float) -> np.ndarray:
    """``r p / (r p + 1 - p)``: scores fitted under one prior, moved to the prior with odds ``ratio`` times."""
    p = np.asarray(scores, dtype=np.float64)
    if ratio == 1.0:
        return p
    shifted = ratio * p / (ratio * p + (1.0 - p))  # (1 - p) first: r p + 1 - p rounded p = 1 to 1 + 2e-16
    return np.clip(shifted, 0.0, 1.0)


def production_weights(labels: np.ndarray, production_rate: float) -> np.ndarray:
    """Per-row weights that make the weighted fraud rate of ``labels`` equal ``production_rate``.

    Frauds weigh 1; each normal weighs ``(n_fraud / n_normal) * (1 - rate) / rate``.
    """
    labels = np.asarray(labels).astype(int)
    frauds, normals = int((labels == 1).sum()), int((labels == 0).sum())
    if frauds == 0 or normals == 0:
        return np.ones(len(labels))
    normal_weight = frauds / normals * (1 - production_rate) / production_rate
    return np.where(labels == 1, 1.0, normal_weight)


def weighted_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Precision, recall, F1, FPR and alerts per 10,000 transactions at ``threshold`` under ``weights``."""
    labels = np.asarray(labels).astype(int)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    flagged = np.asarray(scores) >= threshold
    tp = float(w[flagged & (labels == 1)].sum())
    fp = float(w[flagged & (labels == 0)].sum())
    fn = float(w[~flagged & (labels == 1)].sum())
    negatives = float(w[labels == 0].sum())
    total = float(w.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "fpr": fp / negatives if negatives else 0.0,
        "alerts_per_10k": 10_000 * (tp + fp) / total if total else 0.0,
    }


def choose_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    strategy: str,
    weights: np.ndarray | None = None,
    cost_fn: float = 25.0,
    cost_fp: float = 1.0,
    target_fpr: float = 0.001,
    target_recall: float = 0.85,
) -> float:
    """The decision threshold on (validation) ``scores`` by ``strategy``, rows weighted by ``weights``.

    * ``max_f1``: the F1-maximising threshold (weighted: F1 at the weights' prevalence);
    * ``min_cost``: minimum ``cost_fn * missed frauds + cost_fp * false alarms``;
    * ``target_fpr``: the lowest threshold flagging at most ``target_fpr`` of the normals;
    * ``target_recall``: the highest threshold keeping recall >= ``target_recall``.

    Candidates are the distinct scores; the result lies strictly inside (0, 1).
    """
    if strategy not in THRESHOLD_STRATEGIES:
        raise ValueError(f"unknown threshold strategy '{strategy}' (one of {', '.join(THRESHOLD_STRATEGIES)})")
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (labels == 1).any() or not (labels == 0).any():
        log.warning("the threshold set lacks a class: using 0.5")
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, y, ww = scores[order], labels[order], w[order]
    tp = np.cumsum(ww * (y == 1))  # flagged frauds when the threshold is s[i] (rows 0..i flagged)
    fp = np.cumsum(ww * (y == 0))
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each run of equal scores
    s, tp, fp = s[last], tp[last], fp[last]
    positives, negatives = tp[-1], fp[-1]
    if strategy == "max_f1":
        f1 = 2 * tp / np.clip(tp + fp + positives, 1e-300, None)
        pick = int(np.argmax(f1))
    elif strategy == "min_cost":
        pick = int(np.argmin(cost_fn * (positives - tp) + cost_fp * fp))
    elif strategy == "target_fpr":
        ok = np.flatnonzero(fp / negatives <= target_fpr)
        if ok.size == 0:  # even the top score flags too many normals: flag only scores above it
            return _open_unit(float(np.nextafter(s[0], np.inf)))
        pick = int(ok[-1])
    else:
        pick = int(np.flatnonzero(tp / positives >= target_recall)[0])
    return _open_unit(float(s[pick]))


def _open_unit(threshold: float) -> float:
    """A score taken as threshold, moved inside (0, 1): float32 scores can round to exactly 0 or 1."""
    return float(np.clip(threshold, np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0)))


def brier_score(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean squared error of the probabilities."""
    labels = np.asarray(labels, dtype=np.float64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * (np.asarray(scores, dtype=np.float64) - labels) ** 2) / np.sum(w))


def reliability(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per equal-width probability bin: mean predicted, observed fraud rate, weight; and the ECE."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    idx = np.minimum((scores * bins).astype(int), bins - 1)
    weight = np.bincount(idx, weights=w, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(idx, weights=w * scores, minlength=bins) / weight
        observed = np.bincount(idx, weights=w * labels, minlength=bins) / weight
    filled = weight > 0
    ece = float(np.sum(weight[filled] * np.abs(predicted[filled] - observed[filled])) / weight.sum())
    return predicted, observed, weight, ece


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PriorCorrection:
    """From the fraud rate a model was fitted at to the production rate (``train.prior_correction``)."""

    fitted_rate: float
    production_rate: float
    enabled: bool

    @classmethod
    def from_config(cls, cfg: Config, train_labels: np.ndarray, params: dict) -> "PriorCorrection":
        fitted = effective_fraud_rate(train_labels, float(params.get("scale_pos_weight", 1.0)))
        return cls(fitted, float(cfg.get("train.production_fraud_rate")), bool(cfg.get("train.prior_correction")))

    @property
    def ratio(self) -> float:
        return prior_odds_ratio(self.fitted_rate, self.production_rate) if self.enabled else 1.0

    def apply(self, raw_scores: np.ndarray) -> np.ndarray:
        return prior_shift(raw_scores, self.ratio)

    def model_config(self) -> dict[str, float]:
        return {
            "prior_odds_ratio": self.ratio,
            "fitted_fraud_rate": self.fitted_rate,
            "production_fraud_rate": self.production_rate,
        }


def production_report(y_true: np.ndarray, scores: np.ndarray, threshold: float, production_rate: float) -> dict:
    """Precision, recall, F1, FPR and alerts per 10,000 at ``threshold``, with the split reweighted to
    ``production_rate``."""
    return weighted_metrics(y_true, scores, threshold, production_weights(y_true, production_rate))


def calibration_metrics(y_val: np.ndarray, raw: np.ndarray, corrected: np.ndarray, production_rate: float) -> dict:
    """Brier score and ECE of the raw and the corrected scores, validation reweighted to the production rate."""
    weights = production_weights(y_val, production_rate)
    return {
        "validation_production_brier_raw": brier_score(y_val, raw, weights),
        "validation_production_brier_corrected": brier_score(y_val, corrected, weights),
        "validation_production_ece_raw": reliability(y_val, raw, weights)[3],
        "validation_production_ece_corrected": reliability(y_val, corrected, weights)[3],
    }
