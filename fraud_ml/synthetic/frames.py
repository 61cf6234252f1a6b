"""Small pandas helpers shared by the synthetic-data modules (no Spark, no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL

ROW_COLUMNS: list[str] = [ID_COL, *FEATURES, LABEL, SOURCE_COL]


def synthetic_ids(prefix: str, n: int, start: int = 1) -> list[str]:
    """``['wgan-000001', 'wgan-000002', ...]``: unique, sortable ids for synthetic rows."""
    return [f"{prefix}-{i:06d}" for i in range(start, start + int(n))]


def synthetic_rows(
    features: pd.DataFrame, source: str, label: int = 1, prefix: str | None = None, start: int = 1
) -> pd.DataFrame:
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
