"""How a micro-batch becomes scored rows: the Kafka source options and :class:`Scoring`
(by ``stream.reader`` and ``stream.udf``), which ships each model version to the executors once."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError
from fraud_ml.streaming.contract import MessageContract
from fraud_ml.streaming.kafka_source import SOURCE_NAME, SourceSettings, fetch_records
from fraud_ml.streaming.kafka_source import register as register_source
from fraud_ml.streaming.messages import ValidationLimits
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
        self.contract = MessageContract.from_config(cfg)
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
            self._scorers[version] = MessageScorer(
                self.spark,
                self._uri(version),
                self.udf,
                self.limits,
                self.keep_features,
                self.tasks,
                shipped,
                self.contract,
            )
        return self._scorers[version]

    def warm_up(self, version: str) -> None:
        """Load the model in the Python workers before the first micro-batch needs it."""
        if self.udf == "arrow":
            warm_up(self.spark, self.shipped(version), self.tasks)

    def source_settings(self, version: str | None = None) -> SourceSettings:
        """The ``fraud_kafka`` source's settings; with a ``version`` (fused scoring) its model and limits too."""
        cfg = self.cfg
        settings = SourceSettings(
            bootstrap_servers=cfg.get("kafka.bootstrap_servers"),
            topic=cfg.get("kafka.topic"),
            starting_offsets=cfg.get("stream.starting_offsets"),
            max_offsets_per_trigger=int(cfg.get("stream.max_offsets_per_trigger")),
            fail_on_data_loss=bool(cfg.get("stream.fail_on_data_loss")),
            tasks=int(self.tasks),
            fetch_timeout_s=float(cfg.get("stream.fetch_timeout_seconds")),
            records_per_batch=int(cfg.get("spark.arrow_batch_size")),
            keep_features=tuple(self.keep_features),
            schema_ddl=KAFKA_SPARK_DDL,
        )
        if version is None:
            return settings
        return replace(
            settings,
            mode="score",
            shipped_model=self.shipped(version),
            limits=asdict(self.limits),
            contract=self.contract.as_mapping(),
            schema_ddl=spark_ddl(scored_schema(self.keep_features)),
        )

    def client_options(self) -> dict[str, str]:
        return {
            **{str(k): str(v) for k, v in (self.cfg.get("stream.librdkafka_options") or {}).items()},
            **self.cfg.kafka_client_options(),
        }

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
