"""Fixtures of the training tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_ml.schema import ID_COL, LABEL, SOURCE_COL
from fraud_ml.training.data import SyntheticCreditCardGenerator


def tiny_splits(n_rows: int = 2000, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Small synthetic train/validation/test frames in the split-table layout (stratified 60/20/20)."""
    frame = SyntheticCreditCardGenerator(n_rows=n_rows, fraud_rate=0.05, seed=seed).generate()
    frame.insert(0, ID_COL, [f"tx-{i:06d}" for i in range(len(frame))])
    frame[SOURCE_COL] = "generated"
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "validation": [], "test": []}
    for _, group in frame.groupby(LABEL):
        group = group.iloc[rng.permutation(len(group))]
        a, b = int(0.6 * len(group)), int(0.8 * len(group))
        parts["train"].append(group.iloc[:a])
        parts["validation"].append(group.iloc[a:b])
        parts["test"].append(group.iloc[b:])
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}


@pytest.fixture(name="tiny_splits", scope="session")
def tiny_splits_fixture():
    """``tiny_splits(n_rows, seed)``: small stratified splits of the synthetic generator."""
    return tiny_splits
