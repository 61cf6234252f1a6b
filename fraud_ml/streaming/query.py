"""Kafka -> champion pyfunc -> Delta, exactly once, whatever the messages hold.

Each micro-batch runs in ``foreachBatch`` (:class:`MicroBatchWriter`):

1. one Spark job reads the batch's Kafka rows and scores them in a ``mapInArrow``
   function on the Python workers (decode, validate, champion pyfunc; fraud_ml.streaming.scoring),
   collected to the driver as Arrow (about 100 bytes a message: raw bytes travel only for
   refused ones);
2. the driver routes every message to ``predictions`` or ``quarantine`` (reasons,
   duplicate ids against the recent ids it holds; fraud_ml.streaming.routing);
3. the driver appends ``predictions``, ``quarantine`` and one ``batch_metrics`` row with
   ``deltalake``, each commit tagged with the query id, batch id and what the batch was
   decided on (fraud_ml.io.delta), then Spark commits the Kafka offsets.

A batch replayed after a crash finds its own commits, reuses their pinned start time,
look-back bound and model version, and writes only what is missing. A lease
(fraud_ml.streaming.lease) keeps a second live query with the same ``stream.app_id`` off the tables.
``FRAUD_ML_FAULT_AT=<point>:<batch id>`` kills the driver at ``after_predictions``,
``after_quarantine`` or ``after_batch_metrics`` of that batch (the fault tests use it).
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, StreamConflictError, StreamStateError
from fraud_ml.io.delta import BatchTag, Maintenance, StreamTable
from fraud_ml.io.kafka import check_reachable
from fraud_ml.io.mlflow import champion_uri, resolve_alias, setup_mlflow
from fraud_ml.schema import FEATURES, ID_COL
from fraud_ml.streaming.kafka_source import SOURCE_NAME, SourceSettings, fetch_records
from fraud_ml.streaming.kafka_source import register as register_source
from fraud_ml.streaming.lease import StreamLease
from fraud_ml.streaming.messages import ValidationLimits
from fraud_ml.streaming.recent_ids import RecentIds
from fraud_ml.streaming.routing import (
    BATCH_METRICS_SCHEMA,
    QUARANTINE_SCHEMA,
    RoutedBatch,
    metrics_row,
    predictions_schema,
    route_batch,
    with_raw,
)
from fraud_ml.streaming.scoring import (
    KAFKA_SPARK_DDL,
    MODEL_PROPERTY,
    MessageScorer,
    scored_schema,
    ship_model,
    spark_ddl,
    warm_up,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

FAULT_ENV = "FRAUD_ML_FAULT_AT"
FAULT_POINTS = ("after_predictions", "after_quarantine", "after_batch_metrics")
OUTPUT_TABLES = ("predictions", "quarantine", "batch_metrics")
READERS = ("librdkafka", "spark_kafka")


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


def read_kafka_stream(spark, cfg: Config):
    """The raw Kafka stream (key, value, topic, partition, offset, timestamp, ...)."""
    return spark.readStream.format("kafka").options(**kafka_source_options(cfg)).load()


def fault_point(point: str, batch_id: int) -> None:
    """Kill this driver (and its JVM) here when ``FRAUD_ML_FAULT_AT`` names this point and batch."""
    wanted = os.environ.get(FAULT_ENV, "")
    if wanted and wanted == f"{point}:{batch_id}":
        log.error("fault injection: killing the driver %s of batch %d", point, batch_id)
        logging.shutdown()
        if os.getpgrp() == os.getpid():  # our own process group (the fault tests start one): take the JVM too
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def stream_tables(cfg: Config, keep_features: list[str]) -> dict[str, StreamTable]:
    """The stream's output tables, each with its schema, table properties and maintenance."""
    m = cfg.get("stream.maintenance")
    maintenance = Maintenance(int(m["compact_every_commits"]), int(m["target_file_mb"]), int(m["concurrent_tasks"]),
                              bool(m["vacuum"]))
    properties = cfg.get("stream.table_properties") or {}
    schemas = {"predictions": predictions_schema(keep_features), "quarantine": QUARANTINE_SCHEMA,
               "batch_metrics": BATCH_METRICS_SCHEMA}
    return {name: StreamTable(cfg.table_path(name), schemas[name], properties, maintenance) for name in OUTPUT_TABLES}


def lease_folder(cfg: Config) -> str:
    """Where the app-id leases live: ``<delta.root>/_stream_leases`` (a file system path)."""
    root = cfg.get("delta.root")
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(f"delta.root '{root}' is not a file system path: the stream lease (fraud_ml.streaming.lease) "
                          "needs the tables on a shared file system (docs/cluster.md)")
    return str(Path(root.removeprefix("file://")) / "_stream_leases")


