"""The training experiment: the model zoo, the XGBoost hyperparameter search, then the champion
(trained with the best params, threshold chosen on validation, evaluated on the real test split,
registered as ``<mlflow.model_name>@<mlflow.alias>``), all under one MLflow parent run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow

from fraud_ml.config import Config
from fraud_ml.io.mlflow import setup_mlflow
from fraud_ml.training.champion import TrainResult, train_champion
from fraud_ml.training.splits import load_splits

if TYPE_CHECKING:
    from fraud_ml.training.tuning import XGBoostTuner
    from fraud_ml.training.zoo import ModelZoo


@dataclass
class ExperimentResult:
    """What one experiment produced: the champion, and the zoo and search when they ran."""

    champion: TrainResult
    zoo: ModelZoo | None
    tuned: XGBoostTuner | None
    run_id: str


def run_experiment(
    spark,
    cfg: Config,
    zoo: bool | None = None,
    tune: bool | None = None,
    models: str | None = None,
    variants: str | None = None,
    progress: bool | None = None,
    register: bool = True,
) -> ExperimentResult:
    """Run the experiment on the split tables; ``zoo`` / ``tune`` default to ``train.zoo.enabled`` /
    ``train.tuning.enabled``."""
    run_zoo_now = cfg.get("train.zoo.enabled") if zoo is None else zoo
    tune_now = cfg.get("train.tuning.enabled") if tune is None else tune
    splits = load_splits(spark, cfg)
    setup_mlflow(cfg)
    fitted_zoo = tuned = None
    with mlflow.start_run(run_name="train-experiment") as parent:
        mlflow.set_tags({"job": "train", "kind": "experiment"})
        if run_zoo_now:
            from fraud_ml.training.zoo import run_zoo

            fitted_zoo = run_zoo(splits, cfg, models=models, variants=variants, spark=spark, progress=progress)
        if tune_now:
            from fraud_ml.training.tuning import XGBoostTuner

            tuned = XGBoostTuner.from_config(cfg).fit(splits["train"], splits["validation"])
        champion = train_champion(
            splits,
            cfg,
            register=register,
            params=tuned.best_params_ if tuned else None,
            tags={"tuned": str(bool(tuned)).lower()},
        )
    return ExperimentResult(champion, fitted_zoo, tuned, parent.info.run_id)
