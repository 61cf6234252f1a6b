from pathlib import Path

import mlflow
import numpy as np
import pytest
import xgboost as xgb

from fraud_ml.errors import ModelNotFoundError
from fraud_ml.io.mlflow import resolve_alias, setup_mlflow
from fraud_ml.schema import FEATURES, LABEL
from fraud_ml.training.calibration import choose_threshold
from fraud_ml.training.data import SyntheticCreditCardGenerator
from fraud_ml.training.pyfunc_model import evaluate, log_champion


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


def tiny_booster(rows: int, fraud_rate: float, seed: int, trees: int, depth: int):
    """Synthetic rows and a small XGBoost booster fitted on them."""
    frame = SyntheticCreditCardGenerator(n_rows=rows, fraud_rate=fraud_rate, seed=seed).generate()
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=depth).fit(frame[FEATURES], frame[LABEL])
    return frame, model.get_booster()


def test_evaluate_counts_confusion_matrix():
    m = evaluate(np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.2, 0.8, 0.1, 0.3]), 0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 2)
    assert m["precision"] == 0.5 and m["recall"] == 0.5


def test_champion_pyfunc_round_trip(base_config, tmp_path):
    cfg = base_config.with_overrides(["mlflow.model_name=unit-champion"], env={})
    setup_mlflow(cfg)
    frame, booster = tiny_booster(rows=4000, fraud_rate=0.05, seed=2, trees=30, depth=3)
    with mlflow.start_run():
        champ = log_champion(booster, 0.5, "unit-champion", "champion", tmp_path, {"top_k": 3, "method": "exact"})
    version, uri = resolve_alias(cfg)
    assert version == champ.version and uri == champ.model_uri
    model = mlflow.pyfunc.load_model("models:/unit-champion@champion")
    out = model.predict(frame[FEATURES].head(400))
    assert list(out.columns) == ["probability", "raw_score", "decision", "reasons"]
    expected = booster.inplace_predict(frame[FEATURES].head(400).to_numpy(np.float32))
    np.testing.assert_allclose(out["probability"], expected, rtol=1e-6)  # no prior given: no shift
    np.testing.assert_allclose(out["raw_score"], expected, rtol=1e-6)
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


def test_the_pyfunc_applies_the_prior_correction_and_thresholds_the_corrected_probability(base_config, tmp_path):
    from fraud_ml.training.calibration import prior_odds_ratio, prior_shift

    cfg = base_config.with_overrides(["mlflow.model_name=prior-champion"], env={})
    setup_mlflow(cfg)
    frame, booster = tiny_booster(rows=4000, fraud_rate=0.2, seed=4, trees=30, depth=3)
    r = prior_odds_ratio(0.2, 0.00172)
    with mlflow.start_run():
        champ = log_champion(
            booster,
            0.01,
            "prior-champion",
            None,
            tmp_path,
            {"top_k": 3, "method": "approx"},
            prior={"prior_odds_ratio": r, "fitted_fraud_rate": 0.2, "production_fraud_rate": 0.00172},
        )
    out = mlflow.pyfunc.load_model(champ.model_uri).predict(frame[FEATURES].head(500))
    raw = booster.inplace_predict(frame[FEATURES].head(500).to_numpy(np.float32)).astype(np.float64)
    np.testing.assert_allclose(out["raw_score"], raw, rtol=1e-6)
    np.testing.assert_allclose(out["probability"], prior_shift(raw, r), rtol=1e-6)
    assert (out["decision"] == (out["probability"] >= 0.01).astype(int)).all()
    assert out["decision"].sum() < (raw >= 0.01).sum()  # the corrected probability is far below the raw score


def test_unknown_alias_is_a_clear_error(base_config):
    cfg = base_config.with_overrides(["mlflow.model_name=never-registered"], env={})
    setup_mlflow(cfg)
    with pytest.raises(ModelNotFoundError, match="no model 'never-registered' with alias 'champion'"):
        resolve_alias(cfg)


def registered_tiny_champion(base_config, tmp_path, name: str, threshold: float, rows: int, seed: int):
    """(frame, booster, RegisteredChampion) of a 5-tree booster registered as ``name``@champion."""
    setup_mlflow(base_config.with_overrides([f"mlflow.model_name={name}"], env={}))
    frame, booster = tiny_booster(rows=rows, fraud_rate=0.05, seed=seed, trees=5, depth=2)
    with mlflow.start_run():
        champ = log_champion(booster, threshold, name, "champion", tmp_path / name, base_config.get("train.reasons"))
    return frame, booster, champ