class Scoring:
    """How a micro-batch becomes scored rows, by ``stream.reader`` and ``stream.udf``.

    * ``librdkafka`` + ``arrow`` (default): the ``fraud_kafka`` source reads and scores in the
      same tasks; the batch DataFrame already holds scored rows.
    * otherwise the batch holds Kafka rows (Spark's Kafka source, or ``fraud_kafka`` in raw
      mode) and a :class:`MessageScorer` scores them (mapInArrow, or decode UDF + spark_udf).

    Each model version is shipped to the executors once; a replayed batch asks for the version
    its first attempt pinned (``MODEL_PROPERTY`` names it for the fused source's tasks).
    """

    def __init__(self, spark, cfg: Config, keep_features: list[str]) -> None:
        self.spark, self.cfg, self.keep_features = spark, cfg, keep_features
        self.reader, self.udf = cfg.get("stream.reader"), cfg.get("stream.udf")
        if self.reader not in READERS:
            raise ConfigError(f"stream.reader must be one of {READERS}, got '{self.reader}'")
        self.fused = self.reader == "librdkafka" and self.udf == "arrow"
        self.limits = ValidationLimits.from_config(cfg)
        self.tasks = cfg.get("stream.tasks_per_batch") or spark.sparkContext.defaultParallelism
        self._shipped: dict[str, str] = {}
        self._scorers: dict[str, MessageScorer] = {}

    def _uri(self, version: str) -> str:
        return f"models:/{self.cfg.get('mlflow.model_name')}/{version}"

    def shipped(self, version: str) -> str:
        if version not in self._shipped:
            self._shipped[version] = ship_model(self.spark, self._uri(version))
        return self._shipped[version]

    def scorer(self, version: str) -> MessageScorer:
        if version not in self._scorers:
            shipped = self.shipped(version) if self.udf == "arrow" else None
            self._scorers[version] = MessageScorer(self.spark, self._uri(version), self.udf, self.limits,
                                                   self.keep_features, self.tasks, shipped)
        return self._scorers[version]

    def warm_up(self, version: str) -> None:
        """Load the model in the Python workers before the first micro-batch needs it."""
        if self.udf == "arrow":
            warm_up(self.spark, self.shipped(version), self.tasks)

    def source_settings(self, version: str | None = None) -> SourceSettings:
        """The ``fraud_kafka`` source's settings; with a ``version`` (fused scoring) its model and limits too."""
        cfg = self.cfg
        settings = SourceSettings(
            bootstrap_servers=cfg.get("kafka.bootstrap_servers"), topic=cfg.get("kafka.topic"),
            starting_offsets=cfg.get("stream.starting_offsets"),
            max_offsets_per_trigger=int(cfg.get("stream.max_offsets_per_trigger")),
            fail_on_data_loss=bool(cfg.get("stream.fail_on_data_loss")), tasks=int(self.tasks),
            fetch_timeout_s=float(cfg.get("stream.fetch_timeout_seconds")),
            records_per_batch=int(cfg.get("spark.arrow_batch_size")), keep_features=tuple(self.keep_features),
            schema_ddl=KAFKA_SPARK_DDL)
        if version is None:
            return settings
        return replace(settings, mode="score", shipped_model=self.shipped(version), limits=asdict(self.limits),
                       schema_ddl=spark_ddl(scored_schema(self.keep_features)))

    def client_options(self) -> dict[str, str]:
        return {**{str(k): str(v) for k, v in (self.cfg.get("stream.librdkafka_options") or {}).items()},
                **self.cfg.kafka_client_options()}

    def read_stream(self, version: str):
        """The streaming DataFrame the query runs on."""
        if self.reader == "spark_kafka":
            return read_kafka_stream(self.spark, self.cfg)
        register_source(self.spark)
        options = self.source_settings(version if self.fused else None).options(self.client_options())
        return self.spark.readStream.format(SOURCE_NAME).options(**options).load()

    def scored(self, batch_df, version: str):
        """The micro-batch's scored rows on the driver (Arrow), scored with model ``version``."""
        if not self.fused:
            return self.scorer(version)(batch_df).toArrow()
        self.spark.sparkContext.setLocalProperty(MODEL_PROPERTY, self.shipped(version))
        try:
            return batch_df.toArrow()
        finally:
            self.spark.sparkContext.setLocalProperty(MODEL_PROPERTY, None)

    def raw_records(self, batch_df, rows) -> "pa.Table":
        """Kafka columns of the batch's (kafka_partition, kafka_offset) rows: a second, rare pass."""
        coordinates = list(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist()))
        if self.reader == "librdkafka":
            return fetch_records(self.source_settings(), self.client_options(), coordinates)
        from pyspark.sql import functions as F

        wanted: dict[int, list[int]] = {}
        for p, o in coordinates:
            wanted.setdefault(p, []).append(o)
        condition = None
        for partition, offsets in wanted.items():
            part = (F.col("partition") == partition) & F.col("offset").isin(offsets)
            condition = part if condition is None else condition | part
        return batch_df.where(condition).select("partition", "offset", "topic", "key", "value").toArrow()


