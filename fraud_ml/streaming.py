"""Kafka -> champion pyfunc -> Delta, exactly once.

Each micro-batch is handled in ``foreachBatch`` by ``MicroBatchWriter``: one
pandas UDF decodes, validates and scores the Kafka values (``fraud_ml.messages``,
``fraud_ml.scoring.MessageScorer``), repeated transaction ids are marked, then it
appends ``predictions``, ``quarantine`` (messages that cannot be scored, with raw
bytes, Kafka coordinates and a reason) and one ``batch_metrics`` row. Every commit
is tagged with (``stream.app_id``, batch id), so a batch replayed from the
checkpoint after a crash finds its commits and is not written twice
(``fraud_ml.delta_io.append_idempotent``).
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import Observation
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from fraud_ml.config import Config
from fraud_ml.delta_io import (append_idempotent, append_rows_idempotent, append_tagged, batch_committed,
                               files_with_rows_since)
from fraud_ml.kafka_local import check_reachable
from fraud_ml.messages import REASON, ValidationLimits
from fraud_ml.schema import BATCH_METRICS_SCHEMA, FEATURES, ID_COL, MESSAGE_EVENT_TIME, MESSAGE_LABEL, SOURCE_COL
from fraud_ml.scoring import MessageScorer, with_decoded
from fraud_ml.tracking import champion_uri, resolve_alias, setup_mlflow

log = logging.getLogger(__name__)

_LATENCY_QUANTILES = (0.50, 0.90, 0.95, 0.99)


def validation_limits(cfg: Config) -> ValidationLimits:
    """The quarantine bounds configured under ``stream.``."""
    return ValidationLimits(cfg.get("stream.max_message_bytes"), cfg.get("stream.max_abs_feature"),
                            cfg.get("stream.max_amount"))


def kafka_source_options(cfg: Config) -> dict[str, str]:
    """Options of the Spark Kafka source, security settings prefixed with ``kafka.``."""
    options = {
        "kafka.bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
        "subscribe": cfg.get("kafka.topic"),
        "startingOffsets": cfg.get("stream.starting_offsets"),
        "failOnDataLoss": str(cfg.get("stream.fail_on_data_loss")).lower(),
        "maxOffsetsPerTrigger": str(cfg.get("stream.max_offsets_per_trigger")),
    }
    if cfg.get("stream.min_partitions"):
        options["minPartitions"] = str(cfg.get("stream.min_partitions"))
    options.update({str(k): str(v) for k, v in (cfg.get("stream.source_options") or {}).items()})
    options.update({f"kafka.{k}": v for k, v in cfg.kafka_java_options().items()})
    return options


def read_kafka_stream(spark: SparkSession, cfg: Config) -> DataFrame:
    """The raw Kafka stream (key, value, topic, partition, offset, timestamp, ...)."""
    return spark.readStream.format("kafka").options(**kafka_source_options(cfg)).load()


def kafka_rows(raw: DataFrame) -> DataFrame:
    """The Kafka source's columns under the names the tables use (``value`` stays raw bytes)."""
    return raw.select(
        F.col("key").cast("string").alias("key"), F.col("value"),
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("timestamp").alias("kafka_timestamp"),
    )


def parse_transactions(raw: DataFrame, limits: ValidationLimits = ValidationLimits()) -> DataFrame:
    """Kafka rows -> message fields plus a ``reason`` column (null = valid); no scoring.

    Decoding and validation happen in Python (``fraud_ml.messages``, one pandas UDF);
    the reasons and their order are documented there. ``value`` is kept as ``raw_value``.
    """
    return with_decoded(kafka_rows(raw), limits).withColumnRenamed("value", "raw_value")


def mark_duplicates(parsed: DataFrame, already_scored: DataFrame | None = None) -> DataFrame:
    """Give repeated transaction ids a ``reason`` so they are recorded, not scored twice.

    Within the batch the first occurrence (lowest partition, offset) is kept; ids
    found in ``already_scored`` (transaction_id, batch_id of earlier batches) are
    duplicates of a row scored before.
    """
    valid = F.col(REASON).isNull()
    window = Window.partitionBy(ID_COL).orderBy("kafka_partition", "kafka_offset")
    df = parsed.withColumn("_occurrence", F.when(valid, F.row_number().over(window)))
    reason = F.when(valid & (F.col("_occurrence") > 1), F.lit("duplicate transaction_id: repeated within the batch"))
    if already_scored is not None:
        seen = already_scored.select(F.col(ID_COL), F.col("batch_id").alias("_seen_in")).dropDuplicates([ID_COL])
        df = df.join(seen, ID_COL, "left")
        reason = reason.when(valid & F.col("_seen_in").isNotNull(),
                             F.concat(F.lit("duplicate transaction_id: already scored in batch "), F.col("_seen_in")))
    columns = [c for c in parsed.columns]
    return df.withColumn(REASON, reason.otherwise(F.col(REASON))).select(*columns)


