import pandas as pd
import pytest

from fraud_ml.ops.report import row_latencies_ms, summarize


def test_summary_quality_latency_and_throughput():
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    predictions = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c", "d", "e"],
            "decision": [1, 1, 0, 0, 1],
            "label": [1, 0, 1, 0, 1],
            "batch_id": [0, 0, 0, 1, 1],
            "kafka_timestamp": [t0, t0, t0 + pd.Timedelta("500ms"), t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("1s")],
        }
    )
    metrics = pd.DataFrame(
        {
            "batch_id": [0, 1],
            "started_at": [t0 + pd.Timedelta("0.5s"), t0 + pd.Timedelta("1.5s")],
            "committed_at": [t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("2.5s")],
            "rows": [3, 2],
        }
    )
    assert sorted(row_latencies_ms(predictions, metrics)) == [500, 1000, 1000, 1500, 1500]
    s = summarize(predictions, metrics, quarantined=2)
    assert (s.rows, s.distinct_ids, s.flagged, s.actual_frauds, s.quarantined, s.batches) == (5, 5, 3, 3, 2, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.latency_p50_ms == pytest.approx(1000)
    assert s.throughput_tps == pytest.approx(5 / 2.0)
    assert any("precision 0.667" in line for line in s.lines())


def test_batches_of_two_queries_with_the_same_batch_id_are_kept_apart():
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    predictions = pd.DataFrame(
        {"batch_id": [0, 0], "query_id": ["old", "new"], "kafka_timestamp": [t0, t0 + pd.Timedelta("10s")]}
    )
    metrics = pd.DataFrame(
        {
            "batch_id": [0, 0],
            "query_id": ["old", "new"],
            "committed_at": [t0 + pd.Timedelta("1s"), t0 + pd.Timedelta("10.2s")],
        }
    )
    assert sorted(row_latencies_ms(predictions, metrics)) == [200, 1000]
    legacy = predictions.drop(columns="query_id").head(1)  # tables of earlier releases: no query_id
    assert row_latencies_ms(legacy, metrics.drop(columns="query_id").head(1)).tolist() == [1000]
