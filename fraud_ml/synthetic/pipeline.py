"""The synthesize job's steps: read splits (Delta) -> synthesize -> write set, report and stream.

Spark only does the Delta I/O; the methods themselves are the pandas/torch
functions of this package, so they are unit-tested without Spark.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, FraudMLError
from fraud_ml.features import real_rows
from fraud_ml.io.delta import write_table
from fraud_ml.schema import FEATURES, LABEL, SOURCE_CWGAN, SOURCE_SMOTE, SOURCE_WGAN, SPLITS
from fraud_ml.synthetic.composer import compose_stream, plan_stream, stream_summary
from fraud_ml.synthetic.frames import split_rows, synthetic_rows
from fraud_ml.synthetic.quality import (
    QualityReport,
    log_report_to_mlflow,
    quality_report,
)
from fraud_ml.synthetic.smote import smote_frauds, smote_table
from fraud_ml.training.data import SPLIT_SCHEMA
from fraud_ml.training.splits import load_splits

log = logging.getLogger(__name__)

METHODS = (SOURCE_SMOTE, SOURCE_WGAN, SOURCE_CWGAN)


@dataclass
class SynthesisResult:
    """What one synthesize run produced."""

    method: str
    table_path: str
    table_rows: int
    synthetic_rows: int
    report: QualityReport | None = None
    stream_path: str | None = None
    stream: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    epochs_per_second: float | None = None
    device: str | None = None


def resolve_method(cfg: Config, method: str) -> str:
    """``smote``/``wgan``/``cwgan``; ``wgan`` with ``synthetic.wgan.conditional: true`` means ``cwgan``."""
    method = (method or "").strip().lower()
    if method not in METHODS:
        raise ConfigError(f"unknown synthesis method '{method}' (use {', '.join(METHODS)})")
    if method == SOURCE_WGAN and cfg.get("synthetic.wgan.conditional"):
        return SOURCE_CWGAN
    return method


def wgan_from_config(cfg: Config, conditional: bool = False, **overrides: Any):
    """A ``WGANGP`` with every setting from ``synthetic.wgan.*`` (and ``project.seed``)."""
    from fraud_ml.synthetic.wgan import WGANGP

    w = cfg.get("synthetic.wgan")
    params = dict(
        latent_dim=w["latent_dim"],
        generator_hidden=w["generator_hidden"],
        critic_hidden=w["critic_hidden"],
        epochs=w["epochs"],
        batch_size=w["batch_size"],
        lr=w["lr"],
        betas=w["betas"],
        n_critic=w["n_critic"],
        gp_lambda=w["gp_lambda"],
        conditional=conditional,
        balance_classes=w["balance_classes"],
        log_amount=w["log_amount"],
        device=w["device"],
        seed=cfg.get("project.seed"),
        progress=w["progress"],
        num_threads=w["cpu_threads"],
    )
    params.update(overrides)
    return WGANGP(**params)


def to_spark(spark: SparkSession, rows: pd.DataFrame) -> DataFrame:
    """Split-layout pandas rows as a Spark DataFrame with SPLIT_SCHEMA."""
    return spark.createDataFrame(split_rows(rows), schema=SPLIT_SCHEMA)


def _spark_type(value: Any) -> T.DataType:
    if isinstance(value, bool):
        return T.BooleanType()
    if isinstance(value, int):
        return T.LongType()
    if isinstance(value, float):
        return T.DoubleType()
    return T.StringType()


def quality_row(spark: SparkSession, report: QualityReport, run_id: str | None) -> DataFrame:
    """One Delta row: created_at, run_id, every summary entry, and the full JSON report."""
    values: dict[str, Any] = {
        "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "run_id": run_id or "",
    }
    values.update({k: (v.item() if hasattr(v, "item") else v) for k, v in report.summary.items()})
    values["report_json"] = report.to_json()
    fields = [T.StructField("created_at", T.TimestampType(), False)]
    fields += [T.StructField(k, _spark_type(v), True) for k, v in values.items() if k != "created_at"]
    return spark.createDataFrame([tuple(values.values())], schema=T.StructType(fields))


def _check_composer(cfg: Config, validation: pd.DataFrame, method: str, compose: bool) -> int:
    """Synthetic frauds the stream will need (0 when not composing); fails early if impossible."""
    if not compose or cfg.get("synthetic.composer.method") != method:
        return 0
    val = real_rows(validation)
    plan = plan_stream(
        int((val[LABEL] == 0).sum()),
        cfg.get("synthetic.composer.fraud_rate"),
        cfg.get("synthetic.composer.synthetic_share"),
        cfg.get("synthetic.composer.rows") or None,
    )
    available = int((val[LABEL] == 1).sum())
    if plan.real_frauds > available:
        raise FraudMLError(f"the stream needs {plan.real_frauds} real frauds, the validation split has {available}")
    return plan.synthetic_frauds


def synthesize(
    spark: SparkSession,
    cfg: Config,
    method: str,
    compose: bool | None = None,
    report: bool | None = None,
    track: bool = True,
) -> SynthesisResult:
    """Run one synthesis ``method`` end to end and return what was written.

    smote: train split oversampled to ``synthetic.smote.ratio`` -> ``tables.smote``.
    wgan / cwgan: trained on the validation split only -> ``tables.wgan`` / ``tables.cwgan``.
    Then (``synthetic.quality.enabled``) the quality report -> JSON/CSV/PNG in
    ``synthetic.report_dir``, a row appended to ``tables.quality`` and MLflow; and
    (``synthetic.composer.enabled`` and ``composer.method == method``) the stream
    -> the ``composed_stream`` table. ``track=False`` skips MLflow.
    """
    method = resolve_method(cfg, method)
    compose = cfg.get("synthetic.composer.enabled") if compose is None else compose
    report = cfg.get("synthetic.quality.enabled") if report is None else report
    seed = int(cfg.get("project.seed"))
    splits = {name: split_rows(frame) for name, frame in load_splits(spark, cfg).items()}
    train, validation, test = (real_rows(splits[s]) for s in SPLITS)
    needed = _check_composer(cfg, validation, method, bool(compose))

    run_ctx = None
    if track:
        import mlflow

        from fraud_ml.io.mlflow import setup_mlflow

        setup_mlflow(cfg, experiment=cfg.get("synthetic.experiment"))
        run_ctx = mlflow.start_run(run_name=f"synthesize-{method}")
    try:
        result = _synthesize(
            spark, cfg, method, splits, train, validation, test, seed, needed, bool(compose), bool(report), track
        )
        if run_ctx is not None:
            result.run_id = run_ctx.info.run_id
        return result
    finally:
        if run_ctx is not None:
            import mlflow

            mlflow.end_run()


def _synthesize(
    spark: SparkSession,
    cfg: Config,
    method: str,
    splits: dict[str, pd.DataFrame],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    seed: int,
    needed: int,
    compose: bool,
    report: bool,
    track: bool,
) -> SynthesisResult:
    import mlflow

    epochs_per_second = device = None
    if track:
        mlflow.set_tags({"job": "synthesize", "method": method})
        mlflow.log_params({"method": method, "seed": seed})
    if method == SOURCE_SMOTE:
        ratio, k = cfg.get("synthetic.smote.ratio"), cfg.get("synthetic.smote.k_neighbors")
        if track:
            mlflow.log_params({"smote.ratio": ratio, "smote.k_neighbors": k})
        table = smote_table(splits["train"], ratio=ratio, k_neighbors=k, seed=seed)
        frauds = smote_frauds(table)
        reference, reference_name = train[train[LABEL] == 1], "train frauds (SMOTE input)"
    else:
        conditional = method == SOURCE_CWGAN
        model = wgan_from_config(cfg, conditional=conditional, mlflow_logging=track)
        if conditional:
            model.fit(validation[FEATURES], validation[LABEL])
        else:
            model.fit(validation[validation[LABEL] == 1][FEATURES])
        n = max(int(cfg.get("synthetic.wgan.n_samples")), needed)
        samples = model.sample(n, label=1 if conditional else None, random_state=seed)
        frauds = table = synthetic_rows(samples, method, label=1)
        reference, reference_name = validation[validation[LABEL] == 1], "validation frauds (GAN input)"
        epochs_per_second, device = model.epochs_per_second_, str(model.device_)
    path = cfg.table_path(method)
    write_table(to_spark(spark, table).repartition(1), path)
    log.info(
        "wrote %s: %d rows (%d synthetic frauds, source='%s') -> %s", method, len(table), len(frauds), method, path
    )
    result = SynthesisResult(
        method=method,
        table_path=path,
        table_rows=len(table),
        synthetic_rows=len(frauds),
        epochs_per_second=epochs_per_second,
        device=device,
    )
    if track:
        mlflow.log_metrics({"synthetic_rows": len(frauds), "table_rows": len(table)})

    if report:
        q = cfg.get("synthetic.quality")
        result.report = quality_report(
            reference,
            frauds,
            train,
            test,
            method,
            seed=seed,
            cv=q["cv_folds"],
            classifier=q["c2st_classifier"],
            model_params=q["model"],
            max_rows=q["max_rows"],
            out_dir=Path(cfg.get("synthetic.report_dir")),
            reference=reference_name,
        )
        run_id = mlflow.active_run().info.run_id if track and mlflow.active_run() else None
        write_table(quality_row(spark, result.report, run_id), cfg.table_path("synthetic_quality"), mode="append")
        if track:
            log_report_to_mlflow(result.report)

    if needed:
        c = cfg.get("synthetic.composer")
        stream = compose_stream(
            validation,
            frauds,
            fraud_rate=c["fraud_rate"],
            synthetic_share=c["synthetic_share"],
            seed=seed,
            n_rows=c["rows"] or None,
        )
        result.stream_path = cfg.table_path("composed_stream")
        result.stream = stream_summary(stream)
        write_table(to_spark(spark, stream).repartition(1), result.stream_path)
        log.info("wrote stream: %s -> %s", json.dumps(result.stream), result.stream_path)
        if track:
            mlflow.log_metrics({f"stream_{k}": float(v) for k, v in result.stream.items()})
    elif compose:
        log.info(
            "composer uses synthetic.composer.method=%s, not %s: stream not written",
            cfg.get("synthetic.composer.method"),
            method,
        )
    return result
