"""The champion model: an XGBoost booster behind a custom ``mlflow.pyfunc`` model.

Logged as MLflow "models from code" (fraud_ml/training/champion_pyfunc.py): no pickle is written
or read. The booster is stored in XGBoost's own UBJSON format and the decision
threshold lives in ``model_config``, validated on load (0 < threshold < 1), with the prior
correction to the production fraud rate (``prior_odds_ratio``, fraud_ml/training/calibration.py).
``predict`` returns ``probability`` (at the production rate), ``raw_score`` (the booster's
output under its training prior), ``decision`` (probability >= threshold) and ``reasons``
(top-3 feature contributions from ``pred_contribs``, filled for flagged rows). ``mlflow.xgboost``'s
own pyfunc returns labels only, which is why this wrapper exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraud_ml.errors import ModelFormatError
from fraud_ml.features import feature_matrix
from fraud_ml.schema import FEATURES
from fraud_ml.training.calibration import prior_shift

log = logging.getLogger(__name__)

BOOSTER_ARTIFACT = "booster"
MODEL_CODE = Path(__file__).with_name("champion_pyfunc.py")
BOOSTER_FILE = "booster.ubj"
REASON_METHODS = ("approx", "exact")


class ChampionModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: probability, decision at the configured threshold, and reasons."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = context.model_config or {}
        self.threshold = valid_threshold(config.get("threshold"))
        # Versions logged before the prior correction existed: no shift.
        self.prior_odds_ratio = valid_odds_ratio(config.get("prior_odds_ratio", 1.0))
        self.feature_names = list(config["feature_names"])
        self.reasons_top_k = int(config["reasons_top_k"])
        # Versions logged before the choice existed computed exact TreeSHAP contributions.
        self.reasons_method = config.get("reasons_method", "exact")
        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts[BOOSTER_ARTIFACT])
        self.booster.set_param({"nthread": int(config["nthread"])})

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features = feature_matrix(valid_features(model_input, self.feature_names), self.feature_names)
        raw_score = self.booster.inplace_predict(features).astype(np.float64)
        probability = prior_shift(raw_score, self.prior_odds_ratio)
        decision = (probability >= self.threshold).astype(np.int32)
        return pd.DataFrame(
            {
                "probability": probability,
                "raw_score": raw_score,
                "decision": decision,
                "reasons": explain(
                    self.booster, features, decision, self.feature_names, self.reasons_top_k, self.reasons_method
                ),
            }
        )


def valid_features(model_input: pd.DataFrame | np.ndarray, feature_names: list[str]) -> pd.DataFrame | np.ndarray:
    """``model_input`` if it has every feature column and each holds numbers (integers or floats, nulls
    allowed); else one MlflowException naming the columns (the scoring server answers it with a 400)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if isinstance(model_input, np.ndarray):  # a bare matrix: columns in feature order (feature_matrix)
        return model_input
    if not isinstance(model_input, pd.DataFrame):
        raise MlflowException.invalid_parameter_value(
            f"the model scores a table with the feature columns, got {type(model_input).__name__}"
        )
    missing = [c for c in feature_names if c not in model_input.columns]
    if missing:
        raise MlflowException.invalid_parameter_value("missing feature columns: " + ", ".join(missing))

    def number(column: pd.Series) -> bool:
        if column.dtype == object:  # e.g. JSON numbers beside nulls; a dtype check only otherwise
            column = column.infer_objects()
        return is_numeric_dtype(column) and not is_bool_dtype(column)

    wrong = [f"{c} ({model_input[c].dtype})" for c in feature_names if c in model_input and not number(model_input[c])]
    if wrong:
        raise MlflowException.invalid_parameter_value(
            "features must be numbers (integers or floats): " + ", ".join(wrong)
        )
    return model_input


