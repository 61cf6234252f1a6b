"""fraud_ml.monitoring.latency: throughput, latency histogram and latency over time (pure pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fraud_ml.monitoring.latency import (
    LATENCY_EDGES_MS,
    latency_histogram,
    latency_over_time,
    throughput,
)

T0 = pd.Timestamp("2024-01-01 00:00:00", tz="UTC")


def test_throughput_is_measured_from_batch_metrics():
    metrics = pd.DataFrame(
        {
            "started_at": [T0, T0 + pd.Timedelta(seconds=10)],
            "committed_at": [T0 + pd.Timedelta(seconds=1), T0 + pd.Timedelta(seconds=12)],
            "rows": [100, 300],
            "processing_ms": [1000.0, 2000.0],
        }
    )
    t = throughput(metrics)
    assert t["wall_rows_per_s"] == pytest.approx(400 / 12)
    assert t["processing_rows_per_s"] == pytest.approx(400 / 3)
    assert t["span_s"] == pytest.approx(12)
    assert math.isnan(throughput(metrics.iloc[:0])["wall_rows_per_s"])


def test_latency_histogram_bins_and_clock_skew():
    values = [-3.0, 0.0, 4.9, 5.0, 9.99, 100.0, 1e7, float("nan")]
    counts = latency_histogram(values)
    assert counts.sum() == 7
    assert counts[0] == 3 and counts[1] == 2  # [0,5): -3 (clipped), 0, 4.9; [5,10): 5, 9.99
    assert counts[list(LATENCY_EDGES_MS).index(100)] == 1 and counts[-1] == 1


def test_latency_over_time_is_bounded_and_keeps_the_spikes():
    n = 10_000
    metrics = pd.DataFrame(
        {
            "batch_id": np.arange(n),
            "committed_at": [T0 + pd.Timedelta(milliseconds=250 * i) for i in range(n)],
            "rows": 250,
            "processing_ms": np.where(np.arange(n) == 7_777, 5_000.0, 80.0),
            **{c: 300.0 for c in ["latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"]},
        }
    )
    full = latency_over_time(metrics)
    assert len(full) == n
    small = latency_over_time(metrics, max_points=600)
    assert len(small) == 600 and small["processing_ms"].max() == 5_000.0  # the one slow batch survives
    assert small["rows"].sum() == 250 * n and small.index.is_monotonic_increasing