def test_the_champion_is_logged_from_code_and_a_pickled_pyfunc_is_refused(base_config, tmp_path):
    import pathlib

    from fraud_ml.errors import ModelFormatError
    from fraud_ml.io.mlflow import download_verified, load_verified
    from fraud_ml.training.pyfunc_model import ChampionModel

    frame, booster, champ = registered_tiny_champion(base_config, tmp_path, "code-champion", 0.4, rows=2000, seed=3)
    local = pathlib.Path(download_verified(champ.model_uri))
    assert (local / "champion_pyfunc.py").is_file() and not list(local.rglob("*.pkl"))
    assert load_verified(champ.model_uri).predict(frame[FEATURES].head(5))["decision"].notna().all()
    # The format of earlier releases: the PythonModel instance cloudpickled into python_model.pkl.
    booster.save_model(str(tmp_path / "b.ubj"))
    with mlflow.start_run():
        pickled = mlflow.pyfunc.log_model(
            name="old",
            python_model=ChampionModel(),
            artifacts={"booster": str(tmp_path / "b.ubj")},
            model_config={"threshold": 0.4, "feature_names": FEATURES, "reasons_top_k": 3, "nthread": 1},
        )
    with pytest.raises(ModelFormatError, match="refusing to unpickle it"):
        load_verified(pickled.model_uri)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 7, float("nan"), None, "half"])
def test_a_threshold_outside_the_open_unit_interval_is_refused(threshold):
    from fraud_ml.errors import ModelFormatError
    from fraud_ml.training.pyfunc_model import valid_threshold

    with pytest.raises(ModelFormatError, match="strictly between 0 and 1"):
        valid_threshold(threshold)


def test_a_threshold_loaded_from_a_tampered_model_config_is_refused(base_config, tmp_path):
    import pathlib

    import yaml

    from fraud_ml.errors import ModelFormatError
    from fraud_ml.io.mlflow import download_verified

    cfg = base_config.with_overrides(["mlflow.model_name=tampered"], env={})
    setup_mlflow(cfg)
    frame, booster = tiny_booster(rows=2000, fraud_rate=0.05, seed=4, trees=3, depth=2)
    with mlflow.start_run():
        champ = log_champion(booster, 0.5, "tampered", None, tmp_path, base_config.get("train.reasons"))
    local = pathlib.Path(download_verified(champ.model_uri))
    meta = yaml.safe_load((local / "MLmodel").read_text())
    meta["flavors"]["python_function"]["config"]["threshold"] = 1.5
    (local / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelFormatError, match="got 1.5"):
        mlflow.pyfunc.load_model(str(local))


def test_thresholds_chosen_on_saturated_scores_stay_inside_the_unit_interval():
    y = np.array([0, 0, 1, 1])
    for scores in (np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.2, 1.0, 1.0])):
        t = choose_threshold(y, scores, "max_f1")
        assert 0 < t < 1 and ((scores >= t) == y.astype(bool)).all()


def test_downloaded_versions_are_removed_when_the_process_exits(base_config, tmp_path):
    """A job that loads the champion leaves no copy of it behind (each start used to leave one in /tmp)."""
    import subprocess
    import sys

    cfg = base_config.with_overrides(["mlflow.model_name=download-champion"], env={})
    *_, champ = registered_tiny_champion(base_config, tmp_path, "download-champion", 0.5, rows=500, seed=5)
    script = (
        "import sys, mlflow; from fraud_ml.io.mlflow import download_verified, load_verified; "
        f"mlflow.set_tracking_uri({cfg.get('mlflow.tracking_uri')!r}); "
        f"model = load_verified({champ.model_uri!r}); path = download_verified({champ.model_uri!r}); "
        "import os; assert os.path.isfile(os.path.join(path, 'MLmodel')); print(path)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    model_dir = Path(done.stdout.strip().splitlines()[-1])
    assert model_dir.name == "model" and model_dir.parent.parent.name.startswith("fraud-ml-models-")
    assert not model_dir.parent.parent.exists()


def test_download_folders_of_dead_processes_are_swept(tmp_path):
    """A job stopped by SIGTERM or SIGKILL runs no exit handler: the next one removes what it left."""
    import os
    import subprocess
    import sys

    from fraud_ml.io.mlflow import DOWNLOADS_PREFIX, sweep_orphaned_downloads

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{DOWNLOADS_PREFIX}{gone.stdout.strip()}-abc"
    alive = tmp_path / f"{DOWNLOADS_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{DOWNLOADS_PREFIX}x-ghi"  # not one of ours: no pid
    for folder in (dead, alive, other):
        (folder / "v" / "model").mkdir(parents=True)
    sweep_orphaned_downloads(tmp_path)
    assert not dead.exists() and alive.is_dir() and other.is_dir()
