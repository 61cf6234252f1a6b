"""Score raw Kafka values with the registered champion (an ``mlflow.pyfunc`` model) inside Spark.

``arrow`` (default): the pinned model version is downloaded once on the driver, shipped
to executors as an archive (``SparkContext.addArchive``) and loaded with
``mlflow.pyfunc.load_model`` once per Python worker (module-level cache). One Arrow
function (``mapInArrow``) decodes, validates and scores each Kafka partition's values, so
a message crosses to Python once and no pandas conversion of the Kafka rows happens.
``spark_udf``: a decoding pandas UDF feeds ``mlflow.pyfunc.spark_udf`` as MLflow ships it.

Both produce :data:`SCORED_SCHEMA`: one row per message with its ``reason`` (None = valid),
decoded fields and prediction; raw bytes, raw key and topic only for refused messages. The
driver (fraud_ml.streaming.routing) turns that into table rows.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud_ml.schema import (
    FEATURES,
    ID_COL,
    MESSAGE_EVENT_TIME,
    MESSAGE_LABEL,
    SOURCE_COL,
)
from fraud_ml.streaming.contract import NATIVE, MessageContract
from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages

log = logging.getLogger(__name__)

_MODEL_CACHE: dict[str, Any] = {}
UDF_IMPLEMENTATIONS = ("arrow", "spark_udf")
# Spark local property naming the shipped model of a job's tasks: a replayed batch scores with
# the version its first attempt pinned although the source was started with the current one.
MODEL_PROPERTY = "fraud_ml.shipped_model"
KAFKA_COLUMNS = ["key", "value", "topic", "partition", "offset", "timestamp"]
KAFKA_SPARK_DDL = "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"

_HEAD = [
    pa.field(REASON, pa.string()),
    pa.field(ID_COL, pa.string()),
    pa.field("probability", pa.float64()),
    pa.field("raw_score", pa.float64()),
    pa.field("decision", pa.int32()),
    pa.field("reasons", pa.string()),
    pa.field(MESSAGE_LABEL, pa.int32()),
    pa.field(SOURCE_COL, pa.string()),
    pa.field("event_time_ms", pa.int64()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("kafka_topic", pa.string()),
    pa.field("key", pa.binary()),
    pa.field("raw_value", pa.binary()),
    pa.field("id_hash", pa.int64()),  # fraud_ml.streaming.recent_ids.hash_ids of transaction_id (as int64), valid rows
]
_SPARK_TYPES = {
    pa.string(): "string",
    pa.float64(): "double",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.binary(): "binary",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


def scored_schema(keep_features: list[str]) -> pa.Schema:
    """Arrow schema of a scored message: head fields, then the kept feature values."""
    return pa.schema(_HEAD + [pa.field(c, pa.float64()) for c in keep_features])


def spark_ddl(schema: pa.Schema) -> str:
    """The Spark DDL string of an Arrow schema made of the types above."""
    return ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in schema)


def load_cached_model(shipped_name: str) -> Any:
    """The pyfunc shipped under ``shipped_name``, loaded at most once per Python process.

    After loading, everything the worker holds (pandas, pyarrow, MLflow, XGBoost, the model)
    is moved out of the garbage collector's sight (``gc.freeze``): PySpark's daemon runs a full
    ``gc.collect()`` after every task, which then cost 107 ms of CPU a task and 1.2 ms after
    freezing (docs/performance.md).
    """
    model = _MODEL_CACHE.get(shipped_name)
    if model is None:
        import gc

        import mlflow.pyfunc
        from pyspark import SparkFiles

        model = mlflow.pyfunc.load_model(SparkFiles.get(shipped_name))
        _MODEL_CACHE[shipped_name] = model
        gc.collect()
        gc.freeze()
    return model


def ship_model(spark, model_uri: str) -> str:
    """Download the model version once on the driver and ship it to executors; return its shipped name."""
    from fraud_ml.io.mlflow import download_verified

    # One archive per model version and query: Spark ships it to every executor and
    # unpacks it there (addFile cannot ship a local directory outside local mode).
    model_dir = download_verified(model_uri)
    workdir = os.path.dirname(model_dir)
    archive = shutil.make_archive(f"{workdir}/fraud-model-{uuid.uuid4().hex[:12]}", "zip", model_dir)
    shipped_name = os.path.basename(archive)
    spark.sparkContext.addArchive(archive)
    log.info("shipping %s to executors as %s", model_uri, shipped_name)
    return shipped_name


def _id_hashes(ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """int64 views of the ids' hashes (0 where invalid), computed on the workers for the driver's duplicate check."""
    from fraud_ml.streaming.recent_ids import hash_ids

    out = np.zeros(len(ids), dtype=np.uint64)
    if valid.any():
        out[valid] = hash_ids(ids[valid])
    return out.view(np.int64)


@dataclass
class KafkaRecords:
    """One chunk of Kafka records as plain Python/numpy columns (what the decoder and scorer take)."""

    values: list  # bytes or None
    keys: list  # bytes or None
    topics: list | str  # a topic per record, or one for all
    partitions: np.ndarray  # int32
    offsets: np.ndarray  # int64
    timestamps_us: np.ndarray  # int64 epoch microseconds, -1 where the record has none

    @classmethod
    def from_batch(cls, batch: pa.RecordBatch) -> "KafkaRecords":
        """From Arrow Kafka rows (``KAFKA_COLUMNS``, as Spark's Kafka source gives them)."""
        stamps = batch.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return cls(
            batch.column("value").to_pylist(),
            batch.column("key").to_pylist(),
            batch.column("topic").to_pylist(),
            batch.column("partition").to_numpy(zero_copy_only=False),
            batch.column("offset").to_numpy(zero_copy_only=False),
            pc.fill_null(stamps, -1).to_numpy(zero_copy_only=False),
        )


def _refused_only(values: list | str, refused: np.ndarray, type_: pa.DataType) -> pa.Array:
    """``values[i]`` where ``refused[i]``, null elsewhere (raw bytes travel only for quarantined messages)."""
    out = np.full(len(refused), None, dtype=object)
    rows = np.flatnonzero(refused)
    out[rows] = [values if isinstance(values, str) else values[i] for i in rows]
    return pa.array(out, type_)


def score_records(
    model: Any,
    records: KafkaRecords,
    limits: ValidationLimits,
    now_ms: int | None,
    keep_features: list[str],
    contract: MessageContract = NATIVE,
) -> pa.RecordBatch:
    """Decode, validate and score a chunk of Kafka records into ``scored_schema``.

    ``now_ms``: see fraud_ml.streaming.messages.decode_messages (the stream passes None).
    """
    stamps = np.asarray(records.timestamps_us, dtype=np.int64)
    decoded = decode_messages(
        records.values, limits, now_ms, contract, keys=records.keys, timestamps_ms=np.floor_divide(stamps, 1000)
    )
    n = len(decoded)
    valid = decoded[REASON].isna().to_numpy()
    probability = np.full(n, np.nan)
    raw_score = np.full(n, np.nan)
    decision = np.zeros(n, dtype=np.int32)
    reasons = np.full(n, None, dtype=object)
    if valid.any():
        out = model.predict(decoded.loc[valid, FEATURES].reset_index(drop=True))
        probability[valid] = out["probability"].to_numpy(np.float64)
        # Versions logged before the prior correction return the probability only: it is their raw score.
        raw_score[valid] = out["raw_score" if "raw_score" in out else "probability"].to_numpy(np.float64)
        decision[valid] = out["decision"].to_numpy(np.int32)
        if "reasons" in out:
            reasons[valid] = out["reasons"].to_numpy(object)
    columns = {
        REASON: pa.array(decoded[REASON].to_numpy(object), pa.string()),
        ID_COL: pa.array(decoded[ID_COL].to_numpy(object), pa.string()),
        "probability": pa.array(probability, mask=~valid),
        "raw_score": pa.array(raw_score, mask=~valid),
        "decision": pa.array(decision, mask=~valid),
        "reasons": pa.array(reasons, pa.string()),
        MESSAGE_LABEL: pa.array(decoded[MESSAGE_LABEL], pa.int32()),
        SOURCE_COL: pa.array(decoded[SOURCE_COL].to_numpy(object), pa.string()),
        "event_time_ms": pa.array(decoded[MESSAGE_EVENT_TIME], pa.int64()),
        "kafka_partition": pa.array(np.asarray(records.partitions, dtype=np.int32)),
        "kafka_offset": pa.array(np.asarray(records.offsets, dtype=np.int64)),
        "kafka_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC"), mask=stamps < 0),
        "kafka_topic": _refused_only(records.topics, ~valid, pa.string()),
        "key": _refused_only(records.keys, ~valid, pa.binary()),
        "raw_value": _refused_only(records.values, ~valid, pa.binary()),
        "id_hash": pa.array(_id_hashes(decoded[ID_COL].to_numpy(object), valid), mask=~valid),
    }
    for c in keep_features:
        columns[c] = pa.array(decoded[c].to_numpy(np.float64), mask=~valid)
    return pa.RecordBatch.from_pydict(columns, schema=scored_schema(keep_features))


