import mlflow
import numpy as np
import pytest
import xgboost as xgb

from fraud_ml.data import SyntheticCreditCardGenerator
from fraud_ml.model import choose_threshold, evaluate, log_champion
from fraud_ml.schema import FEATURES, LABEL
from fraud_ml.tracking import setup_mlflow, resolve_alias
from fraud_ml.errors import ModelNotFoundError


def test_choose_threshold_max_f1_and_min_cost():
    y = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.85, 0.9])
    t = choose_threshold(y, s, "max_f1")
    pred = (s >= t).astype(int)
    best_f1 = max(evaluate(y, s, th)["f1"] for th in s)
    assert evaluate(y, s, t)["f1"] == pytest.approx(best_f1) and pred.sum() >= 3
    # Missed frauds cost far more than false alarms: the threshold moves down to catch every fraud.
    assert choose_threshold(y, s, "min_cost", cost_fn=100, cost_fp=1) <= 0.4
    with pytest.raises(ValueError, match="unknown threshold strategy"):
        choose_threshold(y, s, "nope")


def test_evaluate_counts_confusion_matrix():
    m = evaluate(np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.2, 0.8, 0.1, 0.3]), 0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 2)
    assert m["precision"] == 0.5 and m["recall"] == 0.5


def test_champion_pyfunc_round_trip(base_config, tmp_path):
    cfg = base_config.with_overrides(["mlflow.model_name=unit-champion"], env={})
    setup_mlflow(cfg)
    frame = SyntheticCreditCardGenerator(n_rows=4000, fraud_rate=0.05, seed=2).generate()
    booster = xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(frame[FEATURES], frame[LABEL]).get_booster()
    with mlflow.start_run():
        champ = log_champion(booster, 0.5, "unit-champion", "champion", tmp_path)
    version, uri = resolve_alias(cfg)
    assert version == champ.version and uri == champ.model_uri
    model = mlflow.pyfunc.load_model("models:/unit-champion@champion")
    out = model.predict(frame[FEATURES].head(400))
    assert list(out.columns) == ["probability", "decision", "reasons"]
    expected = booster.inplace_predict(frame[FEATURES].head(400).to_numpy(np.float32))
    np.testing.assert_allclose(out["probability"], expected, rtol=1e-6)
    assert ((out["probability"] >= 0.5).astype(int) == out["decision"]).all()
    flagged = out[out["decision"] == 1]
    assert len(flagged) > 0 and out.loc[out["decision"] == 0, "reasons"].isna().all()
    for reason in flagged["reasons"]:
        names = [part.split(" (")[0] for part in reason.split("; ")]
        assert len(names) == 3 and set(names) <= set(FEATURES)
    # The booster is stored in XGBoost's own format, not pickled.
    local = mlflow.artifacts.download_artifacts(champ.model_uri)
    import pathlib
    assert list(pathlib.Path(local).rglob("booster.ubj"))


def test_unknown_alias_is_a_clear_error(base_config):
    cfg = base_config.with_overrides(["mlflow.model_name=never-registered"], env={})
    setup_mlflow(cfg)
    with pytest.raises(ModelNotFoundError, match="no model 'never-registered' with alias 'champion'"):
        resolve_alias(cfg)
