"""Pure monitoring computations and incremental Delta reading (deltalake only, no Spark)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds
import pytest
from deltalake import write_deltalake
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from fraud_ml.errors import ConfigError
from fraud_ml.io.delta_reader import DeltaIncremental, read_columns, table_version
from fraud_ml.monitoring.latency import (
    LATENCY_EDGES_MS,
    latency_histogram,
    latency_over_time,
    throughput,
)
from fraud_ml.monitoring.live import DashboardSettings, LiveMonitor
from fraud_ml.monitoring.psi import drift_latest_window, drift_over_time, psi, psi_edges
from fraud_ml.monitoring.quality import (
    batch_aggregates,
    confusion_counts,
    describe_interval,
    fraud_rate_per_interval,
    latest_alerts,
    merge_aggregates,
    parse_interval,
    quality_from_aggregates,
    recent,
    score_counts,
    totals,
)

T0 = pd.Timestamp("2024-01-01 00:00:00", tz="UTC")


def rows(batch_ids, seconds, decisions, labels) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": np.asarray(batch_ids, dtype="int64"),
            "scored_at": [T0 + pd.Timedelta(seconds=s) for s in seconds],
            "probability": np.linspace(0, 1, len(batch_ids)),
            "decision": np.asarray(decisions, dtype="int32"),
            "label": pd.array(labels, dtype="Int32"),
        }
    )


# ----------------------------------------------------------------------------- quality
def test_quality_matches_sklearn_and_ignores_unlabeled_rows():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    d = np.where(rng.random(500) < 0.7, y, ~y).astype(int)
    labels = pd.array(y.astype(int), dtype="Int32")
    labels[:25] = pd.NA
    q = confusion_counts(d, labels)
    known = ~pd.isna(labels)
    yk, dk = np.asarray(labels[known], dtype=int), d[known]
    assert q.labeled == 475
    assert q.precision == pytest.approx(precision_score(yk, dk))
    assert q.recall == pytest.approx(recall_score(yk, dk))
    assert q.f1 == pytest.approx(f1_score(yk, dk))
    assert q.confusion_frame().to_numpy().tolist() == confusion_matrix(yk, dk, labels=[0, 1]).tolist()


def test_quality_undefined_rates_are_nan():
    q = confusion_counts([0, 0, 0], [0, 0, 0])
    assert (q.tn, q.tp) == (3, 0)
    assert math.isnan(q.precision) and math.isnan(q.recall) and math.isnan(q.f1)
    assert confusion_counts([1, 0], [0, 0]).precision == 0.0


def test_batch_aggregates_merge_equals_aggregating_everything():
    frame = rows([0, 0, 1, 1, 1, 2], [0, 0, 50, 50, 50, 130], [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, None, 1])
    whole = batch_aggregates(frame)
    split = merge_aggregates(batch_aggregates(frame.iloc[:3]), batch_aggregates(frame.iloc[3:]))
    pd.testing.assert_frame_equal(whole, split)
    counts = ["rows", "flagged", "labeled", "frauds", "tp", "fp", "fn", "tn"]
    assert whole.set_index("batch_id").loc[1, counts].tolist() == [3, 2, 2, 1, 1, 1, 0, 0]
    t = totals(whole)
    assert t.pop("expected_frauds") == pytest.approx(frame["probability"].sum())  # 6 points of linspace(0, 1): 3
    assert t == {"transactions": 6, "flagged": 3, "frauds": 3, "labeled": 5, "batches": 3}
    q = quality_from_aggregates(whole)
    assert (q.tp, q.fp, q.fn, q.tn) == (2, 1, 1, 1)


def test_recent_window_is_relative_to_newest_batch():
    agg = batch_aggregates(rows([0, 1, 2, 3], [0, 100, 200, 300], [0, 0, 0, 0], [0, 0, 0, 0]))
    assert recent(agg, "scored_at", 100 / 60)["batch_id"].tolist() == [2, 3]
    assert recent(agg, "scored_at", 10)["batch_id"].tolist() == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- fraud rate per interval
def test_fraud_rate_per_interval_uses_exactly_the_interval():
    frame = rows([0, 0, 1, 1, 2, 2, 2], [5, 5, 55, 55, 150, 150, 150], [1, 0, 0, 0, 1, 1, 0], [1, 0, 0, 0, 1, 0, None])
    agg = batch_aggregates(frame)
    per_min = fraud_rate_per_interval(agg, "1min")
    assert list(per_min.index) == [T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2)]
    assert per_min["transactions"].tolist() == [4, 0, 3]
    assert per_min["frauds"].tolist() == [1, 0, 1]
    assert per_min["fraud_rate"].iloc[0] == pytest.approx(1 / 4)
    assert math.isnan(per_min["fraud_rate"].iloc[1])  # empty interval: no rate, not 0
    assert per_min["fraud_rate"].iloc[2] == pytest.approx(1 / 2)  # one row has no label
    assert per_min["flag_rate"].iloc[2] == pytest.approx(2 / 3)
    assert per_min["expected_fraud_rate"].iloc[2] == pytest.approx(frame["probability"].iloc[4:].mean())
    per_30s = fraud_rate_per_interval(agg, "30s")
    assert len(per_30s) == 6 and per_30s["transactions"].tolist() == [2, 2, 0, 0, 0, 3]
    assert describe_interval("1min") == "1 minute" and describe_interval("30s") == "30 seconds"
    assert describe_interval("2h") == "2 hours"
    with pytest.raises(ConfigError):
        parse_interval("every now and then")


# ----------------------------------------------------------------------------- throughput and latency
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


def test_score_counts_match_numpy_histogram():
    rng = np.random.default_rng(1)
    p = pd.Series(rng.random(300))
    y = pd.Series(pd.array((rng.random(300) < 0.3).astype(int), dtype="Int32"))
    y[:10] = pd.NA
    counts = score_counts(p, y, 10)
    for row, mask in ((0, y == 0), (1, y == 1)):
        mask = mask.fillna(False).to_numpy(bool)
        assert counts[row].tolist() == np.histogram(p[mask], bins=10, range=(0, 1))[0].tolist()
    assert counts[2].sum() == 10 and counts.sum() == 300


# ----------------------------------------------------------------------------- PSI
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


def test_latest_alerts_newest_first():
    flagged = pd.DataFrame(
        {
            "scored_at": [T0, T0 + pd.Timedelta(seconds=5), T0 + pd.Timedelta(seconds=5)],
            "batch_id": [0, 1, 1],
            "probability": [0.99, 0.6, 0.8],
            "transaction_id": list("abc"),
        }
    )
    assert latest_alerts(flagged, 2)["transaction_id"].tolist() == ["c", "b"]


# ----------------------------------------------------------------------------- Delta reading
def test_delta_incremental_reads_only_new_files(tmp_path):
    path = str(tmp_path / "t")
    reader = DeltaIncremental(path, ["a", "missing"])
    assert not reader.poll().exists and table_version(path) is None
    write_deltalake(path, pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    write_deltalake(path, pd.DataFrame({"a": [3], "b": ["z"]}), mode="append")
    first = reader.poll()
    assert first.exists and first.version == 1 and not first.reset
    assert sorted(first.new.column("a").to_pylist()) == [1, 2, 3]
    assert first.new.column_names == ["a", "missing"] and first.new.column("missing").null_count == 3
    assert reader.files_read == 2
    idle = reader.poll()  # no new version: nothing read
    assert idle.new is None and not idle.changed and reader.files_read == 2
    write_deltalake(path, pd.DataFrame({"a": [4], "b": ["w"]}), mode="append")
    step = reader.poll()
    assert step.new.column("a").to_pylist() == [4] and reader.files_read == 3 and not step.reset
    write_deltalake(path, pd.DataFrame({"a": [9], "b": ["q"]}), mode="overwrite")
    over = reader.poll()
    assert over.reset and over.new.column("a").to_pylist() == [9]
    # projection, filter and time travel
    assert read_columns(path, ["a"], version=1)["a"].sort_values().tolist() == [1, 2, 3]
    assert read_columns(path, ["b"], filter=pds.field("a") > 5)["b"].tolist() == ["q"]


def test_delta_incremental_does_not_re_read_a_compacted_table(tmp_path):
    from deltalake import DeltaTable

    path = str(tmp_path / "t")
    reader = DeltaIncremental(path, ["a"])
    for i in range(4):
        write_deltalake(path, pd.DataFrame({"a": [i]}), mode="append")
    assert sorted(reader.poll().new.column("a").to_pylist()) == [0, 1, 2, 3] and reader.files_read == 4
    write_deltalake(path, pd.DataFrame({"a": [4]}), mode="append")  # not seen yet when the compaction runs
    DeltaTable(path).optimize.compact()
    write_deltalake(path, pd.DataFrame({"a": [5]}), mode="append")
    step = reader.poll()
    assert not step.reset and sorted(step.new.column("a").to_pylist()) == [4, 5]
    assert reader.files_read == 6  # the two new files, not the compacted one
    DeltaTable(path).optimize.compact()
    assert reader.poll().new.num_rows == 0 and reader.files_read == 6
    DeltaTable(path).delete("a = 5")  # rows removed: the reader starts over
    gone = reader.poll()
    assert gone.reset and sorted(gone.new.column("a").to_pylist()) == [0, 1, 2, 3, 4]


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
    want = confusion_counts(allrows["decision"], allrows["label"])
    assert quality_from_aggregates(third.aggregates) == want
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
