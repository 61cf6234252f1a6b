"""The measured lines of ``make bench``: the project's stream and its reference lines.

Each line runs in its own spawned Python process (so its own JVM: none inherits another's
warmed-up JIT) against the same broker, topic and registered model:

* ``stream``: the project's scoring stream (``start_stream``, defaults of the config);
* ``floor``: Spark's Kafka source -> Delta append of the raw key/value/timestamp, the
  same trigger and batch size: what Spark alone costs to move these messages into Delta;
* ``read_floor``: Spark's Kafka source -> ``noop`` sink (reading only);
* ``peer``: a plain single-process Python loop, at least once: confluent-kafka consume ->
  ``decode_messages`` -> ``inplace_predict`` -> ``deltalake`` append -> commit the offsets.

Spark lines take throughput from the query's progress reports (rows of the batches after
the first / from the second batch's trigger to the last one's end); latency comes from the
tables: a row's Delta commit minus its Kafka timestamp.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_ml.config import Config
from fraud_ml.io.delta import open_table
from fraud_ml.ops.report import row_latencies_ms
from fraud_ml.ops.waiting import wait_until

log = logging.getLogger(__name__)

LINES = ("stream", "floor", "read_floor", "peer")


def progress_throughput(progress: list[dict]) -> dict:
    """Rows/s of a Spark query from its progress reports, the first batch with data left out."""
    batches = [p for p in progress if p["numInputRows"]][1:]
    if not batches:
        return {"throughput_tps": None, "batches": 0}
    start = pd.Timestamp(batches[0]["timestamp"])
    last = batches[-1]
    end = pd.Timestamp(last["timestamp"]) + pd.Timedelta(milliseconds=last["durationMs"]["triggerExecution"])
    rows = sum(p["numInputRows"] for p in batches)
    return {
        "throughput_tps": rows / (end - start).total_seconds(),
        "batches": len(batches),
        "batch_ms_p50": float(np.median([p["durationMs"]["triggerExecution"] for p in batches])),
        "measured_rows": int(rows),
    }


def trigger_stages_ms(progress: list[dict]) -> dict[str, float]:
    """Median ms of each of Spark's trigger stages (``durationMs``: latestOffset, queryPlanning,
    walCommit, addBatch = our foreachBatch, commitOffsets, triggerExecution) over batches with rows."""
    batches = [p["durationMs"] for p in progress if p["numInputRows"]]
    stages = sorted({k for d in batches for k in d})
    return {k: float(np.median([d[k] for d in batches if k in d])) for k in stages}


# ----------------------------------------------------------------------------- lines
def stream_line(cfg: Config, expected: int, offered: dict | None, ready) -> dict:
    """The project's stream: capacity over a pre-loaded backlog, or latency under an offered load."""
    from fraud_ml.io.spark import build_spark
    from fraud_ml.streaming.query import start_stream, stream_config

    cfg = stream_config(cfg)
    spark = build_spark(cfg, "fraud-ml-bench")
    stream = start_stream(spark, cfg, available_now=False)
    measure_from = ready()
    try:
        # The writer's own count: polling the batch_metrics table from here took the GIL from the
        # stream's batches (py-spy: more of the driver's samples than foreachBatch itself).
        wait_until(
            lambda: stream.writer.accounted_rows >= expected,
            3600,
            "the stream to commit every message",
            stream.exception,
        )
        progress = stream.query.recentProgress
        out = progress_throughput(progress) if offered is None else {}
        out["spark_ms_p50"] = trigger_stages_ms(progress)
    finally:
        stream.stop()
    preds = open_table(cfg.table_path("predictions")).to_pandas(columns=["query_id", "batch_id", "kafka_timestamp"])
    metrics = open_table(cfg.table_path("batch_metrics")).to_pandas()
    if offered is not None:
        preds = preds[pd.to_datetime(preds["kafka_timestamp"], utc=True) >= measure_from]
        window = metrics[metrics["batch_id"].isin(preds["batch_id"].unique())]
        span = (window["committed_at"].max() - window["started_at"].min()).total_seconds()
        out["throughput_tps"] = len(preds) / span if span > 0 else None
        out["batch_ms_p50"] = float(window["processing_ms"].median())
    latency = row_latencies_ms(preds, metrics)
    out.update(latency_summary(latency))
    out["stage_ms_p50"] = {s: float(metrics[f"{s}_ms"].median()) for s in ("score", "route", "write")}
    return out


