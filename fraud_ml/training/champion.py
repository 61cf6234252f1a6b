"""Train the XGBoost champion, pick its decision threshold, evaluate on test, and register it in
MLflow under ``mlflow.model_name@alias``.

The recipe (:func:`fit_champion`, also what ``fraud_ml.training.oof`` estimates): with
``train.threshold.cv_folds`` = k > 0 the threshold is chosen on out-of-fold scores of
train + validation (k stratified folds, a model fitted on the other k - 1 each) and the champion
is then fitted on all of train + validation; with 0 it is fitted on train and the threshold is
chosen on the validation split. On the real sample a validation split holds ~250 normals, so a
threshold chosen there is a coarse quantile; the out-of-fold scores hold every normal of both
splits (docs/models.md has the measured difference).

Validation and test metrics only ever use real rows: ``fraud_ml.features.real_rows`` drops any
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
from sklearn.model_selection import StratifiedKFold

from fraud_ml.config import Config
from fraud_ml.features import feature_matrix, real_rows
from fraud_ml.io.mlflow import setup_mlflow
from fraud_ml.schema import FEATURES, LABEL, SOURCE_COL, SYNTHETIC_SOURCES
from fraud_ml.training.calibration import (
    PriorCorrection,
    calibration_metrics,
    choose_threshold,
    production_report,
    production_weights,
)
from fraud_ml.training.pyfunc_model import RegisteredChampion, evaluate, log_champion

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
    production: dict = field(default_factory=dict)  # test metrics reweighted to the production rate
    prior: "PriorCorrection | None" = None


def threshold_from_config(cfg: Config, y_true: np.ndarray, scores: np.ndarray) -> float:
    """The decision threshold on validation scores with ``train.threshold.*``.

    With ``at_production_rate`` the validation normals are reweighted to ``train.production_fraud_rate``,
    so max_f1 / min_cost optimise what production traffic would see.
    """
    t = cfg.get("train.threshold")
    weights = production_weights(y_true, cfg.get("train.production_fraud_rate")) if t["at_production_rate"] else None
    return choose_threshold(
        y_true, scores, t["strategy"], weights, t["cost_fn"], t["cost_fp"], t["target_fpr"], t["target_recall"]
    )


def fit_xgboost(train: pd.DataFrame, params: dict, seed: int) -> xgb.XGBClassifier:
    """Fit an XGBClassifier on the Kaggle features."""
    model = xgb.XGBClassifier(**params, random_state=seed, eval_metric="aucpr")
    model.fit(train[FEATURES].astype(np.float32), train[LABEL].astype(int))
    return model


@dataclass
class FittedChampion:
    """The recipe's outcome: the booster, its prior correction and threshold, and the real labelled
    scores the threshold was chosen on (raw and corrected)."""

    booster: xgb.Booster
    prior: PriorCorrection
    threshold: float
    training_seconds: float
    fit_rows: int
    threshold_labels: np.ndarray
    threshold_raw: np.ndarray
    threshold_scores: np.ndarray


def fit_champion(train: pd.DataFrame, validation: pd.DataFrame, cfg: Config, params: dict, seed: int) -> FittedChampion:
    """Fit the champion and choose its threshold (``train.threshold.*``; see the module docstring)."""
    folds = int(cfg.get("train.threshold.cv_folds"))
    if folds == 0:
        fit, labels = train, validation[LABEL].to_numpy().astype(int)
        started = time.perf_counter()
        booster = fit_xgboost(fit, params, seed).get_booster()
        seconds = time.perf_counter() - started
        raw = booster.inplace_predict(feature_matrix(validation))
    else:
        fit = pd.concat([train, validation], ignore_index=True)
        all_labels = fit[LABEL].to_numpy().astype(int)
        raw = np.empty(len(fit))
        for part, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(fit, all_labels):
            model = fit_xgboost(fit.iloc[part], params, seed).get_booster()
            raw[held] = model.inplace_predict(feature_matrix(fit.iloc[held]))
        started = time.perf_counter()
        booster = fit_xgboost(fit, params, seed).get_booster()
        seconds = time.perf_counter() - started
        real = ~fit[SOURCE_COL].isin(SYNTHETIC_SOURCES).to_numpy() if SOURCE_COL in fit else np.ones(len(fit), bool)
        labels, raw = all_labels[real], raw[real]
    # The inner fits see the fraud rate of the whole (stratified folds): one prior shift serves all.
    prior = PriorCorrection.from_config(cfg, fit[LABEL].to_numpy(), params)
    scores = prior.apply(raw)
    threshold = threshold_from_config(cfg, labels, scores)
    return FittedChampion(booster, prior, threshold, seconds, len(fit), labels, raw, scores)


def train_champion(
    splits: dict[str, pd.DataFrame],
    cfg: Config,
    register: bool = True,
    params: dict | None = None,
    set_alias: bool = True,
    run_name: str = "xgboost-champion",
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fit and choose the threshold (:func:`fit_champion`), evaluate on test, log and register.

    ``params`` (e.g. tuned ones) are applied over ``train.xgboost``. With
    ``set_alias=False`` the new version is registered without moving
    ``mlflow.alias`` (a challenger). Nested under an active MLflow run if any.
    """
    setup_mlflow(cfg)
    params = {**cfg.get("train.xgboost"), **(params or {})}
    seed = cfg.get("project.seed")
    train = splits["train"]
    validation, test = real_rows(splits["validation"], "validation"), real_rows(splits["test"], "test")
    sources = sorted(set(train.get(SOURCE_COL, pd.Series(["unknown"])).unique()))
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"model": "XGBoost", "role": "champion" if set_alias else "challenger", **(tags or {})})
        mlflow.log_params({f"xgb.{k}": v for k, v in params.items()})
        mlflow.log_params(
            {
                "seed": seed,
                "train_rows": len(train),
                "train_frauds": int(train[LABEL].sum()),
                "data_sources": ",".join(sources),
            }
        )
        mlflow.set_tag("data_sources", ",".join(sources))
        if "generated" in sources:
            mlflow.set_tag("synthetic_demo_data", "true")
        fitted = fit_champion(train, validation, cfg, params, seed)
        booster, prior, threshold, training_seconds = (
            fitted.booster,
            fitted.prior,
            fitted.threshold,
            fitted.training_seconds,
        )
        y_val, raw_val, val_scores = fitted.threshold_labels, fitted.threshold_raw, fitted.threshold_scores
        y_test = test[LABEL].to_numpy()
        mlflow.log_params({"fit_rows": fitted.fit_rows, "threshold_cv_folds": cfg.get("train.threshold.cv_folds")})
        test_scores = prior.apply(booster.inplace_predict(feature_matrix(test)))
        metrics = evaluate(y_test, test_scores, threshold)
        production = production_report(y_test, test_scores, threshold, prior.production_rate)
        mlflow.log_metric("training_seconds", training_seconds)
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_metrics({f"test_production_{k}": v for k, v in production.items()})
        mlflow.log_metrics(
            {
                "fitted_fraud_rate": prior.fitted_rate,
                "validation_fraud_rate": float(y_val.mean()),
                "production_fraud_rate": prior.production_rate,
                "prior_odds_ratio": prior.ratio,
                **calibration_metrics(y_val, raw_val, val_scores, prior.production_rate),
            }
        )
        log.info(
            "test AP %.4f ROC AUC %.4f | at threshold %.4f: precision %.3f recall %.3f F1 %.3f | at the "
            "production rate %.3g%%: precision %.3f, %.1f alerts per 10,000, FPR %.4f%%",
            metrics["average_precision"],
            metrics["roc_auc"],
            threshold,
            metrics["precision"],
            metrics["recall"],
            metrics["f1"],
            100 * prior.production_rate,
            production["precision"],
            production["alerts_per_10k"],
            100 * production["fpr"],
        )
        with tempfile.TemporaryDirectory() as tmp:
            from fraud_ml.training.plots import save_reliability_diagram

            mlflow.log_artifact(
                str(
                    save_reliability_diagram(
                        Path(tmp) / "reliability.png",
                        y_val,
                        {"raw score": raw_val, "prior-corrected": val_scores},
                        production_weights(y_val, prior.production_rate),
                    )
                )
            )
        champion = None
        if register:
            alias = cfg.get("mlflow.alias") if set_alias else None
            with tempfile.TemporaryDirectory() as tmp:
                champion = log_champion(
                    booster,
                    threshold,
                    cfg.get("mlflow.model_name"),
                    alias,
                    Path(tmp),
                    cfg.get("train.reasons"),
                    input_example=test[FEATURES].head(3),
                    prior=prior.model_config(),
                )
            log.info(
                "run %s registered %s%s",
                run.info.run_id,
                champion.model_uri,
                f" as @{alias}" if alias else " (alias not moved)",
            )
    return TrainResult(metrics, threshold, champion, training_seconds, sources, params, production, prior)