def score_batch(
    model: Any,
    batch: pa.RecordBatch,
    limits: ValidationLimits,
    now_ms: int | None,
    keep_features: list[str],
    contract: MessageContract = NATIVE,
) -> pa.RecordBatch:
    """:func:`score_records` of an Arrow batch of Kafka rows (``KAFKA_COLUMNS``)."""
    return score_records(model, KafkaRecords.from_batch(batch), limits, now_ms, keep_features, contract)


def _score_partition(
    batches: Iterator[pa.RecordBatch],
    shipped_name: str,
    limits: ValidationLimits,
    keep_features: list[str],
    contract: MessageContract,
) -> Iterator[pa.RecordBatch]:
    model = load_cached_model(shipped_name)
    for batch in batches:
        yield score_batch(model, batch, limits, None, keep_features, contract)


def _warm_partition(batches: Iterator[pa.RecordBatch], shipped_name: str) -> Iterator[pa.RecordBatch]:
    load_cached_model(shipped_name)
    for batch in batches:
        yield batch


def warm_up(spark, shipped_name: str, tasks: int) -> None:
    """Load a shipped model in ``tasks`` Python workers (one small job) before a batch needs it."""
    spark.range(tasks, numPartitions=tasks).mapInArrow(
        lambda it: _warm_partition(it, shipped_name), "id long"
    ).collect()