def spark_floor_line(cfg: Config, expected: int, sink: str) -> dict:
    """Spark's Kafka source into Delta (raw key/value/timestamp) or into ``noop``, same trigger and batch size."""
    from fraud_ml.io.spark import build_spark
    from fraud_ml.streaming.batch_scoring import read_kafka_stream

    spark = build_spark(cfg, f"fraud-ml-bench-{sink}")
    writer = (
        read_kafka_stream(spark, cfg)
        .select("key", "value", "timestamp")
        .writeStream.option("checkpointLocation", cfg.get("stream.checkpoint_dir"))
        .trigger(processingTime=cfg.get("stream.trigger_interval"))
    )
    raw_table = str(Path(cfg.get("delta.root")) / "raw")
    query = writer.format("delta").start(raw_table) if sink == "delta" else writer.format("noop").start()
    try:
        wait_until(
            lambda: sum(p["numInputRows"] for p in query.recentProgress) >= expected,
            3600,
            f"the {sink} floor to read every message",
            query.exception,
        )
        return progress_throughput(query.recentProgress)
    finally:
        query.stop()


def peer_line(cfg: Config, expected: int, offered: dict | None, ready) -> dict:
    """A plain Python loop, at least once: consume -> decode -> inplace_predict -> deltalake append -> commit."""
    import pyarrow as pa
    from confluent_kafka import Consumer
    from deltalake import write_deltalake

    from fraud_ml.io.mlflow import load_verified, resolve_alias, setup_mlflow
    from fraud_ml.schema import FEATURES, ID_COL
    from fraud_ml.streaming.contract import MessageContract
    from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages

    setup_mlflow(cfg)
    booster = load_verified(resolve_alias(cfg)[1]).unwrap_python_model().booster
    booster.set_param({"nthread": os.cpu_count() or 1})
    limits = ValidationLimits.from_config(cfg)
    contract = MessageContract.from_config(cfg)
    consumer = Consumer(
        {
            "bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
            "group.id": f"peer-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **{str(k): str(v) for k, v in (cfg.get("stream.librdkafka_options") or {}).items()},
            **cfg.kafka_client_options(),
        }
    )
    consumer.subscribe([cfg.get("kafka.topic")])
    path = str(Path(cfg.get("delta.root")) / "peer_predictions")
    measure_from_ms = ready().timestamp() * 1000
    done, first, latencies = 0, None, []
    deadline = time.monotonic() + 3600
    while done < expected and time.monotonic() < deadline:
        messages = [m for m in consumer.consume(10_000, timeout=0.1) if m.error() is None]
        if not messages:
            continue
        first = first or time.monotonic()
        decoded = decode_messages(
            [m.value() for m in messages],
            limits,
            contract=contract,
            keys=[m.key() for m in messages],
            timestamps_ms=[m.timestamp()[1] for m in messages],
        )
        valid = decoded[REASON].isna().to_numpy()
        x = np.ascontiguousarray(decoded.loc[valid, FEATURES].to_numpy(np.float32))
        probability = booster.inplace_predict(x) if len(x) else np.empty(0)
        write_deltalake(
            path,
            pa.table(
                {ID_COL: decoded.loc[valid, ID_COL].to_numpy(object), "probability": probability.astype(np.float64)}
            ),
            mode="append",
        )
        consumer.commit(asynchronous=False)
        if offered is not None:
            committed_ms = time.time() * 1000
            stamps = np.array([m.timestamp()[1] for m in messages], dtype=np.float64)
            keep = stamps >= measure_from_ms
            latencies.extend((committed_ms - stamps[keep]).tolist())
        done += len(messages)
    seconds = time.monotonic() - first
    consumer.close()
    out = {"throughput_tps": done / seconds if offered is None else None}
    out.update(latency_summary(np.asarray(latencies)))
    return out


def latency_summary(values: np.ndarray) -> dict:
    """``latency_p50/p90/p99/max_ms`` of per-row latencies (None when there are none)."""
    pct = (lambda q: float(np.percentile(values, q))) if len(values) else (lambda q: None)
    return {
        "latency_p50_ms": pct(50),
        "latency_p90_ms": pct(90),
        "latency_p99_ms": pct(99),
        "latency_max_ms": float(values.max()) if len(values) else None,
    }


def run_line(line: str, cfg_dict: dict, cfg_source: str, expected: int, offered: dict | None, results) -> None:
    """Entry point of a spawned process: run one line, put ``(line, result)`` on the ``results`` queue."""
    from fraud_ml.logs import setup_logging

    cfg = Config(cfg_dict, cfg_source)
    setup_logging(cfg.get("project.log_level"))

    def ready() -> pd.Timestamp:
        """Tell the parent this line is up; return when its measured window starts (latency mode)."""
        results.put(("ready", None))
        return pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=offered["warmup_s"] if offered else 0)

    try:
        if line == "stream":
            result = stream_line(cfg, expected, offered, ready if offered is not None else lambda: None)
        elif line == "peer":
            result = peer_line(
                cfg, expected, offered, ready if offered is not None else lambda: pd.Timestamp.now(tz="UTC")
            )
        else:
            result = spark_floor_line(cfg, expected, "delta" if line == "floor" else "noop")
        results.put(("result", result))
    except BaseException as exc:  # the parent reports it; a line that fails must not hang the benchmark
        results.put(
            ("result", {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"})
        )
        raise
