"""Streaming benchmark: Kafka -> Spark -> champion pyfunc -> Delta, measured end to end.

Modes:
  capacity  pre-load a backlog (>= 1,000,000 transactions by default), start the stream,
            measure sustained rows/s over the batches after the first (warm-up) one.
  latency   start the stream, warm it up, then offer a fixed rate (e.g. 1,000 tx/s) for a
            measured window; latency = Delta commit time of the row's batch - Kafka timestamp.
  realtime  evaluation of Spark's real-time mode (``trigger(realTime=...)``) for an alerts
            path Kafka -> Kafka: the same offered load through (a) a JVM-only projection and
            (b) the scoring pandas UDF (not on real-time mode's operator allowlist; run with
            the allowlist check off), latency = output record timestamp - input timestamp.
The first two report per-batch processing time, CPU and peak memory of the process tree, the raw
XGBoost scoring ceiling (``inplace_predict`` on the same rows) and a per-message baseline
(one pyfunc call per transaction, like the original design), so results read as ratios.
The last line printed is one JSON object.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psutil
import xgboost as xgb
from deltalake import DeltaTable

from fraud_ml.config import Config
from fraud_ml.data import SyntheticCreditCardGenerator
from fraud_ml.delta_io import accounted_rows
from fraud_ml.kafka_local import LocalKafkaBroker, check_reachable, create_topic, free_port
from fraud_ml.model import load_verified, log_champion
from fraud_ml.producer import replay
from fraud_ml.report import row_latencies_ms
from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL, SOURCE_GENERATED
from fraud_ml.session import build_spark
from fraud_ml.streaming import start_stream
from fraud_ml.tracking import setup_mlflow

log = logging.getLogger(__name__)


@dataclass
class BenchOptions:
    """What one benchmark run does."""

    mode: str = "capacity"            # capacity | latency | realtime
    backlog: int = 1_000_000          # capacity: transactions pre-loaded before the stream starts
    offered_tps: float = 1000.0       # latency: offered load
    warmup_s: float = 15.0            # latency: seconds of load before measuring
    duration_s: float = 40.0          # latency: measured seconds
    trees: int = 300                  # size of the benchmark model
    baseline_rows: int = 2000         # rows for the per-message baseline
    ceiling_rows: int = 200_000       # rows for the raw scoring ceiling


@dataclass
class ResourceSampler:
    """Samples CPU% and RSS of a process tree (driver, JVM, Python workers) in a thread."""

    root_pid: int
    interval_s: float = 0.5
    cpu_samples: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.root_pid)
        return [root, *root.children(recursive=True)]

    def _run(self) -> None:
        procs: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            total_cpu, total_rss = 0.0, 0
            for p in self._tree():
                proc = procs.setdefault(p.pid, p)
                try:
                    total_cpu += proc.cpu_percent(None)
                    total_rss += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.cpu_samples.append(total_cpu)
            self.peak_rss_bytes = max(self.peak_rss_bytes, total_rss)
            self._stop.wait(self.interval_s)

    def start(self) -> "ResourceSampler":
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=5)
        samples = self.cpu_samples[2:] or self.cpu_samples  # first readings of cpu_percent are 0
        return {"cpu_mean_pct": float(np.mean(samples)) if samples else None,
                "cpu_max_pct": float(np.max(samples)) if samples else None,
                "peak_rss_mib": self.peak_rss_bytes / 2**20, "cores": psutil.cpu_count()}


def bench_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """Synthetic transactions with ids (benchmarks measure speed, not model quality)."""
    frame = SyntheticCreditCardGenerator(n_rows=n, fraud_rate=0.0017, seed=seed).generate()
    frame.insert(0, ID_COL, [f"bench-{seed}-{i:08d}" for i in range(n)])
    frame[SOURCE_COL] = SOURCE_GENERATED
    return frame


def train_bench_model(cfg: Config, trees: int) -> tuple[xgb.Booster, str]:
    """Train a ``trees``-tree XGBoost on synthetic rows and register it as the champion."""
    setup_mlflow(cfg)
    frame = SyntheticCreditCardGenerator(n_rows=60_000, fraud_rate=0.01, seed=3).generate()
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=6, learning_rate=0.1, n_jobs=2)
    model.fit(frame[FEATURES], frame[LABEL])
    booster = model.get_booster()
    with mlflow.start_run(run_name=f"bench-xgboost-{trees}"), tempfile.TemporaryDirectory() as tmp:
        champ = log_champion(booster, 0.5, cfg.get("mlflow.model_name"), cfg.get("mlflow.alias"), Path(tmp))
    return booster, champ.model_uri


def scoring_ceiling(booster: xgb.Booster, frame: pd.DataFrame) -> float:
    """Rows/s of booster.inplace_predict on all cores: the best any pipeline could score."""
    x = np.ascontiguousarray(frame[FEATURES].to_numpy(np.float32))
    booster.set_param({"nthread": os.cpu_count() or 1})
    booster.inplace_predict(x[:1000])
    started = time.perf_counter()
    booster.inplace_predict(x)
    return len(x) / (time.perf_counter() - started)


def per_message_baseline(model_uri: str, frame: pd.DataFrame) -> float:
    """Rows/s when every transaction is its own pyfunc call (the original per-message design)."""
    model = load_verified(model_uri)
    rows = [frame[FEATURES].iloc[[i]] for i in range(len(frame))]
    model.predict(rows[0])
    started = time.perf_counter()
    for row in rows:
        model.predict(row)
    return len(rows) / (time.perf_counter() - started)


def _produce_process(cfg_dict: dict, source: str, frame_path: str, rate: float) -> None:
    frame = pd.read_parquet(frame_path)
    replay(frame, Config(cfg_dict, source), rate=rate)


def _wait_rows(cfg: Config, expected: int, timeout_s: float, query) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if query.exception() is not None:
            raise RuntimeError(f"stream failed: {query.exception()}")
        if accounted_rows(cfg.table_path("batch_metrics")) >= expected:
            return
        time.sleep(0.5)
    have = accounted_rows(cfg.table_path("batch_metrics"))
    raise TimeoutError(f"{expected} rows not committed after {timeout_s:.0f}s (have {have})")


def measure(cfg: Config, window_start: pd.Timestamp | None = None, skip_batches: int = 1) -> dict:
    """Throughput and latency from the Delta tables, optionally only for rows after ``window_start``."""
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas(columns=["batch_id", "kafka_timestamp"])
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas().sort_values("batch_id")
    if window_start is not None:
        preds = preds[pd.to_datetime(preds["kafka_timestamp"], utc=True) >= window_start]
        metrics = metrics[metrics["batch_id"].isin(preds["batch_id"].unique())]
    steady = metrics.iloc[skip_batches:] if len(metrics) > skip_batches else metrics
    span = (pd.to_datetime(steady["committed_at"], utc=True).max()
            - pd.to_datetime(steady["started_at"], utc=True).min()).total_seconds()
    latencies = row_latencies_ms(preds, metrics)
    pct = lambda q: float(np.percentile(latencies, q)) if latencies.size else None  # noqa: E731
    return {
        "throughput_tps": float(steady["rows"].sum() / span) if span > 0 else None,
        "measured_window_s": span, "measured_rows": int(steady["rows"].sum()), "batches": int(len(steady)),
        "latency_p50_ms": pct(50), "latency_p90_ms": pct(90), "latency_p95_ms": pct(95), "latency_p99_ms": pct(99),
        "batch_processing_ms_p50": float(steady["processing_ms"].median()) if len(steady) else None,
        "batch_processing_ms_max": float(steady["processing_ms"].max()) if len(steady) else None,
        "batch_rows_mean": float(steady["rows"].mean()) if len(steady) else None,
    }


def run_benchmark(cfg: Config, options: BenchOptions) -> dict:
    """Run one benchmark; return the result dict (also what the job prints as JSON)."""
    if options.mode not in ("capacity", "latency", "realtime"):
        raise ValueError("mode must be capacity, latency or realtime")
    broker = None
    try:
        check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options(), timeout=3)
    except Exception:
        broker = LocalKafkaBroker(jars_dir=Path(cfg.get("kafka.local.jars_dir")),
                                  data_dir=Path(tempfile.mkdtemp(prefix="bench-kafka-")), port=free_port(),
                                  controller_port=free_port(), heap="1g").start()
        cfg = cfg.with_overrides([f"kafka.bootstrap_servers={broker.bootstrap_servers}"], env={})
    sampler = ResourceSampler(os.getpid())
    spark = query = None
    try:
        booster, model_uri = train_bench_model(cfg, options.trees)
        ceiling_frame = bench_frame(options.ceiling_rows, seed=11)
        ceiling = scoring_ceiling(booster, ceiling_frame)
        baseline = per_message_baseline(model_uri, ceiling_frame.head(options.baseline_rows))
        log.info("raw XGBoost ceiling %.0f rows/s; per-message pyfunc baseline %.0f rows/s", ceiling, baseline)
        topic = cfg.get("kafka.topic")
        create_topic(cfg.get("kafka.bootstrap_servers"), topic, cfg.get("kafka.partitions"), 1,
                     cfg.kafka_client_options())
        result: dict = {"mode": options.mode}
        if options.mode == "realtime":
            spark = build_spark(cfg, "fraud-ml-bench-realtime")
            sampler.start()
            result.update(offered_tps=options.offered_tps, latency_p50_ms=None, latency_p99_ms=None,
                          throughput_tps=None)
            for variant in ("jvm_projection", "pandas_udf"):
                result[variant] = realtime_alerts_latency(spark, cfg, variant, options)
            result.update({k: v for k, v in result["pandas_udf"].items() if k.startswith("latency")})
        elif options.mode == "capacity":
            frame = bench_frame(options.backlog)
            started = time.perf_counter()
            produced = replay(frame, cfg, rate=0)
            log.info("pre-loaded %d transactions in %.1fs (%.0f tx/s)", produced.sent, produced.seconds, produced.rate)
            result.update(offered_tps=None, backlog=options.backlog, producer_tps=produced.rate)
            spark = build_spark(cfg, "fraud-ml-bench")
            sampler.start()
            query = start_stream(spark, cfg, available_now=False)
            _wait_rows(cfg, options.backlog, 3600, query)
            result.update(measure(cfg))
            result["stream_wall_s"] = time.perf_counter() - started - produced.seconds
        else:
            spark = build_spark(cfg, "fraud-ml-bench")
            query = start_stream(spark, cfg, available_now=False)
            warm = bench_frame(500, seed=5)
            replay(warm, cfg, rate=0)
            _wait_rows(cfg, len(warm), 600, query)  # Python workers started, model loaded
            total = int(options.offered_tps * (options.warmup_s + options.duration_s))
            frame = bench_frame(total, seed=9)
            with tempfile.TemporaryDirectory() as tmp:
                path = f"{tmp}/frame.parquet"
                frame.to_parquet(path)
                producer = mp.get_context("spawn").Process(
                    target=_produce_process, args=(cfg.as_dict(), cfg.source, path, options.offered_tps))
                window_start = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=options.warmup_s)
                sampler.start()
                producer.start()
                producer.join()
            _wait_rows(cfg, len(warm) + total, 600, query)
            result.update(offered_tps=options.offered_tps, warmup_s=options.warmup_s)
            result.update(measure(cfg, window_start=window_start, skip_batches=0))
        result.update(sampler.stop())
        result.update(scoring_ceiling_tps=ceiling, per_message_baseline_tps=baseline, model_trees=options.trees,
                      kafka_partitions=cfg.get("kafka.partitions"),
                      max_offsets_per_trigger=cfg.get("stream.max_offsets_per_trigger"),
                      trigger_interval=cfg.get("stream.trigger_interval"),
                      arrow_batch_size=cfg.get("spark.arrow_batch_size"), udf=cfg.get("stream.udf"),
                      shuffle_partitions=cfg.get("spark.shuffle_partitions"),
                      deduplicate=cfg.get("stream.deduplicate"),
                      machine=f"{platform.machine()} {psutil.cpu_count()} cores "
                              f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.python_version()}")
        if result.get("throughput_tps"):
            result["ratio_to_ceiling"] = result["throughput_tps"] / ceiling
            result["ratio_to_baseline"] = result["throughput_tps"] / baseline
        return result
    finally:
        if query is not None:
            query.stop()
        if broker is not None:
            if spark is not None:  # its Kafka producers would retry the stopped broker and log
                spark.stop()
            broker.stop()


def realtime_alerts_latency(spark, cfg: Config, variant: str, options: BenchOptions) -> dict:
    """Kafka -> Kafka in real-time mode at ``options.offered_tps``; per-record latency from the output topic."""
    from confluent_kafka import Consumer
    from pyspark.sql import functions as F

    from fraud_ml.messages import ValidationLimits
    from fraud_ml.scoring import MessageScorer
    from fraud_ml.streaming import kafka_source_options
    from fraud_ml.tracking import resolve_alias

    tag = f"{variant}-{int(time.time())}"
    source, sink = f"{cfg.get('kafka.topic')}-rt-{tag}", f"{cfg.get('kafka.topic')}-alerts-{tag}"
    servers = cfg.get("kafka.bootstrap_servers")
    for topic in (source, sink):  # real-time mode runs one long task per partition: keep them <= cores
        create_topic(servers, topic, 2, 1, cfg.kafka_client_options())
    options_ = {**kafka_source_options(cfg.with_overrides([f"kafka.topic={source}"], env={})),
                "startingOffsets": "latest"}
    options_.pop("maxOffsetsPerTrigger", None)
    rows = spark.readStream.format("kafka").options(**options_).load()
    if variant == "pandas_udf":
        spark.conf.set("spark.sql.streaming.realTimeMode.allowlistCheck", "false")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10")
        scorer = MessageScorer(spark, resolve_alias(cfg)[1], "spark_udf", ValidationLimits.from_config(cfg), [], 2)
        scored = scorer._with_spark_udf(rows, int(time.time() * 1000))
    else:
        scored = rows.select(F.col("timestamp").alias("kafka_timestamp"),
                             F.get_json_object(F.col("value").cast("string"), "$.transaction_id").alias("transaction_id"),
                             F.lit(None).cast("double").alias("probability"))
    out = scored.select(F.col("transaction_id").alias("key"),
                        F.to_json(F.struct("transaction_id", "probability",
                                           F.unix_millis("kafka_timestamp").alias("in_ms"))).alias("value"))
    query = (out.writeStream.format("kafka").option("topic", sink)
             .options(**{k: v for k, v in options_.items() if k.startswith("kafka.")})
             .option("checkpointLocation", tempfile.mkdtemp(prefix="bench-rt-")).outputMode("update")
             .trigger(realTime="5 minutes").start())
    latencies: list[float] = []
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"bench-{tag}", "auto.offset.reset": "earliest",
                         **cfg.kafka_client_options()})
    consumer.subscribe([sink])
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    latencies.append(message.timestamp()[1] - json.loads(message.value())["in_ms"])

    reader = threading.Thread(target=consume, daemon=True)
    try:
        time.sleep(10)  # the long-running tasks are up
        reader.start()
        total = int(options.offered_tps * (options.warmup_s + options.duration_s))
        replay(bench_frame(total, seed=13), cfg, topic=source, rate=options.offered_tps)
        time.sleep(10)
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(timeout=5)
        consumer.close()
        query.stop()
        spark.conf.unset("spark.sql.streaming.realTimeMode.allowlistCheck")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.get("spark.arrow_batch_size")))
    measured = np.array(latencies[int(len(latencies) * options.warmup_s / (options.warmup_s + options.duration_s)):])
    pct = lambda q: float(np.percentile(measured, q)) if measured.size else None  # noqa: E731
    log.info("real-time mode, %s: %d of %d records out", variant, len(latencies), total)
    return {"sent": total, "received": len(latencies), "latency_p50_ms": pct(50), "latency_p90_ms": pct(90),
            "latency_p95_ms": pct(95), "latency_p99_ms": pct(99)}


def format_result(result: dict) -> str:
    """Human-readable lines followed by the JSON line."""
    lines = [f"{k:>26}: {v:,.1f}" if isinstance(v, float) else f"{k:>26}: {v}" for k, v in result.items()]
    return "\n".join(lines + [json.dumps(result, default=str)])
