"""Small pandas helpers shared by the synthetic-data modules (no Spark, no torch)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL

# Values of the ``source`` column for synthetic rows. Anything else is not synthetic.
SOURCE_SMOTE = "smote"
SOURCE_WGAN = "wgan"
SOURCE_CWGAN = "cwgan"
SYNTHETIC_SOURCES: tuple[str, ...] = (SOURCE_SMOTE, SOURCE_WGAN, SOURCE_CWGAN)
ROW_COLUMNS: list[str] = [ID_COL, *FEATURES, LABEL, SOURCE_COL]


def synthetic_ids(prefix: str, n: int, start: int = 1) -> list[str]:
    """``['wgan-000001', 'wgan-000002', ...]``: unique, sortable ids for synthetic rows."""
    return [f"{prefix}-{i:06d}" for i in range(start, start + int(n))]


def feature_matrix(df: pd.DataFrame | np.ndarray, columns: list[str] | None = None) -> np.ndarray:
    """The FEATURES (or ``columns``) of a frame as a float64 array; arrays pass through."""
    if isinstance(df, pd.DataFrame):
        cols = columns or FEATURES
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        return df[cols].to_numpy(dtype=np.float64)
    arr = np.asarray(df, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {arr.shape}")
    return arr


def synthetic_rows(features: pd.DataFrame, source: str, label: int = 1, prefix: str | None = None,
                   start: int = 1) -> pd.DataFrame:
    """Rows in the split-table layout (id, FEATURES, Class, source) for synthetic features."""
    out = pd.DataFrame({ID_COL: synthetic_ids(prefix or source, len(features), start)})
    for col in FEATURES:
        out[col] = features[col].to_numpy(dtype=np.float64)
    out[LABEL] = np.full(len(features), int(label), dtype=np.int32)
    out[SOURCE_COL] = source
    return out


def split_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a frame to the split-table layout and dtypes (float64 features, int32 label)."""
    missing = [c for c in ROW_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    out = df[ROW_COLUMNS].copy()
    out[FEATURES] = out[FEATURES].astype(np.float64)
    out[LABEL] = out[LABEL].astype(np.int32)
    out[ID_COL] = out[ID_COL].astype(str)
    out[SOURCE_COL] = out[SOURCE_COL].astype(str)
    return out.reset_index(drop=True)


def real_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that are not synthetic (``source`` not smote/wgan/cwgan)."""
    if SOURCE_COL not in df.columns:
        return df
    return df[~df[SOURCE_COL].isin(SYNTHETIC_SOURCES)]
