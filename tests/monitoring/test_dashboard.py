"""Streamlit AppTest of dashboard/app.py on small Delta tables written by the tests.

Every number the page shows is compared with the same number computed here
independently (sklearn, pandas, numpy) from the frames that were written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score
from streamlit.testing.v1 import AppTest

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.monitoring.drift import DRIFT_SCHEMA
from fraud_ml.monitoring.latency import LATENCY_EDGES_MS

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
RECENT_MINUTES = 2  # batches at +0, 50, ..., 250 s: the recent window holds batches 3, 4, 5
ALERT_ROWS = 7


def run_app(root: Path, monkeypatch, alerts_sample: int = 0, **overrides: str) -> AppTest:
    """Run the app once with delta.root (and dashboard.* overrides) from the environment; the
    real-time alerts panel reads ``alerts_sample`` records of Kafka (0: no panel)."""
    monkeypatch.setenv("FRAUD_ML__DELTA__ROOT", str(root))
    monkeypatch.setenv("FRAUD_ML__DASHBOARD__RECENT_WINDOW_MINUTES", str(RECENT_MINUTES))
    monkeypatch.setenv("FRAUD_ML__DASHBOARD__ALERT_ROWS", str(ALERT_ROWS))
    monkeypatch.setenv("FRAUD_ML__ALERTS__DASHBOARD_SAMPLE", str(alerts_sample))
    for key, value in overrides.items():
        monkeypatch.setenv(f"FRAUD_ML__DASHBOARD__{key.upper()}", value)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest) -> list[pd.DataFrame]:
    """Data behind every Vega-Lite chart, in page order (a layered chart's first dataset)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        dataset = chart.proto.datasets[0]
        out.append(pa.ipc.open_stream(dataset.data.data).read_all().to_pandas())
    return out


def quality(rows: pd.DataFrame) -> tuple[float, float, float, list[list[int]]]:
    known = rows[rows["label"].notna()]
    y, d = known["label"].astype(int), known["decision"].astype(int)
    return (precision_score(y, d), recall_score(y, d), f1_score(y, d), confusion_matrix(y, d, labels=[0, 1]).tolist())


def write_drift(root: Path) -> pd.DataFrame:
    t0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
    rows = []
    for start, psis in (
        (t0, {"Amount": 0.01, "V14": 0.02, "probability": 0.0}),
        (t0 + pd.Timedelta(minutes=1), {"Amount": 0.05, "V14": 0.35, "probability": 0.12}),
    ):
        for feature, value in psis.items():
            score = feature == "probability"
            rows.append(
                {
                    "window_start": start,
                    "window_end": start + pd.Timedelta(minutes=1),
                    "feature": feature,
                    "model_version": "1" if score else None,
                    "psi": value,
                    "rows": 300,
                    "reference": "first 5000 predictions of model version 1" if score else "train",
                    "reference_rows": 5000 if score else 2700,
                    "bins": 10,
                    "computed_at": t0,
                }
            )
    frame = pd.DataFrame(rows)
    write_deltalake(str(root / "drift"), pa.Table.from_pandas(frame, schema=DRIFT_SCHEMA, preserve_index=False))
    return frame


@pytest.fixture
def full_tables(tmp_path, stream_data):
    root = tmp_path / "delta"
    tables = stream_data.write_stream_tables(root, batches=6, rows=150, seed=3)
    write_drift(root)
    return root, tables


def test_every_panel_matches_the_tables(full_tables, monkeypatch, dashboard_panels):
    root, tables = full_tables
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    at = run_app(root, monkeypatch)
    preds, batch_metrics = tables.predictions, tables.metrics
    shown = metrics(at)
    assert [h.value for h in at.header] == dashboard_panels
    # totals
    assert shown["Transactions scored"] == f"{len(preds):,}"
    assert shown["Flagged"] == f"{int(preds['decision'].sum()):,}"
    assert shown["Actual frauds"] == f"{int((preds['label'] == 1).sum()):,}"
    labeled = preds["label"].notna().sum()
    assert shown["Fraud rate (labels)"] == f"{100 * (preds['label'] == 1).sum() / labeled:.3f}%"
    assert shown["Expected fraud rate (model)"] == f"{100 * preds['probability'].mean():.3f}%"
    assert shown["Alerts per 10,000"] == f"{1e4 * preds['decision'].sum() / len(preds):,.1f}"
    # quality: whole run and recent window, against sklearn
    recent_rows = preds[preds["scored_at"] >= preds["scored_at"].max() - pd.Timedelta(minutes=RECENT_MINUTES)]
    assert recent_rows["batch_id"].unique().tolist() == [3, 4, 5]
    for key, rows, table in (("whole run", preds, at.table[0]), ("recent", recent_rows, at.table[1])):
        p, r, f, cm = quality(rows)
        assert shown[f"Precision ({key})"] == f"{p:.3f}"
        assert shown[f"Recall ({key})"] == f"{r:.3f}"
        assert shown[f"F1 ({key})"] == f"{f:.3f}"
        assert table.value.to_numpy().tolist() == cm
    assert (
        shown["Precision (whole run)"] != shown["Precision (recent)"]
        or shown["Recall (whole run)"] != shown["Recall (recent)"]
    )
    # fraud rate per interval: the title names the interval, one row per minute
    assert "Fraud rate per 1 minute" in [s.value for s in at.subheader]
    per_interval = at.dataframe[0].value
    minute = preds["scored_at"].dt.floor("1min")
    expected = preds.groupby(minute).agg(
        transactions=("batch_id", "size"),
        frauds=("label", lambda s: int((s == 1).sum())),
        labeled=("label", lambda s: int(s.notna().sum())),
    )
    assert per_interval["interval_start"].tolist() == list(expected.index)
    assert per_interval["transactions"].tolist() == expected["transactions"].tolist()
    np.testing.assert_allclose(per_interval["fraud_rate"], expected["frauds"] / expected["labeled"])
    # latency and throughput, measured from batch_metrics
    wall = (
        batch_metrics["rows"].sum()
        / (batch_metrics["committed_at"].max() - batch_metrics["started_at"].min()).total_seconds()
    )
    busy = batch_metrics["rows"].sum() / (batch_metrics["processing_ms"].sum() / 1000)
    assert shown["Throughput (rows/s, whole run)"] == f"{wall:,.1f}"
    assert shown["Throughput while processing (rows/s)"] == f"{busy:,.1f}"
    assert shown["Latest batch p99 latency (ms)"] == f"{batch_metrics['latency_p99_ms'].iloc[-1]:,.1f}"
    latency_table = at.dataframe[1].value
    np.testing.assert_allclose(latency_table["latency_p95_ms"], batch_metrics["latency_p95_ms"])
    np.testing.assert_allclose(latency_table["processing_ms"], batch_metrics["processing_ms"])
    data = charts(at)
    assert len(data) == 6  # fraud rate, processing time, percentiles, latency histogram, scores, PSI
    commits = batch_metrics.set_index("batch_id")["committed_at"]
    lat = (preds["batch_id"].map(commits) - preds["kafka_timestamp"]).dt.total_seconds() * 1000
    edges = np.array(LATENCY_EDGES_MS[:-1] + (1e18,))
    assert data[3]["rows"].tolist() == np.histogram(lat, bins=edges)[0].tolist()
    # alerts: newest flagged rows first, with reasons
    alerts = at.dataframe[2].value
    flagged = preds[preds["decision"] == 1].sort_values(["scored_at", "batch_id", "probability"], ascending=False)
    assert alerts["transaction_id"].tolist() == flagged["transaction_id"].head(ALERT_ROWS).tolist()
    np.testing.assert_allclose(alerts["Amount"], flagged["Amount"].head(ALERT_ROWS))
    assert "reasons" in alerts.columns and alerts["reasons"].notna().all()
    # score distribution by true label
    scores = data[4]
    for name, mask in (("legit (0)", preds["label"] == 0), ("fraud (1)", preds["label"] == 1)):
        got = scores[scores["class"] == name]["count"].tolist()
        assert "unlabeled" not in set(scores["class"])
        want = np.histogram(preds.loc[mask.fillna(False).astype(bool), "probability"], bins=20, range=(0, 1))[0]
        assert got == want.tolist()
    # drift: warning for V14 only, latest window values
    (warning,) = at.warning
    assert "V14 0.350" in warning.value and "Amount" not in warning.value and "probability" not in warning.value
    drift_table = at.dataframe[4].value
    assert dict(zip(drift_table["feature"], drift_table["psi"])) == {"Amount": 0.05, "V14": 0.35, "probability": 0.12}
    assert drift_table.loc[drift_table["feature"] == "V14", "alert"].item() == "PSI above threshold"
    psi_chart = data[5].pivot_table(index="window_start", columns="series", values="psi")
    assert psi_chart["V14"].tolist() == [0.02, 0.35] and psi_chart["probability (v1)"].tolist() == [0.0, 0.12]
    assert not at.info and not at.error
    # read-only: nothing was written under the tables
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_missing_tables_show_the_empty_state(tmp_path, monkeypatch):
    at = run_app(tmp_path / "nothing-here", monkeypatch)
    (info,) = at.info
    assert info.value.startswith("No predictions yet — start the stream with `make demo`")
    assert not at.header and not at.metric and not at.error


def test_empty_predictions_table_shows_the_empty_state(tmp_path, monkeypatch, stream_data):
    root = tmp_path / "delta"
    write_deltalake(str(root / "predictions"), stream_data.predictions_schema.empty_table())
    at = run_app(root, monkeypatch)
    assert [i.value[:17] for i in at.info] == ["No predictions ye"] and not at.metric and not at.error


def test_new_batches_appear_on_the_next_refresh(tmp_path, monkeypatch, stream_data):
    root = tmp_path / "delta"
    tables = stream_data.write_stream_tables(root, batches=2, rows=80, seed=9)
    at = run_app(root, monkeypatch)
    assert metrics(at)["Transactions scored"] == f"{len(tables.predictions):,}"
    # predictions only so far: the other panels say why they are empty
    infos = [i.value for i in at.info]
    assert any(v.startswith("No drift table yet") for v in infos)
    extra = stream_data.make_batch(2, 55, stream_data.base_time + pd.Timedelta(minutes=3), np.random.default_rng(1))
    stream_data.append_batch(root, extra, processing_ms=250.0)
    at.run()
    assert metrics(at)["Transactions scored"] == f"{len(tables.predictions) + 55:,}"
    assert metrics(at)["Flagged"] == f"{int(tables.predictions['decision'].sum() + extra['decision'].sum()):,}"


def test_predictions_without_batch_metrics(tmp_path, monkeypatch, stream_data):
    root = tmp_path / "delta"
    rng = np.random.default_rng(2)
    stream_data.append_batch(
        root, stream_data.make_batch(0, 60, stream_data.base_time, rng), processing_ms=100.0, with_metrics=False
    )
    at = run_app(root, monkeypatch, fraud_rate_interval="30s")
    assert "Fraud rate per 30 seconds" in [s.value for s in at.subheader]
    infos = [i.value for i in at.info]
    assert any(v.startswith("No batch metrics yet") for v in infos)
    assert metrics(at)["Transactions scored"] == "60"


def test_bad_config_is_reported_not_raised(tmp_path, monkeypatch):
    at = run_app(tmp_path, monkeypatch, fraud_rate_interval="sometimes")
    (error,) = at.error
    assert "Configuration error" in error.value and "sometimes" in error.value


@pytest.mark.integration
def test_realtime_alerts_panel_shows_the_alert_latency(tmp_path, monkeypatch, stream_data, kafka_broker):
    import json
    import time

    from confluent_kafka import Consumer, Producer

    from fraud_ml.alerts.query import ALERTS_TOPIC_CONFIG
    from fraud_ml.io.kafka import create_topic

    stream_data.write_stream_tables(tmp_path / "delta", batches=2, rows=40, seed=4)
    topic, servers = "dashboard-alerts", kafka_broker.bootstrap_servers
    create_topic(servers, topic, 2, config=ALERTS_TOPIC_CONFIG)
    producer = Producer({"bootstrap.servers": servers})
    now_ms = int(time.time() * 1000)
    for i in range(30):
        alert = {"transaction_id": f"a-{i}", "probability": 0.9, "decision": int(i % 3 == 0), "model_version": "4"}
        value = json.dumps({**alert, "kafka_timestamp_ms": now_ms - 40 * i, "event_time": None})
        producer.produce(topic, key=f"a-{i}".encode(), value=value.encode())
    producer.produce(topic, key=b"x", value=b"not an alert")  # skipped, logged
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": servers, "group.id": "dash-check", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read, deadline = [], time.monotonic() + 30
    while len(read) < 31 and time.monotonic() < deadline:
        read += [m for m in consumer.consume(100, 0.5) if m.error() is None]
    consumer.close()
    latency = [m.timestamp()[1] - json.loads(m.value())["kafka_timestamp_ms"] for m in read if m.key() != b"x"]

    monkeypatch.setenv("FRAUD_ML__KAFKA__BOOTSTRAP_SERVERS", servers)
    monkeypatch.setenv("FRAUD_ML__ALERTS__TOPIC", topic)
    shown = metrics(run_app(tmp_path / "delta", monkeypatch, alerts_sample=1000))
    assert shown["Alerts read"] == "30" and shown["Alerts flagged"] == "10"
    assert shown["Alert latency p50 (ms)"] == f"{np.percentile(latency, 50):,.1f}"
    assert shown["Alert latency p99 (ms)"] == f"{np.percentile(latency, 99):,.1f}"


@pytest.mark.integration
def test_realtime_alerts_panel_without_the_topic_says_how_to_start_it(tmp_path, monkeypatch, stream_data, kafka_broker):
    stream_data.write_stream_tables(tmp_path / "delta", batches=2, rows=40, seed=4)
    monkeypatch.setenv("FRAUD_ML__KAFKA__BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    monkeypatch.setenv("FRAUD_ML__ALERTS__TOPIC", "no-such-alerts-topic")
    at = run_app(tmp_path / "delta", monkeypatch, alerts_sample=1000)
    assert any("make alerts" in i.value for i in at.info)
