"""The model zoo: DecisionTree, RandomForest, XGBoost, CatBoost and LightGBM on each data variant.

Each model trains on each data variant of the train split (fraud_ml.training.variants).

``ModelZoo.fit`` trains every model x variant in one nested MLflow run each
(params, ``training_seconds``, validation AP, real-test metrics incl. the
confusion-matrix counts, ``pr_curve.png`` and ``confusion_matrix.png``) under one
parent run that carries the comparison table (``comparison.csv`` / ``.md``) and
plot (``comparison.png``).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import mlflow
import numpy as np
import pandas as pd

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, FraudMLError
from fraud_ml.features import feature_matrix, real_rows
from fraud_ml.io.mlflow import setup_mlflow
from fraud_ml.schema import (
    LABEL,
)
from fraud_ml.training.calibration import production_report
from fraud_ml.training.champion import threshold_from_config
from fraud_ml.training.plots import (
    save_comparison_plot,
    save_confusion_matrix,
    save_pr_curve,
)
from fraud_ml.training.pyfunc_model import evaluate
from fraud_ml.training.variants import VARIANTS, TrainingSets, parse_choices, synthetic_count, training_sets

log = logging.getLogger(__name__)

# Short key -> display name, in the order the zoo trains them.
MODELS: dict[str, str] = {
    "dt": "DecisionTree",
    "rf": "RandomForest",
    "xgb": "XGBoost",
    "cat": "CatBoost",
    "lgbm": "LightGBM",
}
# prod_*: the test split reweighted to train.production_fraud_rate (recall does not change with it).
COMPARISON_COLUMNS = [
    "model",
    "variant",
    "average_precision",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "tp",
    "fp",
    "fn",
    "tn",
    "prod_precision",
    "prod_f1",
    "prod_fpr",
    "prod_alerts_per_10k",
    "threshold",
    "training_seconds",
    "train_rows",
    "synthetic_rows",
    "run_id",
]
RUN_ARTIFACTS = ("pr_curve.png", "confusion_matrix.png")
PARENT_ARTIFACTS = ("comparison.csv", "comparison.md", "comparison.png")


def model_params(cfg: Config, key: str) -> dict[str, Any]:
    """Parameters of one zoo model: ``train.xgboost`` for XGBoost, ``train.zoo.params.<key>`` otherwise."""
    if key == "xgb":
        return cfg.get("train.xgboost")
    return dict(cfg.get(f"train.zoo.params.{key}", {}) or {})


def build_estimator(key: str, params: Mapping[str, Any], seed: int) -> Any:
    """An unfitted scikit-learn-API classifier for model ``key`` with ``params`` and ``seed``."""
    params = dict(params)
    if key == "dt":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(**{"random_state": seed, **params})
    if key == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**{"random_state": seed, "n_jobs": 2, **params})
    if key == "xgb":
        import xgboost as xgb

        return xgb.XGBClassifier(**{"random_state": seed, "eval_metric": "aucpr", **params})
    if key == "cat":
        from catboost import CatBoostClassifier

        return CatBoostClassifier(
            **{"random_seed": seed, "verbose": 0, "thread_count": 2, "allow_writing_files": False, **params}
        )
    if key == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**{"random_state": seed, "verbose": -1, "n_jobs": 2, **params})
    raise ConfigError(f"unknown model '{key}' (use {', '.join(MODELS)})")


def fraud_scores(estimator: Any, frame: pd.DataFrame) -> np.ndarray:
    """P(fraud) for each row of ``frame``."""
    return np.asarray(estimator.predict_proba(feature_matrix(frame))[:, 1], dtype=np.float64)


# --- the zoo -------------------------------------------------------------------------------------


@dataclass
class ZooRun:
    """One trained model x variant and its MLflow run."""

    model: str
    model_key: str
    variant: str
    run_id: str
    metrics: dict[str, float]
    threshold: float
    training_seconds: float
    val_average_precision: float
    train_rows: int
    synthetic_rows: int
    production: dict[str, float]

    def row(self) -> dict[str, Any]:
        """One row of the comparison table."""
        return {
            "model": self.model,
            "variant": self.variant,
            **{
                k: self.metrics[k]
                for k in ("average_precision", "roc_auc", "precision", "recall", "f1", "tp", "fp", "fn", "tn")
            },
            **{f"prod_{k}": self.production[k] for k in ("precision", "f1", "fpr", "alerts_per_10k")},
            "threshold": self.threshold,
            "training_seconds": self.training_seconds,
            "train_rows": self.train_rows,
            "synthetic_rows": self.synthetic_rows,
            "run_id": self.run_id,
        }


def comparison_table(runs: Sequence[ZooRun]) -> pd.DataFrame:
    """Every run as one row, best test AUPRC first."""
    table = pd.DataFrame([r.row() for r in runs], columns=COMPARISON_COLUMNS)
    return table.sort_values(["average_precision", "f1"], ascending=False, kind="stable").reset_index(drop=True)


def to_markdown(table: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned)."""
    columns = list(columns or table.columns)

    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for _, row in table.iterrows()]
    return "\n".join(lines)


