"""The Kaggle creditcard schema and the project's table/message schemas, defined once."""
from __future__ import annotations

from pyspark.sql import types as T

PCA_FEATURES: list[str] = [f"V{i}" for i in range(1, 29)]
FEATURES: list[str] = ["Time", *PCA_FEATURES, "Amount"]
LABEL = "Class"
KAGGLE_COLUMNS: list[str] = [*FEATURES, LABEL]

ID_COL = "transaction_id"
SOURCE_COL = "source"
# Values of the ``source`` column: where a row came from.
SOURCE_REAL = "real"            # rows of a real Kaggle file
SOURCE_GENERATED = "generated"  # the synthetic demo generator (no real data involved)

SPLITS = ("train", "validation", "test")

KAGGLE_SCHEMA = T.StructType(
    [T.StructField(c, T.DoubleType(), True) for c in FEATURES] + [T.StructField(LABEL, T.IntegerType(), True)]
)

# Columns of the train/validation/test Delta tables.
SPLIT_SCHEMA = T.StructType(
    [T.StructField(ID_COL, T.StringType(), False)]
    + [T.StructField(c, T.DoubleType(), True) for c in FEATURES]
    + [T.StructField(LABEL, T.IntegerType(), True), T.StructField(SOURCE_COL, T.StringType(), True)]
)

# JSON value of a Kafka message. ``label`` is the replayed ground truth: stored
# next to predictions for monitoring, never passed to the model.
MESSAGE_LABEL = "label"
MESSAGE_EVENT_TIME = "event_time"  # epoch milliseconds set by the producer

# What the champion pyfunc returns for each row.
PREDICTION_SCHEMA = T.StructType(
    [
        T.StructField("probability", T.DoubleType(), True),
        T.StructField("decision", T.IntegerType(), True),
        T.StructField("reasons", T.StringType(), True),
    ]
)

# --- Delta tables written by the streaming job (readers: dashboard, notebooks) ---
# ``predictions``: one row per scored transaction. The configured
# ``stream.prediction_features`` (default Amount, V4, V10, V12, V14, V17) are
# appended as double columns after these.
PREDICTIONS_COLUMNS: list[str] = [
    ID_COL,             # string
    "probability",      # double, in [0, 1]
    "decision",         # int, 1 = flagged as fraud (probability >= model threshold)
    "reasons",          # string or null: top feature contributions, for flagged rows
    "label",            # int or null: replayed ground truth (never a model input)
    "model_version",    # string: registry version that scored the row
    SOURCE_COL,         # string or null: real / generated / smote / wgan ...
    "event_time",       # timestamp or null: producer's event time
    "kafka_partition",  # int
    "kafka_offset",     # long
    "kafka_timestamp",  # timestamp: Kafka message timestamp
    "scored_at",        # timestamp: micro-batch start on the driver
    "batch_id",         # long: Structured Streaming micro-batch id
]
# ``batch_metrics``: one row per micro-batch (written after its predictions commit).
BATCH_METRICS_SCHEMA = T.StructType([
    T.StructField("batch_id", T.LongType(), False),
    T.StructField("model_version", T.StringType(), True),
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("committed_at", T.TimestampType(), False),   # predictions commit finished
    T.StructField("rows", T.LongType(), False),                # scored rows
    T.StructField("quarantined", T.LongType(), False),         # rows sent to quarantine
    T.StructField("flagged", T.LongType(), False),             # rows with decision = 1
    T.StructField("processing_ms", T.DoubleType(), False),     # batch start -> predictions commit
    T.StructField("latency_p50_ms", T.DoubleType(), True),     # Kafka timestamp -> commit, per row
    T.StructField("latency_p90_ms", T.DoubleType(), True),
    T.StructField("latency_p95_ms", T.DoubleType(), True),
    T.StructField("latency_p99_ms", T.DoubleType(), True),
    T.StructField("latency_max_ms", T.DoubleType(), True),
    T.StructField("rows_per_s", T.DoubleType(), True),         # rows / processing time
    T.StructField("kafka_ts_min", T.TimestampType(), True),
    T.StructField("kafka_ts_max", T.TimestampType(), True),
])
# ``quarantine``: messages that could not be scored, kept with their raw bytes.
QUARANTINE_SCHEMA = T.StructType([
    T.StructField("batch_id", T.LongType(), False),
    T.StructField("kafka_topic", T.StringType(), True),
    T.StructField("kafka_partition", T.IntegerType(), True),
    T.StructField("kafka_offset", T.LongType(), True),
    T.StructField("kafka_timestamp", T.TimestampType(), True),
    T.StructField("key", T.StringType(), True),
    T.StructField("raw_value", T.BinaryType(), True),
    T.StructField("reason", T.StringType(), False),
    T.StructField("quarantined_at", T.TimestampType(), False),
])