class MicroBatchWriter:
    """The ``foreachBatch`` function: score one micro-batch and append it exactly once."""

    def __init__(self, cfg: Config, scoring: Scoring, model_version: str,
                 tables: dict[str, StreamTable] | None = None) -> None:
        self.cfg = cfg
        self.scoring = scoring
        self.model_version = str(model_version)
        self.keep_features = scoring.keep_features
        self.app_id = cfg.get("stream.app_id")
        self.tables = tables or stream_tables(cfg, self.keep_features)
        self.deduplicate = cfg.get("stream.deduplicate")
        self.lookback_ms = int(float(cfg.get("stream.dedupe_lookback_minutes")) * 60_000)
        self.recent = RecentIds() if self.deduplicate and self.lookback_ms > 0 else None
        self.query_id: str | None = None
        self.lease: StreamLease | None = None
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None

    # --- binding to the running query ---
    def bind(self, query_id: str, run_id: str) -> None:
        """Tie commits to ``query_id``, take the app-id lease and load the recent ids; batches wait for this."""
        try:
            lease = StreamLease(lease_folder(self.cfg), self.app_id, query_id, run_id,
                                float(self.cfg.get("stream.lease_ttl_seconds")))
            self.lease = lease.acquire()
            for table in self.tables.values():
                table.refresh()
            if self.recent is not None:
                self._load_recent()
            self.query_id = query_id
        except BaseException as exc:
            self._bind_error = exc
            raise
        finally:
            self._bound.set()

    def close(self) -> None:
        """Let running table maintenance finish, then give the lease back (the query has stopped)."""
        try:
            for table in self.tables.values():
                table.wait_maintenance()
        finally:
            if self.lease is not None:
                self.lease.release()

    def _load_recent(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as pds

        since = pa.scalar((int(time.time() * 1000) - self.lookback_ms) * 1000, pa.timestamp("us", tz="UTC"))
        rows = self.tables["predictions"].read([ID_COL, "batch_id", "scored_at"], pds.field("scored_at") >= since)
        self.recent.load(rows[ID_COL].to_numpy(zero_copy_only=False), rows["batch_id"].to_numpy(),
                         pc.cast(rows["scored_at"], pa.int64()).to_numpy() // 1000)
        log.info("duplicate check: %d ids scored in the last %.0f minutes", len(self.recent), self.lookback_ms / 60_000)

    # --- one micro-batch ---
    def __call__(self, batch_df, batch_id: int) -> None:
        if not self._bound.wait(600):
            raise StreamStateError("the streaming query was never bound to its writer (fraud_ml.streaming.query.start_stream)")
        if self._bind_error is not None:
            raise StreamConflictError(f"the stream could not start: {self._bind_error}")
        self.lease.check()
        started = time.time()
        now_ms = int(started * 1000)
        fresh = BatchTag(self.app_id, self.query_id, int(batch_id), now_ms,
                         now_ms - self.lookback_ms if self.recent is not None else None, self.model_version)
        tag, committed = self._pinned(fresh)
        if committed:
            log.warning("batch %d was partly committed before a restart (%s): finishing it as first decided",
                        batch_id, ", ".join(committed))
            if self.recent is not None:
                self.recent.discard_batch(tag.batch, tag.started_at_ms)
        scored = self.scoring.scored(batch_df, tag.model_version)
        scored_at = time.time()
        routed = route_batch(scored, tag, self.keep_features, self.deduplicate, self.recent, self.scoring.limits)
        if routed.empty:
            return
        if routed.duplicates_without_raw.num_rows and "quarantine" not in committed:
            raw = self.scoring.raw_records(batch_df, routed.duplicates_without_raw)
            routed.quarantine = with_raw(routed.quarantine, raw)
        routed_at = time.time()
        stages = {"score_ms": (scored_at - started) * 1000, "route_ms": (routed_at - scored_at) * 1000,
                  "lookback_ids": len(self.recent) if self.recent is not None else None}
        commit_ms = self._write(routed, tag, committed, stages)
        if self.recent is not None:
            self.recent.add(routed.scored_hashes, tag.batch, tag.started_at_ms)
        log.info("batch %d: %d scored, %d quarantined in %.0f ms", batch_id, routed.predictions.num_rows,
                 routed.quarantine.num_rows, commit_ms - now_ms)

    def _pinned(self, fresh: BatchTag) -> tuple[BatchTag, dict[str, int]]:
        """The tag this batch was first decided with (and its commit times per table), or ``fresh``."""
        found = {name: hit for name, table in self.tables.items() if (hit := table.find_tag(fresh)) is not None}
        if not found:
            return fresh, {}
        tags = {tag for tag, _ in found.values()}
        if len(tags) > 1:
            raise StreamStateError(f"batch {fresh.batch} of query {fresh.query_id} was committed with different "
                                   f"tags: {sorted(t.user_metadata() for t in tags)}")
        return tags.pop(), {name: ms for name, (_, ms) in found.items()}

    def _write(self, routed: RoutedBatch, tag: BatchTag, committed: dict[str, int], stages: dict) -> int:
        """Append what is not committed yet, in order; return the batch's commit time (epoch ms)."""
        writing = time.time()
        commit_ms = committed.get("predictions")
        for name, rows in (("predictions", routed.predictions), ("quarantine", routed.quarantine)):
            if rows.num_rows and name not in committed:
                self.lease.check()
                at_ms = self.tables[name].append(rows, tag)
                commit_ms = at_ms if commit_ms is None else commit_ms
                fault_point(f"after_{name}", tag.batch)
            elif rows.num_rows and commit_ms is None:
                commit_ms = committed[name]
        if "batch_metrics" not in committed:
            self.lease.check()
            stages = {**stages, "write_ms": (time.time() - writing) * 1000}
            self.tables["batch_metrics"].append(metrics_row(routed, tag, commit_ms, stages), tag)
            fault_point("after_batch_metrics", tag.batch)
        return commit_ms


@dataclass
class ScoringStream:
    """A started scoring query and its writer (``stop`` also gives the app-id lease back)."""

    query: object
    writer: MicroBatchWriter

    def stop(self) -> None:
        if self.query.isActive:
            self.query.stop()
        self.writer.close()

    def exception(self):
        return self.query.exception()

    @property
    def is_active(self) -> bool:
        return self.query.isActive

    def await_termination(self, timeout_s: float | None = None) -> bool:
        return self.query.awaitTermination(timeout_s)


def start_stream(spark, cfg: Config, available_now: bool | None = None) -> ScoringStream:
    """Resolve the champion, warm the Python workers up, start the query and bind its writer."""
    check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options())
    setup_mlflow(cfg)
    version, _ = resolve_alias(cfg)
    log.info("scoring with %s (version %s of %s)", champion_uri(cfg), version, cfg.get("mlflow.model_name"))
    scoring = Scoring(spark, cfg, [c for c in cfg.get("stream.prediction_features") if c in FEATURES])
    scoring.warm_up(version)
    writer = MicroBatchWriter(cfg, scoring, version)
    if available_now is None:
        available_now = cfg.get("stream.trigger") == "available_now"
    trigger = {"availableNow": True} if available_now else {"processingTime": cfg.get("stream.trigger_interval")}
    query = (scoring.read_stream(version).writeStream
             .queryName(cfg.get("stream.app_id"))
             .foreachBatch(writer)
             .option("checkpointLocation", cfg.get("stream.checkpoint_dir"))
             .trigger(**trigger)
             .start())
    try:
        writer.bind(str(query.id), str(query.runId))
    except BaseException:
        query.stop()
        raise
    # Everything loaded so far (Spark, MLflow, pandas, pyarrow) stays for the stream's life: keep the
    # garbage collector's full passes, which ran within micro-batches, off it (gc.freeze).
    gc.collect()
    gc.freeze()
    log.info("stream '%s' (query %s) started (%s), checkpoint %s", cfg.get("stream.app_id"), query.id,
             "availableNow" if available_now else f"every {cfg.get('stream.trigger_interval')}",
             cfg.get("stream.checkpoint_dir"))
    return ScoringStream(query, writer)


def run_stream(spark, cfg: Config, available_now: bool | None = None, timeout_s: float | None = None) -> None:
    """Run the scoring query until it finishes (availableNow), times out, or is interrupted."""
    stream = start_stream(spark, cfg, available_now)
    try:
        stream.await_termination(timeout_s)
    except KeyboardInterrupt:
        log.info("interrupted: stopping the stream")
    finally:
        stream.stop()
    if stream.exception() is not None:
        raise stream.exception()
