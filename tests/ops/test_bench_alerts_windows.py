"""``latency_windows`` of make bench-alerts: per-window percentiles of input time."""

import numpy as np

from fraud_ml.ops.bench_alerts import latency_windows


def test_a_backlog_shows_in_its_own_window():
    offsets = np.arange(0, 30_000, 10, dtype="int64")  # 30 s of input, a row every 10 ms
    latencies = np.full(offsets.size, 20, dtype="int64")
    latencies[(offsets >= 10_000) & (offsets < 20_000)] = 5_000  # a stall in the second window
    windows = latency_windows(offsets, latencies, 10.0)
    assert [w["from_s"] for w in windows] == [0.0, 10.0, 20.0]
    assert [w["rows"] for w in windows] == [1000, 1000, 1000]
    assert [w["p99_ms"] for w in windows] == [20.0, 5000.0, 20.0]


def test_no_rows_give_no_windows():
    assert latency_windows(np.array([], dtype="int64"), np.array([], dtype="int64"), 10.0) == []
