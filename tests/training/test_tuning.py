"""Randomized XGBoost search: seeded, bounded, nested MLflow runs, best params on validation AUPRC."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from fraud_ml.errors import ConfigError
from fraud_ml.io.mlflow import setup_mlflow
from fraud_ml.training.champion import train_champion
from fraud_ml.training.tuning import XGBoostTuner, param_distributions

SPACE = {
    "n_estimators": {"dist": "randint", "low": 5, "high": 15},
    "max_depth": {"dist": "randint", "low": 2, "high": 4},
    "learning_rate": {"dist": "loguniform", "low": 0.05, "high": 0.5},
    "subsample": {"dist": "uniform", "low": 0.7, "high": 1.0},
    "scale_pos_weight": [1.0, 5.0],
}
BASE = {"tree_method": "hist", "n_jobs": 2}


def test_candidates_are_seeded_and_within_the_space():
    a = XGBoostTuner(BASE, SPACE, n_iter=8, seed=7).candidates()
    assert a == XGBoostTuner(BASE, SPACE, n_iter=8, seed=7).candidates()
    assert a != XGBoostTuner(BASE, SPACE, n_iter=8, seed=8).candidates()
    assert len(a) == 8
    for c in a:
        assert set(c) == set(SPACE)
        assert isinstance(c["n_estimators"], int) and 5 <= c["n_estimators"] <= 15
        assert 2 <= c["max_depth"] <= 4 and 0.05 <= c["learning_rate"] <= 0.5 and 0.7 <= c["subsample"] <= 1.0
        assert c["scale_pos_weight"] in (1.0, 5.0)


@pytest.mark.parametrize(
    "space, message",
    [
        ({"max_depth": {"dist": "normal", "low": 1, "high": 2}}, "must be a list of values"),
        ({"learning_rate": {"dist": "loguniform", "low": 0.0, "high": 1.0}}, "bad range"),
        ({"max_depth": {"dist": "randint", "low": 5, "high": 2}}, "bad range"),
        ({"max_depth": []}, "empty list"),
    ],
)
def test_bad_search_space_is_a_clear_error(space, message):
    with pytest.raises(ConfigError, match=message):
        param_distributions(space)
    with pytest.raises(ConfigError, match="n_iter must be >= 1"):
        XGBoostTuner(BASE, SPACE, n_iter=0)


def test_search_logs_nested_trials_and_returns_the_best(make_config, tiny_splits):
    overrides = [
        f"train.tuning.space.{k}.{p}={v}"
        for k, spec in SPACE.items()
        if isinstance(spec, dict)
        for p, v in spec.items()
        if p != "dist"
    ]
    cfg = make_config(
        "mlflow.experiment=tuning-test",
        "train.tuning.n_iter=3",
        "train.tuning.seed=11",
        "train.tuning.space.scale_pos_weight=[1.0, 5.0]",
        *overrides,
        "mlflow.model_name=tuning-test-model",
    )
    splits = tiny_splits(1500, seed=9)
    setup_mlflow(cfg)
    tuner = XGBoostTuner.from_config(cfg).fit(splits["train"], splits["validation"])

    client = MlflowClient()
    parent = client.get_run(tuner.run_id_)
    trials = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{tuner.run_id_}'"
    )
    assert len(trials) == 3 == len(tuner.trials_)
    scores = {r.info.run_id: r.data.metrics["val_average_precision"] for r in trials}
    assert tuner.best_score_ == pytest.approx(max(scores.values()))
    assert parent.data.metrics["best_val_average_precision"] == pytest.approx(tuner.best_score_)
    best_run = client.get_run(tuner.trials_.loc[tuner.best_trial_, "run_id"])
    assert set(tuner.best_params_) == set(cfg.get("train.tuning.space"))
    logged = {k: best_run.data.params[k] for k in tuner.best_params_}
    assert logged == {k: str(v) for k, v in tuner.best_params_.items()}
    assert 5 <= tuner.best_params_["n_estimators"] <= 15
    assert tuner.best_params_ == XGBoostTuner.from_config(cfg).candidates()[tuner.best_trial_]
    assert "trials.csv" in {a.path for a in client.list_artifacts(tuner.run_id_)}

    # The champion trains with the tuned params over train.xgboost.
    with mlflow.start_run(run_name="parent"):
        result = train_champion(splits, cfg, register=False, params=tuner.best_params_)
    assert result.params["n_estimators"] == tuner.best_params_["n_estimators"]
    assert result.params["tree_method"] == "hist"


def test_time_budget_stops_the_search(make_config, tiny_splits):
    cfg = make_config("mlflow.experiment=tuning-test")
    setup_mlflow(cfg)
    tuner = XGBoostTuner(BASE, SPACE, n_iter=50, seed=1, max_seconds=1e-9)
    tuner.fit(*(tiny_splits(800, seed=2)[s] for s in ("train", "validation")))
    assert len(tuner.trials_) == 1  # the first trial always runs; the budget stops the rest
