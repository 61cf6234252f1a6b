"""fraud_ml.ops.soak: the per-window table the soak reports (pure pandas)."""

import pandas as pd

from fraud_ml.ops.soak import markdown, window_table

T0 = pd.Timestamp("2026-12-01 10:00:00", tz="UTC")


def test_windows_hold_their_batches_rows_and_latest_sample():
    metrics = pd.DataFrame(
        {
            "query_id": "q",
            "batch_id": [0, 1, 2, 3],
            "committed_at": [T0 + pd.Timedelta(seconds=s) for s in (10, 50, 70, 130)],
            "rows": [10, 0, 20, 30],
            "processing_ms": [100.0, 5.0, 200.0, 300.0],
            "lookback_ids": [10, 10, 30, 60],
        }
    )
    predictions = pd.DataFrame(
        {
            "query_id": "q",
            "batch_id": [0, 2, 2, 3],
            "kafka_timestamp": [T0 + pd.Timedelta(seconds=s) for s in (9.5, 69, 69.5, 129)],
        }
    )
    samples = pd.DataFrame(
        {
            "at": [T0 + pd.Timedelta(seconds=s) for s in (30, 40, 90, 150)],
            "stream_rss_mib": [100.0, 90.0, 110.0, 105.0],
            "stream_pss_mib": [80.0, 85.0, 70.0, 75.0],
        }
    )
    table = window_table(metrics, predictions, samples, T0, pd.Timedelta(minutes=1))
    assert table["window"].tolist() == ["0-1 min", "1-2 min", "2-3 min"]
    assert table["batches"].tolist() == [1, 1, 1]  # the empty batch 1 is not a processing sample
    assert table["rows"].tolist() == [10, 20, 30]
    assert table["batch_p50_ms"].tolist() == [100.0, 200.0, 300.0]
    assert table["latency_p50_ms"].tolist() == [500.0, 750.0, 1000.0]  # commit minus Kafka timestamp
    assert table["lookback_ids_max"].tolist() == [10, 30, 60]
    assert table["stream_rss_mib"].tolist() == [90.0, 110.0, 105.0]  # the last sample inside each window
    assert table["stream_rss_peak_mib"].tolist() == [100.0, 110.0, 105.0]  # the largest one
    assert table["stream_pss_peak_mib"].tolist() == [85.0, 70.0, 75.0]
    text = markdown(table)
    assert text.splitlines()[0].startswith("| window | batches | rows |") and "| 1-2 min | 1 | 20 |" in text
