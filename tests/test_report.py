import pandas as pd
import pytest

from fraud_ml.report import row_latencies_ms, summarize


def test_summary_quality_latency_and_throughput():
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    predictions = pd.DataFrame({
        "transaction_id": ["a", "b", "c", "d", "e"],
        "decision": [1, 1, 0, 0, 1],
        "label": [1, 0, 1, 0, 1],
        "batch_id": [0, 0, 0, 1, 1],
        "kafka_timestamp": [t0, t0, t0 + pd.Timedelta("500ms"), t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("1s")],
    })
    metrics = pd.DataFrame({
        "batch_id": [0, 1],
        "started_at": [t0 + pd.Timedelta("0.5s"), t0 + pd.Timedelta("1.5s")],
        "committed_at": [t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("2.5s")],
        "rows": [3, 2],
    })
    assert sorted(row_latencies_ms(predictions, metrics)) == [500, 1000, 1000, 1500, 1500]
    s = summarize(predictions, metrics, quarantined=2)
    assert (s.rows, s.distinct_ids, s.flagged, s.actual_frauds, s.quarantined, s.batches) == (5, 5, 3, 3, 2, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.latency_p50_ms == pytest.approx(1000)
    assert s.throughput_tps == pytest.approx(5 / 2.0)
    assert any("precision 0.667" in line for line in s.lines())
