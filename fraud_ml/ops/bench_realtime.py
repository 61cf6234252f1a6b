"""Spark real-time mode (``trigger(realTime=...)``) for an alerts path, Kafka -> Kafka (``--mode realtime``).

The same offered load through (a) a JVM-only projection and (b) the scoring UDFs (not on
real-time mode's operator allowlist; run with the allowlist check off); latency = output
record timestamp - input Kafka timestamp, read back by a consumer.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time

import numpy as np

from fraud_ml.config import Config
from fraud_ml.io.kafka import create_topic
from fraud_ml.streaming.producer import replay

log = logging.getLogger(__name__)


def realtime_alerts_latency(spark, cfg: Config, variant: str, options) -> dict:
    """Kafka -> Kafka in real-time mode at ``options.offered_tps``; per-record latency from the output topic."""
    from confluent_kafka import Consumer
    from pyspark.sql import functions as F

    from fraud_ml.io.mlflow import resolve_alias
    from fraud_ml.streaming.batch_scoring import kafka_source_options
    from fraud_ml.streaming.messages import ValidationLimits
    from fraud_ml.streaming.scoring import MessageScorer

    tag = f"{variant}-{int(time.time())}"
    source, sink = f"{cfg.get('kafka.topic')}-rt-{tag}", f"{cfg.get('kafka.topic')}-alerts-{tag}"
    servers = cfg.get("kafka.bootstrap_servers")
    for topic in (source, sink):  # real-time mode runs one long task per partition: keep them <= cores
        create_topic(servers, topic, 2, 1, cfg.kafka_client_options())
    options_ = {
        **kafka_source_options(cfg.with_overrides([f"kafka.topic={source}"], env={})),
        "startingOffsets": "latest",
    }
    options_.pop("maxOffsetsPerTrigger", None)
    rows = spark.readStream.format("kafka").options(**options_).load()
    if variant == "pandas_udf":
        spark.conf.set("spark.sql.streaming.realTimeMode.allowlistCheck", "false")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10")
        scorer = MessageScorer(spark, resolve_alias(cfg)[1], "spark_udf", ValidationLimits.from_config(cfg), [], 2)
        scored = scorer._with_spark_udf(rows, int(time.time() * 1000))
    else:
        scored = rows.select(
            F.col("timestamp").alias("kafka_timestamp"),
            F.get_json_object(F.col("value").cast("string"), "$.transaction_id").alias("transaction_id"),
            F.lit(None).cast("double").alias("probability"),
        )
    out = scored.select(
        F.col("transaction_id").alias("key"),
        F.to_json(F.struct("transaction_id", "probability", F.unix_millis("kafka_timestamp").alias("in_ms"))).alias(
            "value"
        ),
    )
    query = (
        out.writeStream.format("kafka")
        .option("topic", sink)
        .options(**{k: v for k, v in options_.items() if k.startswith("kafka.")})
        .option("checkpointLocation", tempfile.mkdtemp(prefix="bench-rt-"))
        .outputMode("update")
        .trigger(realTime="5 minutes")
        .start()
    )
    latencies: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"bench-{tag}",
            "auto.offset.reset": "earliest",
            **cfg.kafka_client_options(),
        }
    )
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
        from fraud_ml.ops.bench import bench_frame

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
    measured = np.array(latencies[int(len(latencies) * options.warmup_s / (options.warmup_s + options.duration_s)) :])
    pct = lambda q: float(np.percentile(measured, q)) if measured.size else None  # noqa: E731
    log.info("real-time mode, %s: %d of %d records out", variant, len(latencies), total)
    return {
        "sent": total,
        "received": len(latencies),
        "latency_p50_ms": pct(50),
        "latency_p90_ms": pct(90),
        "latency_p95_ms": pct(95),
        "latency_p99_ms": pct(99),
    }
