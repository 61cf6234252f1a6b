"""fraud_ml.monitoring.live: the dashboard's incremental view and its settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from sklearn.metrics import confusion_matrix

from fraud_ml.errors import ConfigError
from fraud_ml.monitoring.latency import (
    LATENCY_EDGES_MS,
)
from fraud_ml.monitoring.live import DashboardSettings, LiveMonitor
from fraud_ml.monitoring.quality import (
    Quality,
    quality_from_aggregates,
    totals,
)


def test_live_monitor_incremental_equals_from_scratch(tmp_path, stream_data):
    root = tmp_path / "delta"
    tables = stream_data.write_stream_tables(root, batches=3, rows=60, seed=11)
    paths = (tables.predictions_path, tables.metrics_path, str(root / "drift"))
    monitor = LiveMonitor(*paths, score_bins=10)
    first = monitor.refresh()
    assert first.has_predictions and totals(first.aggregates)["transactions"] == len(tables.predictions)
    rng = np.random.default_rng(5)
    extra = stream_data.make_batch(3, 40, stream_data.base_time + pd.Timedelta(minutes=5), rng)
    stream_data.append_batch(root, extra, processing_ms=300.0, with_metrics=False)
    second = monitor.refresh()
    files_after_second = second.files_read
    assert files_after_second == first.files_read + 1  # only the new file was read
    # rows of a batch whose metrics row is not written yet wait for its commit time
    assert second.latency_counts.sum() == len(tables.predictions)
    metrics_row = stream_data.metrics_row(extra, 300.0)
    write_deltalake(
        tables.metrics_path, pa.Table.from_pylist([metrics_row], schema=stream_data.metrics_schema), mode="append"
    )
    third = monitor.refresh()
    assert third.files_read == files_after_second  # predictions unchanged: not re-read
    fresh = LiveMonitor(*paths, score_bins=10).refresh()
    pd.testing.assert_frame_equal(third.aggregates, fresh.aggregates)
    assert third.score_counts.tolist() == fresh.score_counts.tolist()
    assert third.latency_counts.tolist() == fresh.latency_counts.tolist()
    assert third.latency_counts.sum() == len(tables.predictions) + len(extra)
    # independent latency histogram: commit time of the row's batch minus its Kafka timestamp
    allrows = pd.concat([tables.predictions, extra], ignore_index=True)
    commits = pd.concat([tables.metrics, pd.DataFrame([metrics_row])]).set_index("batch_id")["committed_at"]
    lat = (allrows["batch_id"].map(commits) - allrows["kafka_timestamp"]).dt.total_seconds() * 1000
    edges = np.array(LATENCY_EDGES_MS[:-1] + (1e18,))
    assert third.latency_counts.tolist() == np.histogram(lat, bins=edges)[0].tolist()
    known = allrows["label"].notna()
    d, y = allrows.loc[known, "decision"].astype(int), allrows.loc[known, "label"].astype(int)
    tn, fp, fn, tp = confusion_matrix(y, d, labels=[0, 1]).ravel()
    assert quality_from_aggregates(third.aggregates) == Quality(tp=tp, fp=fp, fn=fn, tn=tn)
    assert len(third.flagged) == int(allrows["decision"].sum())


def test_live_monitor_missing_tables(tmp_path):
    snap = LiveMonitor(str(tmp_path / "p"), str(tmp_path / "m"), str(tmp_path / "d")).refresh()
    assert not snap.has_predictions and snap.metrics is None and snap.drift is None


def test_dashboard_settings_from_config(make_config):
    cfg = make_config("dashboard.fraud_rate_interval=30s", "dashboard.alert_rows=7")
    s = DashboardSettings.from_config(cfg)
    assert s.fraud_rate_interval == "30s" and s.alert_rows == 7
    assert s.predictions_path == cfg.table_path("predictions") and s.drift_path.endswith("drift")
    with pytest.raises(ConfigError):
        DashboardSettings.from_config(make_config("dashboard.fraud_rate_interval=sometimes"))
