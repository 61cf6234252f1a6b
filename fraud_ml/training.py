"""Train the XGBoost champion on the train split, pick its threshold on validation,
evaluate on test, and register it in MLflow under ``mlflow.model_name@alias``.

Validation and test metrics only ever use real rows: ``real_only`` drops any
synthetic row (``source`` smote / wgan / cwgan) that reached those splits.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import SparkSession

from fraud_ml.config import Config
from fraud_ml.delta_io import read_table
from fraud_ml.model import RegisteredChampion, choose_threshold, evaluate, log_champion
from fraud_ml.schema import FEATURES, LABEL, SOURCE_COL, SPLITS
from fraud_ml.synthetic.frames import SYNTHETIC_SOURCES
from fraud_ml.tracking import setup_mlflow

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Outcome of ``train_champion``: test metrics and the registered model."""

    metrics: dict[str, float]
    threshold: float
    champion: RegisteredChampion | None
    training_seconds: float
    data_sources: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)


def load_splits(spark: SparkSession, cfg: Config) -> dict[str, pd.DataFrame]:
    """The train/validation/test Delta tables as pandas frames."""
    return {name: read_table(spark, cfg.table_path(name)).toPandas() for name in SPLITS}


def real_only(frame: pd.DataFrame, split: str = "evaluation") -> pd.DataFrame:
    """``frame`` without synthetic rows (``source`` in smote/wgan/cwgan), with a warning if any were there."""
    if SOURCE_COL not in frame.columns:
        return frame
    synthetic = frame[SOURCE_COL].isin(SYNTHETIC_SOURCES)
    if synthetic.any():
        log.warning("dropping %d synthetic rows from the %s split: metrics use real rows only",
                    int(synthetic.sum()), split)
        return frame[~synthetic].reset_index(drop=True)
    return frame


def threshold_from_config(cfg: Config, y_true: np.ndarray, scores: np.ndarray) -> float:
    """The decision threshold on validation scores with ``train.threshold.*`` (max_f1 or min_cost)."""
    return choose_threshold(y_true, scores, cfg.get("train.threshold.strategy"),
                            cfg.get("train.threshold.cost_fn"), cfg.get("train.threshold.cost_fp"))


def fit_xgboost(train: pd.DataFrame, params: dict, seed: int) -> xgb.XGBClassifier:
    """Fit an XGBClassifier on the Kaggle features."""
    model = xgb.XGBClassifier(**params, random_state=seed, eval_metric="aucpr")
    model.fit(train[FEATURES].astype(np.float32), train[LABEL].astype(int))
    return model


def train_champion(splits: dict[str, pd.DataFrame], cfg: Config, register: bool = True,
                   params: dict | None = None, set_alias: bool = True, run_name: str = "xgboost-champion",
                   tags: dict[str, str] | None = None) -> TrainResult:
    """Fit, choose the threshold on validation, evaluate on test, log and register.

    ``params`` (e.g. tuned ones) are applied over ``train.xgboost``. With
    ``set_alias=False`` the new version is registered without moving
    ``mlflow.alias`` (a challenger). Nested under an active MLflow run if any.
    """
    setup_mlflow(cfg)
    params = {**cfg.get("train.xgboost"), **(params or {})}
    seed = cfg.get("project.seed")
    train = splits["train"]
    validation, test = real_only(splits["validation"], "validation"), real_only(splits["test"], "test")
    sources = sorted(set(train.get(SOURCE_COL, pd.Series(["unknown"])).unique()))
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"model": "XGBoost", "role": "champion" if set_alias else "challenger", **(tags or {})})
        mlflow.log_params({f"xgb.{k}": v for k, v in params.items()})
        mlflow.log_params({"seed": seed, "train_rows": len(train), "train_frauds": int(train[LABEL].sum()),
                           "data_sources": ",".join(sources)})
        mlflow.set_tag("data_sources", ",".join(sources))
        if "generated" in sources:
            mlflow.set_tag("synthetic_demo_data", "true")
        started = time.perf_counter()
        model = fit_xgboost(train, params, seed)
        training_seconds = time.perf_counter() - started
        booster = model.get_booster()
        val_scores = booster.inplace_predict(validation[FEATURES].to_numpy(np.float32))
        threshold = threshold_from_config(cfg, validation[LABEL].to_numpy(), val_scores)
        test_scores = booster.inplace_predict(test[FEATURES].to_numpy(np.float32))
        metrics = evaluate(test[LABEL].to_numpy(), test_scores, threshold)
        mlflow.log_metric("training_seconds", training_seconds)
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        log.info("test AP %.4f ROC AUC %.4f | at threshold %.3f: precision %.3f recall %.3f F1 %.3f",
                 metrics["average_precision"], metrics["roc_auc"], threshold, metrics["precision"],
                 metrics["recall"], metrics["f1"])
        champion = None
        if register:
            alias = cfg.get("mlflow.alias") if set_alias else None
            with tempfile.TemporaryDirectory() as tmp:
                champion = log_champion(booster, threshold, cfg.get("mlflow.model_name"), alias,
                                        Path(tmp), cfg.get("train.reasons"), input_example=test[FEATURES].head(3))
            log.info("run %s registered %s%s", run.info.run_id, champion.model_uri,
                     f" as @{alias}" if alias else " (alias not moved)")
    return TrainResult(metrics, threshold, champion, training_seconds, sources, params)
