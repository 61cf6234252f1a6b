"""Scoring UDFs that run the registered champion (an ``mlflow.pyfunc`` model) inside Spark.

``cached`` (default): the pinned model version is downloaded once on the driver,
shipped to executors as an archive (``SparkContext.addArchive``) and loaded through
``mlflow.pyfunc.load_model`` once per Python worker (module-level cache), so no
task pays the model load. ``spark_udf``: ``mlflow.pyfunc.spark_udf`` as shipped.

``build_scoring_udf`` maps feature columns to ``<probability, decision, reasons>``.
``MessageScorer`` is what the stream uses: raw Kafka values in, decoded and
validated fields plus the prediction out. With ``cached`` that is ONE pandas UDF
(decode with ``fraud_ml.messages``, validate, score the valid rows), so a message
crosses to Python once; with ``spark_udf`` a decoding pandas UDF feeds MLflow's UDF.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from typing import Any, Callable

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_ml.messages import REASON, ValidationLimits, decode_messages
from fraud_ml.schema import (FEATURES, ID_COL, MESSAGE_EVENT_TIME, MESSAGE_LABEL, PREDICTION_SCHEMA, SOURCE_COL)

log = logging.getLogger(__name__)

_MODEL_CACHE: dict[str, Any] = {}
UDF_IMPLEMENTATIONS = ("cached", "spark_udf")


def load_cached_model(shipped_name: str) -> Any:
    """The pyfunc shipped under ``shipped_name``, loaded at most once per Python process."""
    model = _MODEL_CACHE.get(shipped_name)
    if model is None:
        import mlflow.pyfunc
        from pyspark import SparkFiles

        model = mlflow.pyfunc.load_model(SparkFiles.get(shipped_name))
        _MODEL_CACHE[shipped_name] = model
    return model


def predict_frame(model: Any, columns: tuple[pd.Series, ...], feature_names: list[str]) -> pd.DataFrame:
    """Run the pyfunc on feature Series and return exactly the prediction struct's columns."""
    frame = pd.concat(columns, axis=1, ignore_index=True)
    frame.columns = feature_names
    out = model.predict(frame.astype("float64"))
    return pd.DataFrame({
        "probability": out["probability"].astype("float64").to_numpy(),
        "decision": out["decision"].astype("int32").to_numpy(),
        "reasons": out["reasons"].to_numpy() if "reasons" in out else None,
    })


def _check_impl(impl: str) -> None:
    if impl not in UDF_IMPLEMENTATIONS:
        raise ValueError(f"stream.udf must be one of {UDF_IMPLEMENTATIONS}, got '{impl}'")


def ship_model(spark: SparkSession, model_uri: str) -> str:
    """Download the model version once on the driver and ship it to executors; return its shipped name."""
    import mlflow.artifacts

    # One archive per query: Spark ships it to every executor and unpacks it there
    # (addFile cannot ship a local directory outside local mode).
    workdir = tempfile.mkdtemp(prefix="fraud-ml-")
    model_dir = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=f"{workdir}/model")
    archive = shutil.make_archive(f"{workdir}/fraud-model-{uuid.uuid4().hex[:12]}", "zip", model_dir)
    shipped_name = os.path.basename(archive)
    spark.sparkContext.addArchive(archive)
    log.info("shipping %s to executors as %s", model_uri, shipped_name)
    return shipped_name


def build_scoring_udf(spark: SparkSession, model_uri: str, impl: str = "cached",
                      feature_names: list[str] = FEATURES) -> Callable[..., Column]:
    """A function mapping feature columns to the prediction struct column."""
    _check_impl(impl)
    if impl == "spark_udf":
        import mlflow.pyfunc

        udf = mlflow.pyfunc.spark_udf(spark, model_uri=model_uri, result_type=PREDICTION_SCHEMA,
                                      env_manager="local").asNondeterministic()

        def apply(*cols: Column) -> Column:
            out = udf(F.struct(*[c.alias(n) for c, n in zip(cols, feature_names)]))
            # spark_udf casts a string field's None to the text "None": keep it null.
            return out.withField("reasons", F.when(out["reasons"] != F.lit("None"), out["reasons"]))

        return apply

    shipped_name = ship_model(spark, model_uri)

    @F.pandas_udf(PREDICTION_SCHEMA)
    def score(*columns: pd.Series) -> pd.DataFrame:
        return predict_frame(load_cached_model(shipped_name), columns, feature_names)

    # Marked non-deterministic so the optimizer never inlines it once per struct field
    # it feeds (probability, decision, reasons): measured 15x slower when it does.
    return score.asNondeterministic()


