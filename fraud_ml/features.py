"""The rows and feature matrices every model and evaluation sees (numpy/pandas, no Spark).

* :func:`feature_matrix`: the model features of a frame as one C-contiguous array, in the
  given order (float32 for the models, float64 for SMOTE, the WGAN-GP and quality metrics).
* :func:`real_rows`: a frame without synthetic rows (``source`` in smote/wgan/cwgan); every
  validation and test metric is computed on these only.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fraud_ml.schema import FEATURES, SOURCE_COL, SYNTHETIC_SOURCES

log = logging.getLogger(__name__)


def feature_matrix(
    frame: pd.DataFrame | np.ndarray, columns: list[str] | None = None, dtype: type = np.float32
) -> np.ndarray:
    """``columns`` (default FEATURES) of ``frame`` as a C-contiguous ``dtype`` matrix; nulls become NaN.

    A 2-D array passes through (cast); a missing column raises ValueError naming it.
    """
    if isinstance(frame, pd.DataFrame):
        cols = list(columns or FEATURES)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        return np.ascontiguousarray(frame[cols].to_numpy(dtype=dtype, na_value=np.nan))
    matrix = np.ascontiguousarray(frame, dtype=dtype)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {matrix.shape}")
    return matrix


def real_rows(frame: pd.DataFrame, split: str | None = None) -> pd.DataFrame:
    """``frame`` without synthetic rows; with ``split`` named, a warning says how many were dropped."""
    if SOURCE_COL not in frame.columns:
        return frame
    synthetic = frame[SOURCE_COL].isin(SYNTHETIC_SOURCES)
    if not synthetic.any():
        return frame
    if split is not None:
        log.warning(
            "dropping %d synthetic rows from the %s split: metrics use real rows only", int(synthetic.sum()), split
        )
    return frame[~synthetic].reset_index(drop=True)
