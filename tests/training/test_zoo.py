"""The model zoo: every model x data variant is an MLflow run with its metrics and artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake
from mlflow.tracking import MlflowClient

from fraud_ml.errors import ConfigError, FraudMLError
from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL
from fraud_ml.training.variants import parse_choices, training_sets
from fraud_ml.training.zoo import (
    MODELS,
    PARENT_ARTIFACTS,
    RUN_ARTIFACTS,
    ModelZoo,
    run_zoo,
    to_markdown,
)

TINY = [
    "train.xgboost.n_estimators=10",
    "train.xgboost.max_depth=3",
    "train.zoo.params.rf.n_estimators=10",
    "train.zoo.params.rf.max_depth=6",
    "train.zoo.params.cat.iterations=10",
    "train.zoo.params.cat.depth=4",
    "train.zoo.params.lgbm.n_estimators=10",
    "train.zoo.params.lgbm.num_leaves=8",
    "train.zoo.progress=false",
]
TEST_METRICS = [
    "test_average_precision",
    "test_roc_auc",
    "test_precision",
    "test_recall",
    "test_f1",
    "test_tp",
    "test_fp",
    "test_tn",
    "test_fn",
    "test_threshold",
    "training_seconds",
    "val_average_precision",
]


def fake_gan_rows(train: pd.DataFrame, n: int, method: str = "wgan", seed: int = 0) -> pd.DataFrame:
    """Jittered train frauds labelled like the synthesize job's output (``source=method``)."""
    rng = np.random.default_rng(seed)
    frauds = train[train[LABEL] == 1].sample(n, replace=True, random_state=seed).reset_index(drop=True)
    frauds[FEATURES] = frauds[FEATURES] + rng.normal(0, 0.1, size=(n, len(FEATURES)))
    frauds[ID_COL] = [f"{method}-{i:06d}" for i in range(1, n + 1)]
    frauds[SOURCE_COL] = method
    return frauds


def test_whole_zoo_logs_every_model_and_variant(make_config, tmp_path, tiny_splits):
    cfg = make_config("mlflow.experiment=zoo-test", *TINY)
    splits = tiny_splits()
    wgan = fake_gan_rows(splits["train"], 60)
    write_deltalake(str(tmp_path / "delta" / "synthetic_wgan"), wgan)
    # Synthetic rows that reached the test split must be ignored by the metrics.
    leaked = fake_gan_rows(splits["train"], 25, method="smote", seed=1)
    test_with_leak = pd.concat([splits["test"], leaked], ignore_index=True)

    zoo = run_zoo({**splits, "test": test_with_leak}, cfg, variants=["plain", "smote", "wgan"])

    client = MlflowClient()
    parent = client.get_run(zoo.parent_run_id_)
    assert parent.data.params["test_rows"] == str(len(splits["test"]))
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{zoo.parent_run_id_}'"
    )
    pairs = {(r.data.tags["model"], r.data.tags["variant"]) for r in children}
    assert pairs == {(name, v) for name in MODELS.values() for v in ("plain", "smote", "wgan")}
    assert len(children) == 15
    test_frauds = int(splits["test"][LABEL].sum())
    for run in children:
        m = run.data.metrics
        assert set(TEST_METRICS) <= set(m), (run.data.tags, sorted(m))
        assert m["test_tp"] + m["test_fn"] == test_frauds
        assert m["test_tp"] + m["test_fn"] + m["test_fp"] + m["test_tn"] == len(splits["test"])
        assert 0.5 < m["test_roc_auc"] <= 1.0 and 0.0 < m["test_average_precision"] <= 1.0
        assert m["training_seconds"] > 0
        artifacts = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id)}
        assert all(artifacts.get(name, 0) > 1000 for name in RUN_ARTIFACTS), artifacts
        variant = run.data.tags["variant"]
        synthetic = int(run.data.params["synthetic_rows"])
        assert (synthetic == 0) if variant == "plain" else (synthetic > 0)
        if variant == "wgan":
            assert synthetic == 60 and int(run.data.params["train_rows"]) == len(splits["train"]) + 60
    parent_artifacts = {a.path: a.file_size for a in client.list_artifacts(zoo.parent_run_id_)}
    assert all(parent_artifacts.get(name, 0) > 100 for name in PARENT_ARTIFACTS), parent_artifacts

    table = zoo.comparison_
    assert len(table) == 15 and table["average_precision"].is_monotonic_decreasing
    assert set(table["run_id"]) == {r.info.run_id for r in children}
    csv = pd.read_csv(client.download_artifacts(zoo.parent_run_id_, "comparison.csv", str(tmp_path)))
    assert len(csv) == 15 and {"model", "variant", "f1", "average_precision", "training_seconds"} <= set(csv.columns)
    report = zoo.report()
    assert report.count("\n") == 16 and "XGBoost" in report and "smote" in report


def test_missing_wgan_table_is_skipped_with_a_note(make_config, tiny_splits):
    cfg = make_config(*TINY)
    splits = tiny_splits(1200, seed=5)
    sets = training_sets(splits["train"], cfg, ["plain", "smote", "wgan"])
    assert list(sets.frames) == ["plain", "smote"]
    assert "no WGAN table" in sets.skipped["wgan"]
    smote = sets.frames["smote"]
    ratio = smote[LABEL].mean()
    assert ratio == pytest.approx(cfg.get("synthetic.smote.ratio"), abs=0.01)
    assert set(smote.loc[smote[SOURCE_COL] != "smote", ID_COL]) == set(splits["train"][ID_COL])


def test_smote_not_applicable_is_skipped(make_config, tiny_splits):
    cfg = make_config("synthetic.smote.ratio=0.02")  # the tiny train split already has 5% fraud
    sets = training_sets(tiny_splits(1200, seed=5)["train"], cfg, ["plain", "smote"])
    assert list(sets.frames) == ["plain"] and "already has" in sets.skipped["smote"]


def test_choices_and_markdown(base_config):
    assert parse_choices("xgb, dt,xgb", list(MODELS), "model") == ["xgb", "dt"]
    with pytest.raises(ConfigError, match="unknown model svm"):
        parse_choices("svm", list(MODELS), "model")
    md = to_markdown(pd.DataFrame({"model": ["a"], "f1": [0.5]}))
    assert md.splitlines() == ["| model | f1 |", "|---|---:|", "| a | 0.5000 |"]
    with pytest.raises(FraudMLError, match="no training set"):
        ModelZoo(base_config).fit({}, pd.DataFrame(), pd.DataFrame())


def test_smote_table_is_used_when_it_matches_the_train_split(make_config, tmp_path, tiny_splits):
    from fraud_ml.synthetic.smote import smote_table

    cfg = make_config("synthetic.smote.ratio=0.2")
    train = tiny_splits(1200, seed=5)["train"]
    table = smote_table(train, ratio=0.2, seed=1)
    table.loc[table[SOURCE_COL] == "smote", "V1"] = 99.0  # recognisable rows
    write_deltalake(str(tmp_path / "delta" / "train_smote"), table)
    sets = training_sets(train, cfg, ["smote"])
    assert sets.origins["smote"].startswith("table ") and (sets.frames["smote"]["V1"] == 99.0).any()

    # A table made from other train rows is stale: SMOTE is redone in-process.
    sets = training_sets(train.iloc[10:], cfg, ["smote"])
    assert sets.origins["smote"].startswith("in-process") and not (sets.frames["smote"]["V1"] == 99.0).any()
