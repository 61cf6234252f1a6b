"""Champion / challenger: move the ``champion`` alias only to a challenger that is clearly better.

Both registered versions are scored through their pyfunc on the same real test
split (synthetic rows dropped); the challenger is promoted when

    challenger[metric] >= champion[metric] + margin      (train.promotion.metric / .margin)

or when there is no champion yet. Nothing is deleted: the old version stays in
the registry (and gets ``train.promotion.previous_alias`` for a quick rollback).
Every decision is an MLflow run (``champion-challenger``, tag ``decision``) and
a tag on the challenger's model version. A running stream keeps the version it
resolved at start; it picks up the new champion on restart.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, FraudMLError, ModelNotFoundError
from fraud_ml.features import real_rows
from fraud_ml.io.mlflow import load_verified, resolve_alias, setup_mlflow
from fraud_ml.schema import FEATURES, LABEL
from fraud_ml.training.champion import TrainResult, train_champion
from fraud_ml.training.pyfunc_model import evaluate, valid_threshold

log = logging.getLogger(__name__)

METRICS = ("average_precision", "roc_auc", "f1", "precision", "recall")


@dataclass
class PromotionDecision:
    """Outcome of one champion/challenger comparison."""

    promoted: bool
    metric: str
    margin: float
    alias: str
    challenger_version: str
    challenger_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    run_id: str | None = None

    def summary(self) -> str:
        """One line for logs and the job's output."""
        verb = "PROMOTED" if self.promoted else "KEPT champion"
        return f"{verb}: {self.reason}"


def model_metrics(model_uri: str, test: pd.DataFrame) -> dict[str, float]:
    """Metrics of a registered pyfunc on ``test`` at the threshold stored in its ``model_config``."""
    model = load_verified(model_uri)
    out = model.predict(test[FEATURES].astype("float64"))
    threshold = valid_threshold((model.model_config or {}).get("threshold"))
    return evaluate(test[LABEL].to_numpy(), out["probability"].to_numpy(dtype=np.float64), threshold)


def challenger_wins(challenger: float, champion: float | None, margin: float) -> bool:
    """True when there is no (scored) champion or ``challenger >= champion + margin``."""
    if champion is None or not math.isfinite(champion):
        return True
    return math.isfinite(challenger) and challenger >= champion + margin - 1e-12