# The Markdown report leaves out the counts, the FPR and the bookkeeping columns.
DISPLAY_COLUMNS = [
    c
    for c in COMPARISON_COLUMNS
    if c not in ("tp", "fp", "fn", "tn", "prod_fpr", "train_rows", "synthetic_rows", "run_id")
]


class ModelZoo:
    """Train and compare every model x data variant, one nested MLflow run each.

    >>> zoo = ModelZoo(cfg, models=["dt", "xgb"]).fit({"plain": train}, validation, test)
    >>> zoo.comparison_  # one row per model x variant
    """

    def __init__(
        self,
        cfg: Config,
        models: Sequence[str] | str | None = None,
        progress: bool | None = None,
        run_name: str = "model-zoo",
    ) -> None:
        self.cfg = cfg
        self.models = parse_choices(
            models if models is not None else cfg.get("train.zoo.models"), list(MODELS), "model"
        )
        self.progress = cfg.get("train.zoo.progress") if progress is None else progress
        self.run_name = run_name
        self.seed = int(cfg.get("project.seed"))

    def fit(
        self, train_sets: Mapping[str, pd.DataFrame] | TrainingSets, validation: pd.DataFrame, test: pd.DataFrame
    ) -> "ModelZoo":
        """Fit every model on every training set; sets ``runs_``, ``comparison_``, ``parent_run_id_``."""
        from tqdm.auto import tqdm

        sets = train_sets if isinstance(train_sets, TrainingSets) else TrainingSets(frames=dict(train_sets))
        if not sets.frames:
            raise FraudMLError("the model zoo got no training set (every data variant was skipped)")
        validation, test = real_rows(validation, "validation"), real_rows(test, "test")
        for name, frame in (("validation", validation), ("test", test)):
            assert synthetic_count(frame) == 0, f"synthetic rows in the {name} split"
        setup_mlflow(self.cfg)
        combos = [(variant, key) for variant in sets.frames for key in self.models]
        self.runs_: list[ZooRun] = []
        with mlflow.start_run(run_name=self.run_name, nested=mlflow.active_run() is not None) as parent:
            self.parent_run_id_ = parent.info.run_id
            mlflow.set_tags({"job": "train", "kind": "model-zoo"})
            mlflow.log_params(
                {
                    "models": ",".join(self.models),
                    "variants": ",".join(sets.frames),
                    "seed": self.seed,
                    "threshold_strategy": self.cfg.get("train.threshold.strategy"),
                    "validation_rows": len(validation),
                    "test_rows": len(test),
                    "test_frauds": int(test[LABEL].sum()),
                }
            )
            for variant, note in sets.skipped.items():
                mlflow.set_tag(f"skipped.{variant}", note[:250])
            for variant, origin in sets.origins.items():
                mlflow.set_tag(f"variant.{variant}", origin[:250])
            bar = tqdm(combos, unit="model", disable=not self.progress, dynamic_ncols=True)
            try:
                for variant, key in bar:
                    bar.set_description(f"training {MODELS[key]} on {variant}")
                    self.runs_.append(self._fit_one(key, variant, sets.frames[variant], validation, test))
            finally:
                bar.close()
            self.comparison_ = comparison_table(self.runs_)
            self._log_comparison()
            best = self.comparison_.iloc[0]
            mlflow.set_tags({"best_model": best["model"], "best_variant": best["variant"]})
            mlflow.log_metric("best_test_average_precision", float(best["average_precision"]))
        return self

    def _fit_one(
        self, key: str, variant: str, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame
    ) -> ZooRun:
        name, params = MODELS[key], model_params(self.cfg, key)
        n_synthetic = synthetic_count(train)
        log.info(
            "training %s on %s: %d rows, %d frauds (%d synthetic)",
            name,
            variant,
            len(train),
            int(train[LABEL].sum()),
            n_synthetic,
        )
        with mlflow.start_run(run_name=f"{key}-{variant}", nested=True) as run:
            mlflow.set_tags({"model": name, "model_key": key, "variant": variant})
            mlflow.log_params({f"{key}.{k}": v for k, v in params.items()})
            mlflow.log_params(
                {
                    "model": name,
                    "variant": variant,
                    "seed": self.seed,
                    "train_rows": len(train),
                    "train_frauds": int(train[LABEL].sum()),
                    "synthetic_rows": n_synthetic,
                }
            )
            estimator = build_estimator(key, params, self.seed)
            started = time.perf_counter()
            estimator.fit(feature_matrix(train), train[LABEL].to_numpy(dtype=np.int32))
            training_seconds = time.perf_counter() - started
            val_scores = fraud_scores(estimator, validation)
            y_val = validation[LABEL].to_numpy()
            threshold = threshold_from_config(self.cfg, y_val, val_scores)
            val_ap = evaluate(y_val, val_scores, threshold)["average_precision"]
            test_scores = fraud_scores(estimator, test)
            metrics = evaluate(test[LABEL].to_numpy(), test_scores, threshold)
            production = production_report(
                test[LABEL].to_numpy(), test_scores, threshold, self.cfg.get("train.production_fraud_rate")
            )
            mlflow.log_metrics({f"test_production_{k}": v for k, v in production.items()})
            mlflow.log_metric("training_seconds", training_seconds)
            if np.isfinite(val_ap):
                mlflow.log_metric("val_average_precision", val_ap)
            mlflow.log_metrics({f"test_{k}": float(v) for k, v in metrics.items() if np.isfinite(v)})
            with tempfile.TemporaryDirectory() as tmp:
                title = f"{name} / {variant}"
                save_pr_curve(
                    Path(tmp) / "pr_curve.png",
                    test[LABEL].to_numpy(),
                    test_scores,
                    threshold,
                    f"{title}: PR curve (test)",
                )
                save_confusion_matrix(Path(tmp) / "confusion_matrix.png", metrics, f"{title} (test)")
                for artifact in RUN_ARTIFACTS:
                    mlflow.log_artifact(str(Path(tmp) / artifact))
            log.info(
                "%s on %s: test AP %.4f ROC AUC %.4f F1 %.3f (threshold %.3f) in %.1fs",
                name,
                variant,
                metrics["average_precision"],
                metrics["roc_auc"],
                metrics["f1"],
                threshold,
                training_seconds,
            )
        return ZooRun(
            name,
            key,
            variant,
            run.info.run_id,
            metrics,
            threshold,
            training_seconds,
            val_ap,
            len(train),
            n_synthetic,
            production,
        )

    def _log_comparison(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            self.comparison_.to_csv(out / "comparison.csv", index=False)
            (out / "comparison.md").write_text(to_markdown(self.comparison_, DISPLAY_COLUMNS) + "\n", encoding="utf-8")
            save_comparison_plot(out / "comparison.png", self.comparison_, list(MODELS.values()), list(VARIANTS))
            for artifact in PARENT_ARTIFACTS:
                mlflow.log_artifact(str(out / artifact))

    def report(self) -> str:
        """The comparison table as Markdown (what the train job prints)."""
        return to_markdown(self.comparison_, DISPLAY_COLUMNS)


def run_zoo(
    splits: Mapping[str, pd.DataFrame],
    cfg: Config,
    models: Sequence[str] | str | None = None,
    variants: Sequence[str] | str | None = None,
    spark: Any = None,
    progress: bool | None = None,
) -> ModelZoo:
    """Build the variants' training sets from ``splits`` (+ synthetic tables) and fit the zoo."""
    sets = training_sets(
        splits["train"], cfg, variants if variants is not None else cfg.get("train.zoo.variants"), spark
    )
    return ModelZoo(cfg, models, progress).fit(sets, splits["validation"], splits["test"])