def valid_threshold(value: Any) -> float:
    """``value`` as a decision threshold strictly inside (0, 1); ModelFormatError otherwise."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 < threshold < 1.0:
        raise ModelFormatError(f"the model's decision threshold must lie strictly between 0 and 1, got {value!r}")
    return threshold


def valid_odds_ratio(value: Any) -> float:
    """``value`` as a prior odds ratio (finite, > 0); ModelFormatError otherwise."""
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = float("nan")
    if not (np.isfinite(ratio) and ratio > 0):
        raise ModelFormatError(f"the model's prior_odds_ratio must be a finite number > 0, got {value!r}")
    return ratio


def explain(
    booster: xgb.Booster, features: np.ndarray, decision: np.ndarray, feature_names: list[str], top_k: int, method: str
) -> list[str | None]:
    """``"V14 (+2.31); V4 (+1.05); V12 (+0.80)"`` for flagged rows, None otherwise.

    Per-feature contributions (``pred_contribs``) of the flagged rows only: ``exact`` is
    TreeSHAP, 1.27 ms a row for 300 trees of depth 6; ``approx`` (Saabas, XGBoost's
    ``approx_contribs``) 0.02 ms a row, 60x less, with the same top features on most rows
    (docs/models.md).
    """
    reasons: list[str | None] = [None] * len(decision)
    flagged = np.flatnonzero(decision == 1)
    if flagged.size == 0:
        return reasons
    contribs = booster.predict(
        xgb.DMatrix(features[flagged], feature_names=feature_names),
        pred_contribs=True,
        approx_contribs=method == "approx",
    )
    contribs = contribs[:, : len(feature_names)]  # last column is the bias term
    top = np.argsort(-contribs, axis=1)[:, :top_k]
    for row, idx in zip(flagged, range(len(flagged))):
        reasons[row] = "; ".join(f"{feature_names[j]} ({contribs[idx, j]:+.2f})" for j in top[idx])
    return reasons


def model_signature() -> ModelSignature:
    """Output: probability, raw_score, decision, reasons. No input schema: :meth:`ChampionModel.predict`
    checks the 30 features itself (:func:`valid_features`).

    MLflow's schema check refuses an int64 column where a signature says double ("Can not safely
    convert int64 to float64"), and pandas reads the Kaggle CSV's whole-second ``Time`` as int64;
    declaring the features ``Any`` instead made MLflow check every cell in Python: 92 ms a
    1,000-row ``predict`` against 8 ms for the model itself (cProfile, 300 trees).
    """
    return ModelSignature(
        outputs=Schema(
            [
                ColSpec("double", "probability"),
                ColSpec("double", "raw_score"),
                ColSpec("integer", "decision"),
                ColSpec("string", "reasons", required=False),
            ]
        ),
    )


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Fraud-class metrics at ``threshold`` plus threshold-free AP and ROC AUC."""
    y_true = np.asarray(y_true).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y_true)) == 2
    return {
        "average_precision": float(average_precision_score(y_true, scores)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y_true, scores)) if both else float("nan"),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
        "threshold": float(threshold),
    }


@dataclass
class RegisteredChampion:
    """What ``log_champion`` registered."""

    model_uri: str
    version: str
    run_id: str


def log_champion(
    booster: xgb.Booster,
    threshold: float,
    model_name: str,
    alias: str | None,
    workdir: Path,
    reasons: dict,
    feature_names: list[str] = FEATURES,
    input_example: pd.DataFrame | None = None,
    prior: dict | None = None,
) -> RegisteredChampion:
    """Log the pyfunc in the active MLflow run, register it, optionally point ``alias`` at it.

    ``reasons``: ``train.reasons`` (``top_k`` features named per flagged row, ``method`` approx|exact).
    ``prior``: ``prior_odds_ratio`` (1 = none), ``fitted_fraud_rate``, ``production_fraud_rate``;
    the threshold is on the corrected probability.
    """
    prior = {"prior_odds_ratio": 1.0, **(prior or {})}
    if reasons["method"] not in REASON_METHODS:
        raise ModelFormatError(f"train.reasons.method must be one of {REASON_METHODS}, got {reasons['method']!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    booster_path = workdir / BOOSTER_FILE
    booster.save_model(str(booster_path))
    info = mlflow.pyfunc.log_model(
        name="champion",
        python_model=str(MODEL_CODE),
        artifacts={BOOSTER_ARTIFACT: str(booster_path)},
        model_config={
            "threshold": valid_threshold(threshold),
            "feature_names": list(feature_names),
            "reasons_top_k": int(reasons["top_k"]),
            "reasons_method": reasons["method"],
            "nthread": 1,
            "prior_odds_ratio": valid_odds_ratio(prior["prior_odds_ratio"]),
            **{k: float(v) for k, v in prior.items() if k != "prior_odds_ratio"},
        },
        signature=model_signature(),
        input_example=input_example,
        pip_requirements=[
            f"xgboost=={xgb.__version__}",
            f"mlflow=={mlflow.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
        ],
        registered_model_name=model_name,
    )
    version = str(info.registered_model_version)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(model_name, alias, version)
        log.info("registered %s version %s as @%s", model_name, version, alias)
    return RegisteredChampion(
        model_uri=f"models:/{model_name}/{version}", version=version, run_id=mlflow.active_run().info.run_id
    )
