"""Seeded randomized search over XGBoost parameters, scored by validation AUPRC.

Each trial is a nested MLflow run (its params, ``val_average_precision``,
``training_seconds``) under one ``xgboost-tuning`` run that records the best
params and ``trials.csv``. The budget is ``train.tuning.n_iter`` trials and,
optionally, ``train.tuning.max_seconds``. The test split is never looked at.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterSampler

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError
from fraud_ml.features import feature_matrix, real_rows
from fraud_ml.schema import LABEL
from fraud_ml.training.champion import fit_xgboost

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("randint", "uniform", "loguniform")


def param_distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Config search space -> ``ParameterSampler`` distributions.

    ``[a, b, c]`` picks one value; ``{dist: randint, low, high}`` draws an integer in
    [low, high]; ``uniform`` / ``loguniform`` draw a float in [low, high].
    """
    from scipy import stats

    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ConfigError(f"train.tuning.space.{name}: empty list of choices")
            out[name] = list(spec)
            continue
        if not isinstance(spec, Mapping) or spec.get("dist") not in DISTRIBUTIONS:
            raise ConfigError(
                f"train.tuning.space.{name} must be a list of values or "
                f"{{dist: {'|'.join(DISTRIBUTIONS)}, low, high}}, got {spec!r}"
            )
        low, high = spec["low"], spec["high"]
        if not low <= high or (spec["dist"] == "loguniform" and low <= 0):
            raise ConfigError(f"train.tuning.space.{name}: bad range [{low}, {high}]")
        if spec["dist"] == "randint":
            out[name] = stats.randint(int(low), int(high) + 1)
        elif spec["dist"] == "uniform":
            out[name] = stats.uniform(float(low), float(high) - float(low))
        else:
            out[name] = stats.loguniform(float(low), float(high))
    return out


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (clean MLflow params and XGBoost args)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return round(float(value), 6)
    return value


class XGBoostTuner:
    """Randomized search: fit on ``train``, score AUPRC on ``validation``, keep the best params.

    After ``fit``: ``best_params_`` (only the searched keys), ``best_score_``,
    ``trials_`` (one row per trial), ``run_id_`` (the parent MLflow run).
    """

    def __init__(
        self,
        base_params: Mapping[str, Any],
        space: Mapping[str, Any],
        n_iter: int = 12,
        seed: int = 42,
        max_seconds: float = 0.0,
        project_seed: int = 42,
    ) -> None:
        if int(n_iter) < 1:
            raise ConfigError(f"train.tuning.n_iter must be >= 1, got {n_iter}")
        self.base_params = dict(base_params)
        self.space = dict(space)
        self.n_iter = int(n_iter)
        self.seed = int(seed)
        self.max_seconds = float(max_seconds or 0.0)
        self.project_seed = int(project_seed)

    @classmethod
    def from_config(cls, cfg: Config) -> "XGBoostTuner":
        """Base params ``train.xgboost``, search settings ``train.tuning.*``."""
        t = cfg.get("train.tuning")
        return cls(
            cfg.get("train.xgboost"),
            t["space"],
            t["n_iter"],
            t["seed"],
            t.get("max_seconds", 0.0),
            cfg.get("project.seed"),
        )

    def candidates(self) -> list[dict[str, Any]]:
        """The ``n_iter`` parameter sets the search will try, in order (same seed, same list)."""
        sampler = ParameterSampler(param_distributions(self.space), n_iter=self.n_iter, random_state=self.seed)
        return [{k: _plain(v) for k, v in sorted(p.items())} for p in sampler]

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame) -> "XGBoostTuner":
        """Run the search, one nested MLflow run per trial."""
        validation = real_rows(validation, "validation")
        y_val = validation[LABEL].to_numpy()
        x_val = feature_matrix(validation)
        rows, tried = [], []
        started = time.perf_counter()
        with mlflow.start_run(run_name="xgboost-tuning", nested=mlflow.active_run() is not None) as parent:
            self.run_id_ = parent.info.run_id
            mlflow.set_tags({"job": "train", "kind": "tuning", "model": "XGBoost"})
            mlflow.log_params(
                {
                    "n_iter": self.n_iter,
                    "search_seed": self.seed,
                    "max_seconds": self.max_seconds,
                    "objective_metric": "val_average_precision",
                    "space": str(self.space)[:500],
                }
            )
            for i, candidate in enumerate(self.candidates()):
                if i and self.max_seconds and time.perf_counter() - started > self.max_seconds:
                    log.info("tuning budget of %.0fs used after %d trials", self.max_seconds, i)
                    break
                params = {**self.base_params, **candidate}
                with mlflow.start_run(run_name=f"trial-{i:03d}", nested=True) as trial:
                    mlflow.set_tags({"kind": "tuning-trial", "model": "XGBoost", "trial": str(i)})
                    mlflow.log_params(candidate)
                    t0 = time.perf_counter()
                    booster = fit_xgboost(train, params, self.project_seed).get_booster()
                    seconds = time.perf_counter() - t0
                    score = float(average_precision_score(y_val, booster.inplace_predict(x_val)))
                    mlflow.log_metrics({"val_average_precision": score, "training_seconds": seconds})
                tried.append(candidate)
                rows.append(
                    {
                        "trial": i,
                        **candidate,
                        "val_average_precision": score,
                        "training_seconds": seconds,
                        "run_id": trial.info.run_id,
                    }
                )
                log.info(
                    "tuning trial %d/%d: val AP %.4f (%s)",
                    i + 1,
                    self.n_iter,
                    score,
                    ", ".join(f"{k}={v}" for k, v in candidate.items()),
                )
            self.trials_ = pd.DataFrame(rows)
            best = self.trials_.sort_values(["val_average_precision", "trial"], ascending=[False, True]).iloc[0]
            self.best_score_ = float(best["val_average_precision"])
            self.best_trial_ = int(best["trial"])
            self.best_params_ = dict(tried[self.best_trial_])
            mlflow.log_params({f"best.{k}": v for k, v in self.best_params_.items()})
            mlflow.log_metrics({"best_val_average_precision": self.best_score_, "trials": len(self.trials_)})
            mlflow.set_tag("best_trial", str(self.best_trial_))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "trials.csv"
                self.trials_.to_csv(path, index=False)
                mlflow.log_artifact(str(path))
        log.info("best of %d trials: val AP %.4f with %s", len(self.trials_), self.best_score_, self.best_params_)
        return self
