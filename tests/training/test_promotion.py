"""Champion / challenger: the alias moves only to a challenger that wins by the margin."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from fraud_ml.errors import ConfigError, FraudMLError
from fraud_ml.io.mlflow import resolve_alias
from fraud_ml.training.champion import train_champion
from fraud_ml.training.promotion import ChampionChallenger, challenger_wins, retrain

WEAK = {"n_estimators": 1, "max_depth": 1}


def test_rule():
    assert challenger_wins(0.90, None, 0.005)
    assert challenger_wins(0.90, float("nan"), 0.005)
    assert challenger_wins(0.905, 0.90, 0.005)
    assert not challenger_wins(0.904, 0.90, 0.005)
    assert not challenger_wins(0.95, 0.95, 0.005)
    assert challenger_wins(0.95, 0.95, 0.0)
    assert not challenger_wins(float("nan"), 0.9, 0.0)


def test_bad_metric_is_a_clear_error(make_config):
    with pytest.raises(ConfigError, match="train.promotion.metric must be one of"):
        ChampionChallenger(make_config("train.promotion.metric=accuracy"))


def _versions(client: MlflowClient, name: str) -> set[str]:
    return {str(v.version) for v in client.search_model_versions(f"name = '{name}'")}


def test_promotes_better_refuses_worse_keeps_old_versions(make_config, tiny_splits):
    cfg = make_config(
        "mlflow.model_name=promotion-unit",
        "mlflow.experiment=promotion-test",
        "train.xgboost.n_estimators=30",
        "train.xgboost.max_depth=3",
    )
    splits = tiny_splits(1500, seed=4)

    # No champion yet: the first challenger becomes it.
    first = retrain(splits, cfg, params=WEAK)
    client = MlflowClient()  # after retrain has pointed MLflow at the test store
    assert first.decision.promoted and first.decision.champion_version is None
    assert resolve_alias(cfg)[0] == first.decision.challenger_version

    # A clearly better challenger takes the alias; the old version stays, as @previous_champion.
    better = retrain(splits, cfg)
    d = better.decision
    assert d.promoted and d.champion_version == first.decision.challenger_version
    assert d.challenger_score >= d.champion_score + cfg.get("train.promotion.margin")
    assert resolve_alias(cfg)[0] == d.challenger_version
    assert str(client.get_model_version_by_alias("promotion-unit", "previous_champion").version) == d.champion_version

    # A worse one is refused: the alias does not move, its version is kept and tagged.
    worse = retrain(splits, cfg, params=WEAK)
    w = worse.decision
    assert not w.promoted and w.champion_version == d.challenger_version
    assert w.challenger_score < w.champion_score + w.margin
    assert resolve_alias(cfg)[0] == d.challenger_version
    assert _versions(client, "promotion-unit") == {
        first.decision.challenger_version,
        d.challenger_version,
        w.challenger_version,
    }
    assert client.get_model_version("promotion-unit", w.challenger_version).tags["promotion_decision"] == "rejected"
    run = client.get_run(w.run_id)
    assert run.data.tags["decision"] == "kept" and run.data.metrics["promoted"] == 0
    assert run.data.metrics["champion_average_precision"] == pytest.approx(w.champion_score)
    assert "decision.json" in {a.path for a in client.list_artifacts(w.run_id)}

    # A dry run compares but never moves the alias; comparing the champion with itself is refused.
    dry = retrain(splits, cfg, params={"n_estimators": 60, "max_depth": 4}, apply=False)
    assert resolve_alias(cfg)[0] == d.challenger_version
    assert client.get_run(dry.decision.run_id).data.tags["applied"] == "false"
    with pytest.raises(FraudMLError, match="already holds @champion"):
        ChampionChallenger(cfg).decide(d.challenger_version, splits["test"])


@pytest.mark.real_data
def test_real_sample_tuned_champion_and_promotion(spark, make_config, sample_csv):
    from fraud_ml.training.splits import load_splits, prepare_splits
    from fraud_ml.training.tuning import XGBoostTuner

    cfg = make_config(
        f"data.input={sample_csv}", "mlflow.model_name=real-sample-promotion", "mlflow.experiment=promotion-real"
    )
    prepare_splits(spark, cfg)
    splits = load_splits(spark, cfg)

    # A weak model holds the alias first.
    weak = train_champion(splits, cfg, params=WEAK)
    client = MlflowClient()
    assert resolve_alias(cfg)[0] == weak.champion.version

    # The tuned champion is clearly better on the same real test split: promoted, AP >= 0.97.
    tuned = XGBoostTuner.from_config(cfg).fit(splits["train"], splits["validation"])
    better = retrain(splits, cfg, params=tuned.best_params_)
    assert better.challenger.data_sources == ["real"]
    assert better.challenger.metrics["average_precision"] >= 0.97, better.challenger.metrics
    assert better.decision.promoted and better.decision.challenger_score >= 0.97
    assert resolve_alias(cfg)[0] == better.decision.challenger_version
    assert weak.champion.version in _versions(client, "real-sample-promotion")

    # A worse challenger is refused.
    worse = retrain(splits, cfg, params=WEAK)
    assert not worse.decision.promoted
    assert worse.decision.champion_score == pytest.approx(better.decision.challenger_score)
    assert resolve_alias(cfg)[0] == better.decision.challenger_version
