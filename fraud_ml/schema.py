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

# The stream's tables (predictions, quarantine, batch_metrics) are defined as Arrow
# schemas where their rows are built: fraud_ml/streaming/routing.py.