def model_property_shipped(default: str) -> str:
    """In a task: the shipped model the driver named for this job (MODEL_PROPERTY), else ``default``."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return (context.getLocalProperty(MODEL_PROPERTY) if context is not None else None) or default


class MessageScorer:
    """``scorer(kafka_df)``: a micro-batch's Kafka rows (``KAFKA_COLUMNS``) -> ``scored_schema`` rows (lazy)."""

    def __init__(
        self,
        spark,
        model_uri: str,
        impl: str,
        limits: ValidationLimits,
        keep_features: list[str],
        tasks: int,
        shipped_name: str | None = None,
        contract: MessageContract = NATIVE,
    ) -> None:
        if impl not in UDF_IMPLEMENTATIONS:
            raise ValueError(f"stream.udf must be one of {UDF_IMPLEMENTATIONS}, got '{impl}'")
        self.spark, self.model_uri, self.impl, self.limits = spark, model_uri, impl, limits
        self.contract = contract
        self.keep_features = list(keep_features)
        self.schema = scored_schema(self.keep_features)
        # One task per core and batch: Kafka partitions beyond that ran as a second wave of
        # tasks that waited 100-200 ms each (docs/performance.md).
        self.tasks = tasks or spark.sparkContext.defaultParallelism
        if impl == "arrow":
            self.shipped_name = shipped_name or ship_model(spark, model_uri)
        else:
            import mlflow.pyfunc
            from pyspark.sql import types as T

            from fraud_ml.io.mlflow import download_verified

            result = T.StructType(
                [
                    T.StructField("probability", T.DoubleType()),
                    T.StructField("raw_score", T.DoubleType()),
                    T.StructField("decision", T.IntegerType()),
                    T.StructField("reasons", T.StringType()),
                ]
            )
            self._spark_udf = mlflow.pyfunc.spark_udf(
                spark, model_uri=download_verified(model_uri), result_type=result, env_manager="local"
            ).asNondeterministic()

    def warm_up(self) -> None:
        """Load the model in the Python workers before the first micro-batch needs it."""
        if self.impl == "arrow":
            warm_up(self.spark, self.shipped_name, self.tasks)

    def __call__(self, kafka_df):
        rows = kafka_df.select(*KAFKA_COLUMNS).coalesce(self.tasks)  # no-op with fewer partitions
        if self.impl == "arrow":
            shipped, limits, keep, contract = self.shipped_name, self.limits, self.keep_features, self.contract
            return rows.mapInArrow(
                lambda it: _score_partition(it, shipped, limits, keep, contract), spark_ddl(self.schema)
            )
        return self._with_spark_udf(rows)

    def _with_spark_udf(self, rows):
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        limits, contract = self.limits, self.contract
        decoded_type = T.StructType(
            [
                T.StructField(REASON, T.StringType()),
                T.StructField(ID_COL, T.StringType()),
                T.StructField(MESSAGE_EVENT_TIME, T.LongType()),
                T.StructField(MESSAGE_LABEL, T.IntegerType()),
                T.StructField(SOURCE_COL, T.StringType()),
            ]
            + [T.StructField(c, T.DoubleType()) for c in FEATURES]
        )

        @F.pandas_udf(decoded_type)
        def decode(values: pd.Series, keys: pd.Series, stamps_ms: pd.Series) -> pd.DataFrame:
            return decode_messages(
                values.tolist(), limits, None, contract, keys=keys.tolist(), timestamps_ms=stamps_ms.to_numpy()
            )

        stamps_ms = F.coalesce(F.unix_millis(F.col("timestamp")), F.lit(-1))
        d = rows.withColumn("_d", decode.asNondeterministic()(F.col("value"), F.col("key"), stamps_ms))
        valid = F.col("_d." + REASON).isNull()
        prediction = F.when(valid, self._spark_udf(F.struct(*[F.col("_d." + c).alias(c) for c in FEATURES])))
        d = d.withColumn("_p", prediction)
        refused = lambda c: F.when(~valid, c)  # noqa: E731
        return d.select(
            F.col("_d." + REASON).alias(REASON),
            F.col("_d." + ID_COL).alias(ID_COL),
            F.col("_p.probability").alias("probability"),
            F.col("_p.raw_score").alias("raw_score"),
            F.col("_p.decision").alias("decision"),
            # spark_udf casts a string field's None to the text "None": keep it null.
            F.when(F.col("_p.reasons") != F.lit("None"), F.col("_p.reasons")).alias("reasons"),
            F.col("_d." + MESSAGE_LABEL).alias(MESSAGE_LABEL),
            F.col("_d." + SOURCE_COL).alias(SOURCE_COL),
            F.col("_d." + MESSAGE_EVENT_TIME).alias("event_time_ms"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            refused(F.col("topic")).alias("kafka_topic"),
            refused(F.col("key")).alias("key"),
            refused(F.col("value")).alias("raw_value"),
            *[F.col("_d." + c).alias(c) for c in self.keep_features],
        )