def prediction_rows(scored: DataFrame, model_version: str, batch_id: int, scored_at: datetime,
                    keep_features: list[str]) -> DataFrame:
    """Rows of the ``predictions`` table for the valid messages of a scored batch."""
    return scored.filter(F.col(REASON).isNull()).select(
        F.col(ID_COL),
        F.col("probability"), F.col("decision"), F.col("reasons"),
        F.col(MESSAGE_LABEL).alias("label"),
        F.lit(str(model_version)).alias("model_version"),
        F.col(SOURCE_COL),
        F.timestamp_millis(F.col(MESSAGE_EVENT_TIME)).alias("event_time"),
        F.col("kafka_partition"), F.col("kafka_offset"), F.col("kafka_timestamp"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(int(batch_id)).cast("long").alias("batch_id"),
        *[F.col(c) for c in keep_features],
    )


def quarantine_rows(scored: DataFrame, batch_id: int, at: datetime) -> DataFrame:
    """Rows of the ``quarantine`` table: raw bytes, Kafka coordinates and the reason."""
    return scored.filter(F.col(REASON).isNotNull()).select(
        F.lit(int(batch_id)).cast("long").alias("batch_id"), "kafka_topic", "kafka_partition", "kafka_offset",
        "kafka_timestamp", "key", F.col("value").alias("raw_value"), F.col(REASON).alias("reason"),
        F.lit(at).cast("timestamp").alias("quarantined_at"),
    )


def observe_batch(scored: DataFrame, name: str) -> tuple[DataFrame, Observation]:
    """Attach counts and Kafka-timestamp quantiles to ``scored``; filled by the write that consumes it.

    This keeps a micro-batch to one pass over Kafka: no cache, no separate count job.
    """
    valid = F.col(REASON).isNull()
    ts_ms = F.when(valid, F.unix_millis(F.col("kafka_timestamp")))
    lower_quantiles = [round(1 - q, 4) for q in _LATENCY_QUANTILES]  # latency p99 <- oldest 1% of timestamps
    observation = Observation(name)
    observed = scored.observe(
        observation,
        F.count(F.when(valid, 1)).alias("rows"),
        F.count(F.when(~valid, 1)).alias("quarantined"),
        F.count(F.when(valid & (F.col("decision") == 1), 1)).alias("flagged"),
        F.percentile_approx(ts_ms, lower_quantiles, 10000).alias("ts_quantiles"),
        F.min(ts_ms).alias("ts_min"), F.max(ts_ms).alias("ts_max"),
    )
    return observed, observation


def metrics_row(stats: dict, batch_id: int, model_version: str, started: float, committed: float) -> tuple:
    """One ``batch_metrics`` row (see BATCH_METRICS_SCHEMA) from batch statistics and wall-clock times."""
    committed_ms = committed * 1000.0
    processing_ms = (committed - started) * 1000.0
    latencies = [committed_ms - t for t in stats["ts_quantiles"]] if stats["ts_quantiles"] else [None] * 4
    utc = timezone.utc
    return (
        int(batch_id), str(model_version), datetime.fromtimestamp(started, utc), datetime.fromtimestamp(committed, utc),
        int(stats["rows"]), int(stats["quarantined"]), int(stats["flagged"]), processing_ms,
        *latencies, (committed_ms - stats["ts_min"]) if stats["ts_min"] is not None else None,
        stats["rows"] / (processing_ms / 1000.0) if processing_ms > 0 else None,
        datetime.fromtimestamp(stats["ts_min"] / 1000.0, utc) if stats["ts_min"] is not None else None,
        datetime.fromtimestamp(stats["ts_max"] / 1000.0, utc) if stats["ts_max"] is not None else None,
    )


class MicroBatchWriter:
    """The ``foreachBatch`` function: score one micro-batch and append it exactly once."""

    def __init__(self, cfg: Config, scorer: MessageScorer, model_version: str) -> None:
        self.scorer = scorer
        self.model_version = model_version
        self.app_id = cfg.get("stream.app_id")
        self.keep_features = scorer.keep_features
        self.paths = {t: cfg.table_path(t) for t in ("predictions", "quarantine", "batch_metrics")}
        self.deduplicate = cfg.get("stream.deduplicate")
        self.lookback_minutes = cfg.get("stream.dedupe_lookback_minutes")

    def already_scored(self, spark: SparkSession, batch_id: int, now: datetime) -> DataFrame | None:
        """Ids scored by earlier batches within the look-back window (None if disabled or nothing to check).

        Only the data files whose ``scored_at`` statistics reach into the window are
        read, as plain Parquet (no Delta snapshot job per batch). Rows of this same
        batch id are excluded: after a crash the batch is replayed, and its own
        earlier (skipped) write must not count as a duplicate.
        """
        if self.lookback_minutes <= 0:
            return None
        since = datetime.fromtimestamp(now.timestamp() - 60.0 * self.lookback_minutes, timezone.utc)
        files = files_with_rows_since(self.paths["predictions"], "scored_at", since)
        if not files:
            return None
        return (spark.read.schema(f"{ID_COL} string, batch_id long, scored_at timestamp").parquet(*files)
                .filter((F.col("batch_id") < batch_id) & (F.col("scored_at") >= F.lit(since)))
                .select(ID_COL, "batch_id"))

    def scored(self, batch_df: DataFrame, batch_id: int, now: datetime, keep_raw: bool = True) -> DataFrame:
        """Decode, validate, score and mark duplicates of one micro-batch (lazy).

        ``keep_raw=False`` drops the raw bytes of valid rows before the duplicate check
        shuffles the batch (only quarantined rows need them).
        """
        scored = self.scorer(kafka_rows(batch_df))
        if not keep_raw:
            scored = scored.withColumn("value", F.when(F.col(REASON).isNotNull(), F.col("value")))
        if self.deduplicate:
            scored = mark_duplicates(scored, self.already_scored(batch_df.sparkSession, batch_id, now))
        return scored

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.time()
        started_at = datetime.fromtimestamp(started, timezone.utc)
        scored, observation = observe_batch(self.scored(batch_df, batch_id, started_at, keep_raw=False),
                                            f"{self.app_id}-{batch_id}-{uuid.uuid4().hex[:8]}")
        predictions = prediction_rows(scored, self.model_version, batch_id, started_at, self.keep_features)
        if batch_committed(self.paths["predictions"], self.app_id, batch_id):
            # A replay after a crash between this batch's commits: a skipped write would never
            # run the query and the observation would never fill. Run it once, write nothing.
            log.warning("batch %d already in predictions: recomputing its statistics only", batch_id)
            predictions.write.format("noop").mode("overwrite").save()
        else:
            append_tagged(predictions, self.paths["predictions"], self.app_id, batch_id)
        committed = time.time()
        stats = observation.get
        if stats["quarantined"]:  # rare: a second pass over the batch for the rows that failed
            append_idempotent(quarantine_rows(self.scored(batch_df, batch_id, started_at), batch_id, started_at),
                              self.paths["quarantine"], self.app_id, batch_id)
        if stats["rows"] or stats["quarantined"]:
            row = metrics_row(stats, batch_id, self.model_version, started, committed)
            append_rows_idempotent([row], BATCH_METRICS_SCHEMA, self.paths["batch_metrics"], self.app_id, batch_id)
        log.info("batch %d: %d scored, %d flagged, %d quarantined in %.0f ms", batch_id, stats["rows"],
                 stats["flagged"], stats["quarantined"], (committed - started) * 1000)


def start_stream(spark: SparkSession, cfg: Config, available_now: bool | None = None) -> StreamingQuery:
    """Resolve the champion, build the scoring UDF and start the query."""
    check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options())
    setup_mlflow(cfg)
    version, pinned_uri = resolve_alias(cfg)
    log.info("scoring with %s (version %s of %s)", champion_uri(cfg), version, cfg.get("mlflow.model_name"))
    scorer = MessageScorer(spark, pinned_uri, cfg.get("stream.udf"), validation_limits(cfg),
                           [c for c in cfg.get("stream.prediction_features") if c in FEATURES])
    writer = MicroBatchWriter(cfg, scorer, version)
    if available_now is None:
        available_now = cfg.get("stream.trigger") == "available_now"
    trigger = {"availableNow": True} if available_now else {"processingTime": cfg.get("stream.trigger_interval")}
    query = (read_kafka_stream(spark, cfg).writeStream
             .queryName(cfg.get("stream.app_id"))
             .foreachBatch(writer)
             .option("checkpointLocation", cfg.get("stream.checkpoint_dir"))
             .trigger(**trigger)
             .start())
    log.info("stream '%s' started (%s), checkpoint %s", cfg.get("stream.app_id"),
             "availableNow" if available_now else f"every {cfg.get('stream.trigger_interval')}",
             cfg.get("stream.checkpoint_dir"))
    return query


def run_stream(spark: SparkSession, cfg: Config, available_now: bool | None = None,
               timeout_s: float | None = None) -> None:
    """Run the scoring query until it finishes (availableNow), times out, or is interrupted."""
    query = start_stream(spark, cfg, available_now)
    try:
        query.awaitTermination(timeout_s)
    except KeyboardInterrupt:
        log.info("interrupted: stopping the stream")
    finally:
        if query.isActive:
            query.stop()
    if query.exception() is not None:
        raise query.exception()
