"""The Kaggle creditcard columns and the project's column and message names, defined once.

Pure constants (no pyspark, no pandas): the pyfunc model and the message decoder import them
on the Python workers.
"""

from __future__ import annotations

PCA_FEATURES: list[str] = [f"V{i}" for i in range(1, 29)]
FEATURES: list[str] = ["Time", *PCA_FEATURES, "Amount"]
LABEL = "Class"
KAGGLE_COLUMNS: list[str] = [*FEATURES, LABEL]

ID_COL = "transaction_id"
SOURCE_COL = "source"
# Values of the ``source`` column: where a row came from.
SOURCE_REAL = "real"  # rows of a real Kaggle file
SOURCE_GENERATED = "generated"  # the synthetic demo generator (no real data involved)
# Synthetic fraud rows (jobs/synthesize.py): never used for validation or test metrics.
SOURCE_SMOTE = "smote"
SOURCE_WGAN = "wgan"
SOURCE_CWGAN = "cwgan"
SYNTHETIC_SOURCES: tuple[str, ...] = (SOURCE_SMOTE, SOURCE_WGAN, SOURCE_CWGAN)

SPLITS = ("train", "validation", "test")

# JSON value of a Kafka message. ``label`` is the replayed ground truth: stored
# next to predictions for monitoring, never passed to the model.
MESSAGE_LABEL = "label"
MESSAGE_EVENT_TIME = "event_time"  # epoch milliseconds set by the producer

# The stream's tables (predictions, quarantine, batch_metrics) are defined as Arrow
# schemas where their rows are built: fraud_ml/streaming/routing.py.
