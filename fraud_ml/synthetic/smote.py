"""SMOTE oversampling of the train split to a target fraud ratio (imbalanced-learn)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fraud_ml.errors import FraudMLError
from fraud_ml.features import feature_matrix
from fraud_ml.schema import FEATURES, LABEL, SOURCE_COL, SOURCE_SMOTE
from fraud_ml.synthetic.frames import split_rows, synthetic_rows

log = logging.getLogger(__name__)


def target_minority_count(n_majority: int, ratio: float) -> int:
    """Minority rows needed so that minority / (majority + minority) == ``ratio`` (rounded)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"SMOTE ratio must be in (0, 1), got {ratio}")
    return int(round(ratio * n_majority / (1.0 - ratio)))


class SmoteOversampler:
    """SMOTE to a fraud ratio ``ratio`` = frauds / all rows of the output, reproducible by ``seed``.

    ``fit_resample(X, y)`` returns the original rows first, then the new synthetic
    minority rows (imbalanced-learn's order); ``n_synthetic_`` says how many.
    """

    def __init__(self, ratio: float = 0.10, k_neighbors: int = 5, seed: int = 42) -> None:
        self.ratio = float(ratio)
        self.k_neighbors = int(k_neighbors)
        self.seed = int(seed)

    def fit_resample(
        self, X: np.ndarray | pd.DataFrame, y: np.ndarray | pd.Series
    ) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
        """Oversample class 1 to ``ratio``; raises FraudMLError when it is already at or above it."""
        from imblearn.over_sampling import SMOTE

        y_arr = np.asarray(y).astype(int)
        if set(np.unique(y_arr)) - {0, 1}:
            raise ValueError("labels must be 0/1")
        n_major, n_minor = int((y_arr == 0).sum()), int((y_arr == 1).sum())
        target = target_minority_count(n_major, self.ratio)
        if n_minor < 2:
            raise FraudMLError(f"SMOTE needs at least 2 fraud rows, got {n_minor}")
        if target <= n_minor:
            raise FraudMLError(
                f"the train split already has {n_minor / (n_major + n_minor):.2%} fraud, at or above the "
                f"requested SMOTE ratio {self.ratio:.2%}: raise synthetic.smote.ratio"
            )
        k = self.k_neighbors
        if k >= n_minor:
            raise FraudMLError(
                f"SMOTE k_neighbors={k} needs more than {k} fraud rows, got {n_minor}: "
                "lower synthetic.smote.k_neighbors"
            )
        sampler = SMOTE(sampling_strategy={1: target}, k_neighbors=k, random_state=self.seed)
        X_res, y_res = sampler.fit_resample(X, y_arr)
        self.n_synthetic_ = int(len(y_res) - len(y_arr))
        log.info(
            "SMOTE: %d normals, %d -> %d frauds (%d synthetic, ratio %.4f, k=%d, seed=%d)",
            n_major,
            n_minor,
            target,
            self.n_synthetic_,
            target / (n_major + target),
            k,
            self.seed,
        )
        return X_res, y_res


def smote_table(train: pd.DataFrame, ratio: float = 0.10, k_neighbors: int = 5, seed: int = 42) -> pd.DataFrame:
    """The train rows (``source`` kept) plus SMOTE fraud rows (``source='smote'``, ids ``smote-000001``...)."""
    rows = split_rows(train)
    sampler = SmoteOversampler(ratio, k_neighbors, seed)
    X_res, _ = sampler.fit_resample(feature_matrix(rows, dtype=np.float64), rows[LABEL].to_numpy())
    new = pd.DataFrame(np.asarray(X_res)[len(rows) :], columns=FEATURES)
    out = pd.concat([rows, synthetic_rows(new, SOURCE_SMOTE, label=1)], ignore_index=True)
    out[LABEL] = out[LABEL].astype(np.int32)
    return out


def smote_frauds(table: pd.DataFrame) -> pd.DataFrame:
    """Only the synthetic rows of a SMOTE table."""
    return table[table[SOURCE_COL] == SOURCE_SMOTE].reset_index(drop=True)
