"""The compiled champion (Spark SQL) against the pyfunc: same probability within 1e-5, same decision.

Parity is measured on models read back from the registry, so a change to how the champion is
trained or logged that the compiler does not reproduce fails here.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud_ml.alerts.booster_sql import compile_booster, compile_model_dir, score
from fraud_ml.errors import ModelFormatError
from fraud_ml.schema import FEATURES

PROBABILITY_TOLERANCE = 1e-5
DECISION_MARGIN = 1e-6


def compare(spark, champion, pyfunc, frame: pd.DataFrame) -> dict:
    """Score ``frame`` both ways; assert parity; return the counts."""
    rows = frame[FEATURES].astype(np.float64).reset_index(drop=True).assign(row=np.arange(len(frame)))
    jvm = score(spark.createDataFrame(rows), champion).select("row", "raw_score", "probability", "decision")
    jvm = jvm.toPandas().sort_values("row").reset_index(drop=True)
    py = pyfunc.predict(rows[FEATURES])
    assert len(jvm) == len(py) == len(frame)
    assert np.abs(jvm["raw_score"] - py["raw_score"]).max() <= PROBABILITY_TOLERANCE
    assert np.abs(jvm["probability"] - py["probability"]).max() <= PROBABILITY_TOLERANCE
    clear = np.abs(py["probability"] - champion.threshold) > DECISION_MARGIN
    assert (jvm.loc[clear, "decision"].to_numpy() == py.loc[clear, "decision"].to_numpy()).all()
    return {"rows": len(frame), "flagged": int(py["decision"].sum()), "clear": int(clear.sum())}


@pytest.mark.integration
def test_default_sized_champion_matches_the_pyfunc_on_50000_rows(spark, default_champion, parity_rows):
    champion, pyfunc = default_champion
    assert len(champion.trees) == 300 and champion.prior_odds_ratio != 1.0
    counts = compare(spark, champion, pyfunc, parity_rows)
    assert counts["flagged"] > 100 and counts["clear"] >= counts["rows"] - 5


@pytest.mark.integration
def test_default_sized_champion_matches_the_pyfunc_on_the_real_sample(spark, default_champion, sample_csv):
    champion, pyfunc = default_champion
    real = pd.read_csv(sample_csv)
    assert compare(spark, champion, pyfunc, real)["flagged"] > 0


@pytest.mark.integration
def test_missing_values_take_each_node_default_direction(spark, default_champion, parity_rows):
    champion, pyfunc = default_champion
    rows = parity_rows.head(5000)[FEATURES].copy()
    holes = np.random.default_rng(3).random(rows.shape) < 0.2
    compare(spark, champion, pyfunc, rows.mask(holes))


@pytest.mark.integration
def test_the_registered_session_champion_matches_its_pyfunc(spark, registered_champion, champion_test_split):
    from fraud_ml.io.mlflow import download_verified, load_verified

    uri = registered_champion.champion.model_uri
    champion = compile_model_dir(download_verified(uri), registered_champion.champion.version)
    assert compare(spark, champion, load_verified(uri), champion_test_split)["rows"] == len(champion_test_split)


def _booster(**params) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    y = (
        (x[:, 1] > 0).astype(int)
        if params.get("objective", "binary:logistic") != "multi:softprob"
        else rng.integers(0, 3, 200)
    )
    booster = xgb.train({"max_depth": 2, **params}, xgb.DMatrix(x, label=y, feature_names=FEATURES), 3)
    return json.loads(booster.save_raw("json"))


CONFIG = {"threshold": 0.5, "feature_names": FEATURES}


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "reg:squarederror"},
        {"objective": "multi:softprob", "num_class": 3},
        {"booster": "dart", "objective": "binary:logistic"},
    ],
)
def test_what_the_expression_cannot_reproduce_is_refused(params):
    with pytest.raises(ModelFormatError):
        compile_booster(_booster(**params), CONFIG, "1")


@pytest.mark.parametrize(
    "config",
    [{**CONFIG, "threshold": 1.0}, {**CONFIG, "prior_odds_ratio": 0}, {**CONFIG, "feature_names": FEATURES[::-1]}],
)
def test_an_invalid_model_config_is_refused(config):
    with pytest.raises(ModelFormatError):
        compile_booster(_booster(objective="binary:logistic"), config, "1")


def test_the_margin_sums_every_tree_once():
    compiled = compile_booster(_booster(objective="binary:logistic"), CONFIG, "7")
    trees = compiled.tree_sql()
    assert len(trees) == 3 and [t.count("CASE WHEN") for t in trees] == [t.left.count(-1) - 1 for t in compiled.trees]
    assert all(f"`leaves`[{i}]" in compiled.margin_sql("`leaves`") for i in range(3))
    assert compiled.version == "7"
