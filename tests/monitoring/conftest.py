"""Small Delta tables shaped like the streaming job's output, written with ``deltalake`` for tests.

``write_stream_tables`` appends one commit per micro-batch to ``predictions`` and
``batch_metrics`` (so the tables have several versions), with known labels,
decisions, latencies and timestamps; it returns the frames it wrote so tests can
compute the expected numbers independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

PREDICTION_FEATURES = ["Amount", "V4", "V10", "V12", "V14", "V17"]
BASE_TIME = pd.Timestamp("2024-05-01 12:00:05", tz="UTC")
TS = pa.timestamp("us", tz="UTC")

PREDICTIONS_ARROW = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("probability", pa.float64()),
        ("decision", pa.int32()),
        ("reasons", pa.string()),
        ("label", pa.int32()),
        ("model_version", pa.string()),
        ("source", pa.string()),
        ("event_time", TS),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_timestamp", TS),
        ("scored_at", TS),
        ("batch_id", pa.int64()),
    ]
    + [(f, pa.float64()) for f in PREDICTION_FEATURES]
)
METRICS_ARROW = pa.schema(
    [
        pa.field("batch_id", pa.int64(), False),
        ("model_version", pa.string()),
        pa.field("started_at", TS, False),
        pa.field("committed_at", TS, False),
        pa.field("rows", pa.int64(), False),
        pa.field("quarantined", pa.int64(), False),
        pa.field("flagged", pa.int64(), False),
        pa.field("processing_ms", pa.float64(), False),
        ("latency_p50_ms", pa.float64()),
        ("latency_p90_ms", pa.float64()),
        ("latency_p95_ms", pa.float64()),
        ("latency_p99_ms", pa.float64()),
        ("latency_max_ms", pa.float64()),
        ("rows_per_s", pa.float64()),
        ("kafka_ts_min", TS),
        ("kafka_ts_max", TS),
    ]
)


@dataclass
class StreamTables:
    """What was written: all prediction rows and all batch_metrics rows, plus the paths."""

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    predictions_path: str
    metrics_path: str


def make_batch(
    batch_id: int,
    rows: int,
    scored_at: pd.Timestamp,
    rng: np.random.Generator,
    model_version: str = "1",
    fraud_rate: float = 0.08,
    shift: float = 0.0,
    offset_start: int = 0,
) -> pd.DataFrame:
    """One micro-batch of prediction rows with a known confusion matrix and latencies."""
    label = (rng.random(rows) < fraud_rate).astype("int64")
    prob = np.where(label == 1, rng.beta(3, 2, rows), rng.beta(1.2, 5, rows))
    decision = (prob >= 0.5).astype("int32")
    latency_ms = rng.uniform(20, 3_000, rows)  # Kafka timestamp -> scored_at
    kafka_ts = scored_at - pd.to_timedelta(latency_ms, unit="ms")
    frame = pd.DataFrame(
        {
            "transaction_id": [f"b{batch_id}-r{i}" for i in range(rows)],
            "probability": prob,
            "decision": decision,
            "reasons": [f"V14 ({-p * 3:+.2f}); V4 ({p:+.2f})" if d else None for p, d in zip(prob, decision)],
            "label": pd.array(label, dtype="Int32"),
            "model_version": model_version,
            "source": "generated",
            "event_time": kafka_ts - pd.Timedelta(milliseconds=5),
            "kafka_partition": (np.arange(rows) % 2).astype("int32"),
            "kafka_offset": np.arange(offset_start, offset_start + rows, dtype="int64"),
            "kafka_timestamp": kafka_ts,
            "scored_at": scored_at,
            "batch_id": np.int64(batch_id),
        }
    )
    frame.loc[frame.index[:2], "label"] = pd.NA  # a couple of rows without a replayed label
    for f in PREDICTION_FEATURES:
        frame[f] = rng.normal(shift, 1.0, rows) if f != "Amount" else rng.gamma(2.0, 40.0, rows)
    for c in ("event_time", "kafka_timestamp", "scored_at"):
        frame[c] = frame[c].astype("datetime64[us, UTC]")
    return frame


def metrics_row(batch: pd.DataFrame, processing_ms: float) -> dict:
    """The batch_metrics row of one batch, latencies measured to the commit."""
    started = batch["scored_at"].iloc[0]
    committed = started + pd.Timedelta(milliseconds=processing_ms)
    lat = (committed - batch["kafka_timestamp"]).dt.total_seconds().to_numpy() * 1000
    return {
        "batch_id": int(batch["batch_id"].iloc[0]),
        "model_version": batch["model_version"].iloc[0],
        "started_at": started,
        "committed_at": committed,
        "rows": len(batch),
        "quarantined": 0,
        "flagged": int(batch["decision"].sum()),
        "processing_ms": processing_ms,
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p90_ms": float(np.percentile(lat, 90)),
        "latency_p95_ms": float(np.percentile(lat, 95)),
        "latency_p99_ms": float(np.percentile(lat, 99)),
        "latency_max_ms": float(lat.max()),
        "rows_per_s": len(batch) / (processing_ms / 1000),
        "kafka_ts_min": batch["kafka_timestamp"].min(),
        "kafka_ts_max": batch["kafka_timestamp"].max(),
    }


def append_batch(root: Path, batch: pd.DataFrame, processing_ms: float, with_metrics: bool = True) -> dict:
    """Commit one batch to predictions (and its row to batch_metrics); return the metrics row."""
    write_deltalake(
        str(root / "predictions"),
        pa.Table.from_pandas(batch, schema=PREDICTIONS_ARROW, preserve_index=False),
        mode="append",
    )
    row = metrics_row(batch, processing_ms)
    if with_metrics:
        write_deltalake(str(root / "batch_metrics"), pa.Table.from_pylist([row], schema=METRICS_ARROW), mode="append")
    return row


def write_stream_tables(
    root: Path,
    batches: int = 6,
    rows: int = 150,
    seed: int = 7,
    every_s: float = 50.0,
    versions: tuple[str, ...] = ("1",),
    shift_after: int | None = None,
) -> StreamTables:
    """``batches`` micro-batches, ``every_s`` seconds apart from BASE_TIME, one commit each.

    Batch i is scored by ``versions[i * len(versions) // batches]``; from batch
    ``shift_after`` on, the V-features are shifted by +2 (drift).
    """
    rng = np.random.default_rng(seed)
    frames, metrics = [], []
    offset = 0
    for i in range(batches):
        version = versions[i * len(versions) // batches]
        shift = 2.0 if shift_after is not None and i >= shift_after else 0.0
        batch = make_batch(
            i,
            rows + 7 * i,
            BASE_TIME + pd.Timedelta(seconds=every_s * i),
            rng,
            version,
            shift=shift,
            offset_start=offset,
        )
        offset += len(batch)
        metrics.append(append_batch(root, batch, processing_ms=400.0 + 100 * i))
        frames.append(batch)
    return StreamTables(
        pd.concat(frames, ignore_index=True),
        pd.DataFrame(metrics),
        str(root / "predictions"),
        str(root / "batch_metrics"),
    )


def write_train_table(root: Path, rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    """A ``train`` split table (transaction_id, Time, V1..V28, Amount, Class, source)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"transaction_id": [f"t{i}" for i in range(rows)], "Time": np.arange(rows, dtype="float64")})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(0.0, 1.0, rows)
    frame["Amount"] = rng.gamma(2.0, 40.0, rows)
    frame["Class"] = (rng.random(rows) < 0.01).astype("int32")
    frame["source"] = "generated"
    # Oversampled rows must not enter the drift reference: make them obviously different.
    frame.loc[frame.index[-300:], "source"] = "smote"
    frame.loc[frame.index[-300:], ["V4", "V10", "V12", "V14", "V17"]] = 50.0
    write_deltalake(str(root / "train"), frame, mode="overwrite")
    return frame


@pytest.fixture(scope="session")
def stream_data() -> SimpleNamespace:
    """Stream-shaped tables of an earlier release (no ``query_id``), with known numbers, for the
    monitoring, drift, dashboard and notebook tests."""
    return SimpleNamespace(
        base_time=BASE_TIME,
        features=PREDICTION_FEATURES,
        predictions_schema=PREDICTIONS_ARROW,
        metrics_schema=METRICS_ARROW,
        make_batch=make_batch,
        metrics_row=metrics_row,
        append_batch=append_batch,
        write_stream_tables=write_stream_tables,
        write_train_table=write_train_table,
    )


@pytest.fixture(scope="session")
def dashboard_panels() -> list[str]:
    """The dashboard's panel headers, top to bottom."""
    return ["Totals", "Live quality", "Latency & throughput", "Alerts", "Score distribution", "Drift"]
