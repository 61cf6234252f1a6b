"""fraud_ml.monitoring.psi: PSI and the drift table views (pure numpy/pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fraud_ml.monitoring.psi import drift_latest_window, drift_over_time, psi, psi_edges

T0 = pd.Timestamp("2024-01-01 00:00:00", tz="UTC")


def test_psi_matches_the_formula():
    reference = np.arange(1000) / 1000.0
    edges = np.array([-np.inf, 0.5, np.inf])
    actual = np.r_[np.full(300, 0.1), np.full(700, 0.9)]
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert psi(reference, actual, edges=edges) == pytest.approx(expected)
    assert psi_edges(reference, 4).tolist()[1:-1] == pytest.approx([0.24975, 0.4995, 0.74925])


def test_psi_flags_shift_not_noise():
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 5000), bins=10) < 0.02
    assert psi(ref, rng.normal(1.0, 1, 5000), bins=10) > 0.2
    assert math.isnan(psi(ref, [], bins=10))


def test_drift_views():
    drift = pd.DataFrame(
        {
            "window_start": [T0, T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=1)],
            "feature": ["V14", "probability", "V14", "probability"],
            "model_version": [None, "3", None, "3"],
            "psi": [0.01, 0.0, 0.4, 0.05],
            "rows": [10, 10, 12, 12],
            "reference": ["train", "x", "train", "x"],
        }
    )
    latest = drift_latest_window(drift, 0.2)
    assert latest["feature"].tolist() == ["V14", "probability"]
    assert latest["alert"].tolist() == ["PSI above threshold", "ok"]
    wide = drift_over_time(drift)
    assert list(wide.columns) == ["V14", "probability (v3)"] and wide["V14"].tolist() == [0.01, 0.4]