# --- raw messages in, decoded fields and prediction out (the streaming path) ---

MESSAGE_HEAD = [
    T.StructField(REASON, T.StringType(), True),
    T.StructField(ID_COL, T.StringType(), True),
    T.StructField(MESSAGE_EVENT_TIME, T.LongType(), True),
    T.StructField(MESSAGE_LABEL, T.IntegerType(), True),
    T.StructField(SOURCE_COL, T.StringType(), True),
]
DECODED_SCHEMA = T.StructType(MESSAGE_HEAD + [T.StructField(c, T.DoubleType(), True) for c in FEATURES])


def scored_message_schema(keep_features: list[str]) -> T.StructType:
    """What a message scorer adds: decoded fields, the kept features and the prediction."""
    return T.StructType(MESSAGE_HEAD + [T.StructField(c, T.DoubleType(), True) for c in keep_features]
                        + list(PREDICTION_SCHEMA.fields))


def score_decoded(model: Any, decoded: pd.DataFrame, keep_features: list[str]) -> pd.DataFrame:
    """Run the pyfunc on the valid rows of ``decoded``; invalid rows get a null prediction."""
    n = len(decoded)
    valid = decoded[REASON].isna().to_numpy()
    probability = np.full(n, np.nan)
    decision = np.zeros(n, dtype=np.int32)
    reasons = np.full(n, None, dtype=object)
    if valid.any():
        out = model.predict(decoded.loc[valid, FEATURES].reset_index(drop=True))
        probability[valid] = out["probability"].to_numpy(np.float64)
        decision[valid] = out["decision"].to_numpy(np.int32)
        if "reasons" in out:
            reasons[valid] = out["reasons"].to_numpy(object)
    decision = pd.array(decision, dtype="Int32")
    decision[~valid] = pd.NA
    head = decoded[[f.name for f in MESSAGE_HEAD] + keep_features]
    return head.assign(probability=probability, decision=decision, reasons=reasons)


class MessageScorer:
    """``scorer(df)`` adds the decoded message fields and the prediction to a DataFrame with a ``value`` column."""

    def __init__(self, spark: SparkSession, model_uri: str, impl: str = "cached",
                 limits: ValidationLimits = ValidationLimits(), keep_features: list[str] | None = None) -> None:
        _check_impl(impl)
        self.impl = impl
        self.keep_features = list(FEATURES if keep_features is None else keep_features)
        if impl == "spark_udf":
            self.limits = limits
            self.predict = build_scoring_udf(spark, model_uri, "spark_udf")
            return
        shipped_name, keep = ship_model(spark, model_uri), self.keep_features

        @F.pandas_udf(scored_message_schema(keep))
        def decode_and_score(values: pd.Series) -> pd.DataFrame:
            return score_decoded(load_cached_model(shipped_name), decode_messages(values.tolist(), limits), keep)

        # Non-deterministic for the same reason as build_scoring_udf's UDF.
        self.fused = decode_and_score.asNondeterministic()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in scored_message_schema(self.keep_features).fields]

    def __call__(self, df: DataFrame, value: str = "value") -> DataFrame:
        others = [c for c in df.columns if c not in self.columns]
        if self.impl == "cached":
            return df.select(*others, self.fused(F.col(value)).alias("_scored")).select(*others, "_scored.*")
        decoded = with_decoded(df.select(*others), self.limits, value)
        valid = F.col(REASON).isNull()
        prediction = F.when(valid, self.predict(*[F.when(valid, F.col(c)) for c in FEATURES]))
        return (decoded.withColumn("_prediction", prediction)
                .select(*others, *[f.name for f in MESSAGE_HEAD], *self.keep_features, "_prediction.*"))


def with_decoded(df: DataFrame, limits: ValidationLimits = ValidationLimits(), value: str = "value") -> DataFrame:
    """``df`` plus the DECODED_SCHEMA fields of its ``value`` column (reason, id, optional fields, features)."""
    others = [c for c in df.columns if c not in DECODED_SCHEMA.names]
    return (df.select(*others, build_decode_udf(limits)(F.col(value)).alias("_decoded"))
            .select(*others, "_decoded.*"))


def build_decode_udf(limits: ValidationLimits = ValidationLimits()) -> Callable[[Column], Column]:
    """pandas UDF: Kafka value (binary) -> DECODED_SCHEMA struct (reason, id, optional fields, features)."""

    @F.pandas_udf(DECODED_SCHEMA)
    def decode(values: pd.Series) -> pd.DataFrame:
        return decode_messages(values.tolist(), limits)

    return decode.asNondeterministic()
