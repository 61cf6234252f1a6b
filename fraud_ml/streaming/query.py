"""Kafka -> champion pyfunc -> Delta, exactly once, whatever the messages hold.

Each micro-batch runs in ``foreachBatch`` (:class:`MicroBatchWriter`, fraud_ml.streaming.writer):

1. one Spark job reads the batch's Kafka rows and scores them in a ``mapInArrow``
   function on the Python workers (decode, validate, champion pyfunc; fraud_ml.streaming.scoring,
   fraud_ml.streaming.batch_scoring),
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
from dataclasses import dataclass

from fraud_ml.config import Config
from fraud_ml.io.kafka import check_reachable
from fraud_ml.io.mlflow import champion_uri, resolve_alias, setup_mlflow
from fraud_ml.schema import FEATURES
from fraud_ml.streaming.batch_scoring import Scoring
from fraud_ml.streaming.writer import MicroBatchWriter

log = logging.getLogger(__name__)


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


def stream_config(cfg: Config) -> Config:
    """``cfg`` as the stream's driver runs it: its JVM heap is ``stream.driver_memory``."""
    from fraud_ml.io.spark import memory_size

    return cfg.with_overrides([f"spark.driver_memory={memory_size(cfg, 'stream.driver_memory')}"], env={})


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
    query = (
        scoring.read_stream(version)
        .writeStream.queryName(cfg.get("stream.app_id"))
        .foreachBatch(writer)
        .option("checkpointLocation", cfg.get("stream.checkpoint_dir"))
        .trigger(**trigger)
        .start()
    )
    try:
        writer.bind(str(query.id), str(query.runId))
    except BaseException:
        query.stop()
        raise
    # Everything loaded so far (Spark, MLflow, pandas, pyarrow) stays for the stream's life: keep the
    # garbage collector's full passes, which ran within micro-batches, off it (gc.freeze).
    gc.collect()
    gc.freeze()
    log.info(
        "stream '%s' (query %s) started (%s), checkpoint %s",
        cfg.get("stream.app_id"),
        query.id,
        "availableNow" if available_now else f"every {cfg.get('stream.trigger_interval')}",
        cfg.get("stream.checkpoint_dir"),
    )
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
