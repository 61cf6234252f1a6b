"""Both notebooks execute top to bottom (nbclient) against tables and MLflow runs the tests create.

Also checks that the committed notebooks carry no outputs.
"""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient

from fraud_ml.config import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"


def execute(name: str, env: dict[str, str], monkeypatch, timeout: int = 240) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel with ``env`` added; return the executed notebook."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def count_images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", ["01_explore_predictions.ipynb", "02_model_report.ipynb"])
def test_committed_notebooks_are_stripped(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.fixture
def explore_env(tmp_path, stream_data):
    """Stream tables + drift table, and a config file with a small, quick local Spark."""
    from fraud_ml.config import load_config
    from fraud_ml.monitoring.drift import run_drift

    root = tmp_path / "delta"
    tables = stream_data.write_stream_tables(root, batches=4, rows=80, seed=13)
    stream_data.write_train_table(root, rows=1000)
    run_drift(load_config(overrides=[f"delta.root={root}", "drift.min_rows=50"], env={}))
    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "local.yaml").read_text())
    conf["delta"]["root"] = str(root)
    conf["spark"].update(master="local[1]", driver_memory="1g", shuffle_partitions=1)
    conf["spark"]["conf"] = {
        "spark.ui.enabled": "false",
        "spark.sql.adaptive.enabled": "false",
        "spark.databricks.delta.snapshotPartitions": "1",
    }
    conf_path = tmp_path / "notebook.yaml"
    conf_path.write_text(yaml.safe_dump(conf))
    return {"FRAUD_ML_CONF": str(conf_path), "FRAUD_ML_DELTA_ROOT": str(root)}, tables


def check_explore_outputs(nb: nbformat.NotebookNode, preds: pd.DataFrame) -> str:
    text = outputs_text(nb)
    assert f"{len(preds):,} predictions in 4 micro-batches" in text
    # time travel: version 0 holds the first batch only (one commit per batch)
    assert f"version 0: {int((preds['batch_id'] == 0).sum()):,} rows  ->  version 3: {len(preds):,} rows" in text
    known = preds[preds["label"].notna()]
    tp = int(((known["decision"] == 1) & (known["label"] == 1)).sum())
    precision = tp / int((known["decision"] == 1).sum())
    assert f"whole run: precision {precision:.3f}" in text
    assert count_images(nb) >= 3  # latency, quality, drift figures
    return text


@pytest.mark.timeout(120)
def test_explore_predictions_deltalake_part(explore_env, monkeypatch):
    env, tables = explore_env
    nb = execute("01_explore_predictions.ipynb", {**env, "FRAUD_ML_NOTEBOOK_SPARK": "0"}, monkeypatch)
    text = check_explore_outputs(nb, tables.predictions)
    assert "Spark versionAsOf" not in text


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_explore_predictions_with_spark(explore_env, monkeypatch):
    if not any((PROJECT_ROOT / "var" / "jars" / "spark").glob("*.jar")):
        pytest.skip("Spark jars not resolved (make jars)")
    env, tables = explore_env
    nb = execute("01_explore_predictions.ipynb", {**env, "FRAUD_ML_NOTEBOOK_SPARK": "1"}, monkeypatch, timeout=540)
    text = check_explore_outputs(nb, tables.predictions)
    first = int((tables.predictions["batch_id"] == 0).sum())
    assert f"Spark versionAsOf 0: {first:,} rows (deltalake said {first:,})" in text


@pytest.mark.timeout(300)
def test_model_report_runs_on_mlflow_runs(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("fraud-detection", artifact_location=(tmp_path / "artifacts").as_uri())
    recall = np.linspace(1, 0, 11)
    # Runs that log curve data (JSON / CSV) ...
    for name, ap in [("xgboost-json", 0.85), ("logistic-csv", 0.71)]:
        with mlflow.start_run(experiment_id=experiment, run_name=name):
            mlflow.log_params({"model": name.split("-")[0], "seed": 42})
            mlflow.log_metrics({"test_average_precision": ap, "test_roc_auc": 0.96, "test_f1": ap - 0.1})
            curve = {"recall": recall.tolist(), "precision": (1 - recall * (1 - ap)).tolist()}
            if name.endswith("json"):
                mlflow.log_dict(curve, "pr_curve.json")
            else:
                mlflow.log_text(pd.DataFrame(curve).to_csv(index=False), "pr_curve.csv")
    # ... a model zoo as fraud_ml/training/zoo.py logs it: parent with comparison.csv, children with pr_curve.png ...
    png = tmp_path / "pr_curve.png"
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(recall, 1 - recall / 2)
    fig.savefig(png)
    plt.close(fig)
    with mlflow.start_run(experiment_id=experiment, run_name="zoo-parent") as parent:
        mlflow.set_tags({"job": "train", "kind": "model-zoo"})
        rows = []
        for key, model, ap in [("dt", "DecisionTree", 0.62), ("rf", "RandomForest", 0.80)]:
            with mlflow.start_run(experiment_id=experiment, run_name=f"{key}-plain", nested=True) as child:
                mlflow.set_tags({"model": model, "model_key": key, "variant": "plain"})
                mlflow.log_params({"model": model, "variant": "plain"})
                mlflow.log_metrics(
                    {
                        "test_average_precision": ap,
                        "test_roc_auc": 0.9,
                        "test_f1": ap - 0.05,
                        "test_tp": 40,
                        "test_threshold": 0.5,
                    }
                )
                mlflow.log_artifact(str(png))
            rows.append({"model": model, "variant": "plain", "average_precision": ap, "run_id": child.info.run_id})
        mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "comparison.csv")
        mlflow.log_metric("best_test_average_precision", 0.80)
    # ... and a run with metrics but no curve at all.
    with mlflow.start_run(experiment_id=experiment, run_name="no-curve"):
        mlflow.log_metric("test_average_precision", 0.5)
    assert parent.info.run_id
    nb = execute("02_model_report.ipynb", {"MLFLOW_TRACKING_URI": uri}, monkeypatch, timeout=180)
    text = outputs_text(nb)
    assert "6 runs in experiment 'fraud-detection'" in text
    assert "runs without test metrics (zoo parents ...): zoo-parent" in text
    assert "zoo comparison of run zoo-parent:" in text and "RandomForest" in text
    assert "PR curves plotted for 2 of 5 runs, logged PR-curve images shown for 2" in text
    assert "no-curve: no pr_curve.json/pr_curve.csv/pr_curve.png artifact" in text
    # side-by-side table ranked by test average precision
    table = text[text.index("test_average_precision") :]
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    assert lines["xgboost-json"][1] == "xgboost" and lines["rf-plain"][1:3] == ["RandomForest", "plain"]
    order = [table.index(n) for n in ("xgboost-json", "rf-plain", "logistic-csv", "dt-plain", "no-curve")]
    assert order == sorted(order)
    assert count_images(nb) >= 3  # metric bars, overlaid curves, grid of logged images