class ChampionChallenger:
    """Compare a challenger version with the current ``mlflow.alias`` holder and promote if it wins."""

    def __init__(self, cfg: Config, metric: str | None = None, margin: float | None = None) -> None:
        self.cfg = cfg
        self.metric = metric or cfg.get("train.promotion.metric")
        if self.metric not in METRICS:
            raise ConfigError(f"train.promotion.metric must be one of {', '.join(METRICS)}, got '{self.metric}'")
        self.margin = float(cfg.get("train.promotion.margin") if margin is None else margin)
        self.model_name = cfg.get("mlflow.model_name")
        self.alias = cfg.get("mlflow.alias")
        self.previous_alias = cfg.get("train.promotion.previous_alias") or ""

    def current_champion(self) -> str | None:
        """The version behind the alias, or None when there is none yet."""
        try:
            return resolve_alias(self.cfg)[0]
        except ModelNotFoundError:
            return None

    def decide(self, challenger_version: str, test: pd.DataFrame, apply: bool = True) -> PromotionDecision:
        """Score champion and challenger on ``test``, promote the challenger if it wins (and ``apply``)."""
        setup_mlflow(self.cfg)
        test = real_rows(test, "test")
        challenger_version = str(challenger_version)
        champion_version = self.current_champion()
        if champion_version == challenger_version:
            raise FraudMLError(f"version {challenger_version} already holds @{self.alias}: nothing to compare")
        challenger = model_metrics(f"models:/{self.model_name}/{challenger_version}", test)
        champion = model_metrics(f"models:/{self.model_name}/{champion_version}", test) if champion_version else None
        c_score = challenger[self.metric]
        h_score = champion[self.metric] if champion else None
        promoted = challenger_wins(c_score, h_score, self.margin)
        if h_score is None:
            reason = f"no @{self.alias} yet: version {challenger_version} ({self.metric} {c_score:.4f}) becomes it"
        else:
            sign = ">=" if promoted else "<"
            reason = (
                f"challenger v{challenger_version} {self.metric} {c_score:.4f} {sign} champion "
                f"v{champion_version} {h_score:.4f} + margin {self.margin:g} on {len(test)} real test rows"
            )
        decision = PromotionDecision(
            promoted,
            self.metric,
            self.margin,
            self.alias,
            challenger_version,
            c_score,
            champion_version,
            h_score,
            reason,
            challenger,
            champion,
        )
        self._record(decision, test, apply)
        log.info("%s", decision.summary())
        return decision

    def _record(self, decision: PromotionDecision, test: pd.DataFrame, apply: bool) -> None:
        client = MlflowClient()
        with mlflow.start_run(run_name="champion-challenger", nested=mlflow.active_run() is not None) as run:
            decision.run_id = run.info.run_id
            mlflow.set_tags(
                {
                    "job": "retrain",
                    "kind": "promotion",
                    "decision": "promoted" if decision.promoted else "kept",
                    "challenger_version": decision.challenger_version,
                    "champion_version": decision.champion_version or "none",
                    "applied": str(bool(apply)).lower(),
                }
            )
            mlflow.log_params(
                {
                    "metric": decision.metric,
                    "margin": decision.margin,
                    "alias": decision.alias,
                    "model_name": self.model_name,
                    "test_rows": len(test),
                    "test_frauds": int(test[LABEL].sum()),
                }
            )
            mlflow.log_metrics(
                {f"challenger_{k}": float(v) for k, v in decision.challenger_metrics.items() if math.isfinite(v)}
            )
            if decision.champion_metrics:
                mlflow.log_metrics(
                    {f"champion_{k}": float(v) for k, v in decision.champion_metrics.items() if math.isfinite(v)}
                )
                mlflow.log_metric("delta", decision.challenger_score - float(decision.champion_score))
            mlflow.log_metric("promoted", int(decision.promoted))
            if decision.promoted and apply:
                client.set_registered_model_alias(self.model_name, self.alias, decision.challenger_version)
                if decision.champion_version and self.previous_alias:
                    client.set_registered_model_alias(self.model_name, self.previous_alias, decision.champion_version)
                log.info(
                    "@%s -> version %s (version %s kept%s)",
                    self.alias,
                    decision.challenger_version,
                    decision.champion_version or "-",
                    f" as @{self.previous_alias}" if decision.champion_version and self.previous_alias else "",
                )
            client.set_model_version_tag(
                self.model_name,
                decision.challenger_version,
                "promotion_decision",
                "promoted" if decision.promoted else "rejected",
            )
            client.set_model_version_tag(
                self.model_name, decision.challenger_version, "promotion_run_id", decision.run_id
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "decision.json"
                path.write_text(json.dumps(_jsonable(asdict(decision)), indent=2), encoding="utf-8")
                mlflow.log_artifact(str(path))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


@dataclass
class RetrainResult:
    """The challenger that was trained and what the promotion rule decided."""

    challenger: TrainResult
    decision: PromotionDecision
    tuned_params: dict[str, Any] = field(default_factory=dict)


def retrain(
    splits: Mapping[str, pd.DataFrame],
    cfg: Config,
    tune: bool | None = None,
    params: Mapping[str, Any] | None = None,
    apply: bool = True,
) -> RetrainResult:
    """Train a challenger on the current splits (optionally tuned), register it without the alias,
    and let ``ChampionChallenger`` decide whether it becomes the champion."""
    setup_mlflow(cfg)
    tune = cfg.get("train.promotion.tune") if tune is None else tune
    tuned: dict[str, Any] = {}
    with mlflow.start_run(run_name="retrain", nested=mlflow.active_run() is not None):
        mlflow.set_tags({"job": "retrain", "kind": "retrain"})
        if tune:
            from fraud_ml.training.tuning import XGBoostTuner

            tuned = XGBoostTuner.from_config(cfg).fit(splits["train"], splits["validation"]).best_params_
        challenger = train_champion(
            dict(splits), cfg, params={**tuned, **(params or {})}, set_alias=False, run_name="xgboost-challenger"
        )
        assert challenger.champion is not None
        decision = ChampionChallenger(cfg).decide(challenger.champion.version, splits["test"], apply=apply)
        mlflow.set_tag("decision", "promoted" if decision.promoted else "kept")
    return RetrainResult(challenger, decision, tuned)
