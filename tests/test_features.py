"""fraud_ml.features: the one feature matrix and the one definition of real rows."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fraud_ml.features import feature_matrix, real_rows
from fraud_ml.schema import FEATURES, SOURCE_COL, SOURCE_GENERATED, SOURCE_REAL, SOURCE_SMOTE, SOURCE_WGAN


def frame(n: int = 4) -> pd.DataFrame:
    data = {c: np.arange(n, dtype="float64") + i for i, c in enumerate(reversed(FEATURES))}
    return pd.DataFrame(data)  # columns in reverse order: the matrix must follow FEATURES, not the frame


def test_feature_matrix_follows_the_feature_order_and_dtype():
    df = frame()
    x = feature_matrix(df)
    assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"] and x.shape == (4, len(FEATURES))
    assert x[:, 0].tolist() == df[FEATURES[0]].tolist()
    assert (
        feature_matrix(df, ["Amount", "Time"], dtype=np.float64).tolist() == df[["Amount", "Time"]].to_numpy().tolist()
    )


def test_feature_matrix_nulls_are_nan_and_missing_columns_are_named():
    df = frame().astype({"V3": "Float64"})
    df.loc[1, "V3"] = pd.NA
    assert np.isnan(feature_matrix(df)[1, FEATURES.index("V3")])
    with pytest.raises(ValueError, match="missing feature columns: V7"):
        feature_matrix(frame().drop(columns=["V7"]))
    with pytest.raises(ValueError, match="2-D"):
        feature_matrix(np.zeros(3))


def test_real_rows_drop_synthetic_rows_and_say_so(caplog):
    df = pd.DataFrame({SOURCE_COL: [SOURCE_REAL, SOURCE_SMOTE, SOURCE_GENERATED, SOURCE_WGAN], "x": [1, 2, 3, 4]})
    with caplog.at_level(logging.WARNING, logger="fraud_ml.features"):
        kept = real_rows(df, "test")
    assert kept["x"].tolist() == [1, 3] and kept.index.tolist() == [0, 1]
    assert "dropping 2 synthetic rows from the test split" in caplog.text
    assert real_rows(df.drop(columns=[SOURCE_COL])).equals(df.drop(columns=[SOURCE_COL]))
