"""Population stability index (PSI) and the views of the ``drift`` table (pure numpy/pandas)."""

from __future__ import annotations

import logging
import math
from typing import Iterable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PSI_EPS = 1e-4  # floor for empty bins in PSI (avoids log(0))


# --- PSI
def psi_edges(reference: Iterable[float], bins: int) -> np.ndarray:
    """Quantile bin edges of the reference (duplicates merged), open at both ends."""
    ref = np.asarray(pd.to_numeric(pd.Series(reference), errors="coerce").dropna(), dtype="float64")
    if ref.size == 0:
        raise ValueError("PSI reference is empty")
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, int(bins) + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def bin_shares(values: Iterable[float], edges: np.ndarray) -> np.ndarray:
    """Share of values per ``[edges[i], edges[i+1])`` bin (NaN ignored)."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype="float64")
    if v.size == 0:
        return np.full(len(edges) - 1, np.nan)
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1) / v.size


def psi(reference: Iterable[float], actual: Iterable[float], bins: int = 10, edges: np.ndarray | None = None) -> float:
    """Population stability index of ``actual`` against ``reference``.

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over the reference's quantile bins, with
    empty-bin shares floored at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate
    shift, > 0.2 significant shift. NaN if ``actual`` is empty.
    """
    if edges is None:
        edges = psi_edges(reference, bins)
    e = bin_shares(reference, edges)
    a = bin_shares(actual, edges)
    if np.isnan(a).any() or np.isnan(e).any():
        return math.nan
    e = np.clip(e, PSI_EPS, None)
    a = np.clip(a, PSI_EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


# --- drift table views


def drift_latest_window(drift: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Drift rows of the newest window per feature (and model version), with an ``alert`` column."""
    if drift is None or drift.empty:
        return pd.DataFrame(columns=["feature", "model_version", "psi", "rows", "alert"])
    newest = drift[drift["window_start"] == drift["window_start"].max()]
    out = newest.sort_values(["feature", "model_version"], na_position="first")[
        ["window_start", "feature", "model_version", "psi", "rows", "reference"]
    ].reset_index(drop=True)
    out["alert"] = np.where(out["psi"] > threshold, "PSI above threshold", "ok")
    return out


def drift_over_time(drift: pd.DataFrame) -> pd.DataFrame:
    """Wide frame for charts: index window_start, one column per feature / ``probability (vN)``."""
    if drift is None or drift.empty:
        return pd.DataFrame()
    series = np.where(
        drift["model_version"].isna(),
        drift["feature"],
        drift["feature"] + " (v" + drift["model_version"].astype(str) + ")",
    )
    return (
        drift.assign(series=series)
        .pivot_table(index="window_start", columns="series", values="psi", aggfunc="mean")
        .sort_index()
    )
