"""The champion scored in the JVM (both scorers) against the pyfunc: same probability within 1e-5,
same decision.

Parity is measured on models read back from the registry, so a change to how the champion is
trained or logged that the compiler does not reproduce fails here.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud_ml.alerts import booster_sql
from fraud_ml.alerts.booster_sql import SCORERS, compile_booster, compile_model_dir, register_margin_function, score
from fraud_ml.errors import ConfigError, JarsError, ModelFormatError
from fraud_ml.schema import FEATURES

PROBABILITY_TOLERANCE = 1e-5
DECISION_MARGIN = 1e-6


def compare(spark, champion, pyfunc, frame: pd.DataFrame, scorer: str) -> dict:
    """Score ``frame`` in the JVM with ``scorer`` and with the pyfunc; assert parity; return the counts."""
    rows = frame[FEATURES].astype(np.float64).reset_index(drop=True).assign(row=np.arange(len(frame)))
    jvm = score(spark.createDataFrame(rows), champion, scorer).select("row", "raw_score", "probability", "decision")
    jvm = jvm.toPandas().sort_values("row").reset_index(drop=True)
    py = pyfunc.predict(rows[FEATURES])
    assert len(jvm) == len(py) == len(frame)
    assert np.abs(jvm["raw_score"] - py["raw_score"]).max() <= PROBABILITY_TOLERANCE
    assert np.abs(jvm["probability"] - py["probability"]).max() <= PROBABILITY_TOLERANCE
    clear = np.abs(py["probability"] - champion.threshold) > DECISION_MARGIN
    assert (jvm.loc[clear, "decision"].to_numpy() == py.loc[clear, "decision"].to_numpy()).all()
    return {"rows": len(frame), "flagged": int(py["decision"].sum()), "clear": int(clear.sum())}


@pytest.mark.integration
@pytest.mark.parametrize("scorer", SCORERS)
def test_default_sized_champion_matches_the_pyfunc_on_50000_rows(spark, default_champion, parity_rows, scorer):
    champion, pyfunc = default_champion
    assert len(champion.trees) == 300 and champion.prior_odds_ratio != 1.0
    counts = compare(spark, champion, pyfunc, parity_rows, scorer)
    assert counts["flagged"] > 100 and counts["clear"] >= counts["rows"] - 5


@pytest.mark.integration
@pytest.mark.parametrize("scorer", SCORERS)
def test_default_sized_champion_matches_the_pyfunc_on_the_real_sample(spark, default_champion, sample_csv, scorer):
    champion, pyfunc = default_champion
    real = pd.read_csv(sample_csv)
    assert compare(spark, champion, pyfunc, real, scorer)["flagged"] > 0


@pytest.mark.integration
@pytest.mark.parametrize("scorer", SCORERS)
def test_missing_values_take_each_node_default_direction(spark, default_champion, parity_rows, scorer):
    champion, pyfunc = default_champion
    rows = parity_rows.head(5000)[FEATURES].copy()
    holes = np.random.default_rng(3).random(rows.shape) < 0.2
    compare(spark, champion, pyfunc, rows.mask(holes), scorer)


@pytest.mark.integration
@pytest.mark.parametrize("scorer", SCORERS)
def test_the_registered_session_champion_matches_its_pyfunc(spark, registered_champion, champion_test_split, scorer):
    from fraud_ml.io.mlflow import download_verified, load_verified

    uri = registered_champion.champion.model_uri
    champion = compile_model_dir(download_verified(uri), registered_champion.champion.version)
    counts = compare(spark, champion, load_verified(uri), champion_test_split, scorer)
    assert counts["rows"] == len(champion_test_split)


@pytest.mark.integration
def test_each_model_gets_its_own_margin_function(spark, default_champion):
    champion, _ = default_champion
    other = booster_sql.CompiledChampion(**{**champion.__dict__, "trees": champion.trees[:10]})
    names = {register_margin_function(spark, c) for c in (champion, other, champion)}
    assert len(names) == 2 and all(n.startswith("fraud_ml_margin_") for n in names)


@pytest.mark.integration
def test_the_java_scorer_without_its_jar_is_one_clear_error(spark, default_champion, monkeypatch):
    monkeypatch.setattr(booster_sql, "MARGIN_CLASS", "io.fraudml.alerts.NotBuilt")
    with pytest.raises(JarsError, match="make jars"):
        register_margin_function(spark, default_champion[0])


@pytest.mark.integration
@pytest.mark.parametrize(
    "text",
    [
        "booster-margin 2 30 0 0.0",  # another format version
        "booster-margin 1 30 2 0.0\n-1;-1;0;0.5;0",  # fewer trees than announced
        "booster-margin 1 30 1 0.0\n1,-1;2,-1;0,0;0.5,0.1;0,0",  # a child outside the tree
    ],
)
def test_the_jvm_refuses_a_malformed_model_text(spark, text):
    from pyspark.errors import IllegalArgumentException

    with pytest.raises(IllegalArgumentException, match="booster-margin|trees|out of range"):
        spark.sparkContext._jvm.io.fraudml.alerts.BoosterMargin(text)


def test_an_unknown_scorer_is_a_config_error():
    with pytest.raises(ConfigError, match="alerts.scorer"):
        score(None, None, "python")


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


def test_the_margin_model_text_holds_every_node_exactly():
    compiled = compile_booster(_booster(objective="binary:logistic"), CONFIG, "7")
    header, *lines = compiled.margin_model_text().split("\n")
    assert header.split() == ["booster-margin", "1", str(len(FEATURES)), "3", repr(compiled.base_margin)]
    for tree, line in zip(compiled.trees, lines, strict=True):
        left, right, feature, split, default_left = (v.split(",") for v in line.split(";"))
        assert [int(v) for v in left] == tree.left and [int(v) for v in right] == tree.right
        assert [int(v) for v in feature] == tree.feature and [float(v) for v in split] == tree.split
        assert [v == "1" for v in default_left] == tree.default_left
