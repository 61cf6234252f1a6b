"""jobs/synthesize.py and fraud_ml.synthetic.pipeline with Spark + Delta (+ the real sample when present)."""

from __future__ import annotations

import importlib.util
import json

import mlflow
import numpy as np
import pytest
from deltalake import DeltaTable

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL
from fraud_ml.synthetic.pipeline import synthesize


def _job():
    spec = importlib.util.spec_from_file_location("synthesize_job", PROJECT_ROOT / "jobs" / "synthesize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_rejects_unknown_method(capsys):
    with pytest.raises(SystemExit) as exc:
        _job().build_parser().parse_args(["--method", "vae"])
    assert exc.value.code == 2 and "invalid choice: 'vae'" in capsys.readouterr().err


def test_cli_shortcuts_become_config_overrides():
    job = _job()
    args = job.build_parser().parse_args(
        [
            "--method",
            "wgan",
            "--epochs",
            "7",
            "--samples",
            "50",
            "--ratio",
            "0.3",
            "--device",
            "cpu",
            "--input",
            "x.csv",
        ]
    )
    assert job.overrides(args) == [
        "data.input=x.csv",
        "synthetic.wgan.epochs=7",
        "synthetic.wgan.n_samples=50",
        "synthetic.smote.ratio=0.3",
        "synthetic.wgan.device=cpu",
    ]


@pytest.mark.integration
def test_job_without_splits_fails_with_one_clear_line(spark, tmp_path, capsys):
    job = _job()
    from fraud_ml.cli import run_job

    code = run_job(
        job.main,
        job.build_parser(),
        argv=["--method", "smote", "--no-mlflow", "--set", f"delta.root={tmp_path / 'empty'}"],
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: split table 'train' not found at ") and "--prepare" in err[-1]


@pytest.mark.real_data
@pytest.mark.integration
@pytest.mark.slow
def test_synthesize_wgan_and_smote_end_to_end_on_real_sample(spark, make_config, tmp_path, sample_csv):
    from fraud_ml.training.splits import prepare_splits

    cfg = make_config(
        f"data.input={sample_csv}",
        "synthetic.wgan.epochs=40",
        "synthetic.wgan.n_samples=300",
        "synthetic.wgan.progress=false",
        "synthetic.wgan.device=cpu",
        "synthetic.smote.ratio=0.5",
        "synthetic.composer.fraud_rate=0.02",
        "synthetic.quality.model.n_estimators=60",
        f"synthetic.report_dir={tmp_path / 'reports'}",
    )
    counts = prepare_splits(spark, cfg)
    assert counts["validation"]["frauds"] > 80  # the sample holds all 492 real frauds

    wgan = synthesize(spark, cfg, "wgan")
    rows = DeltaTable(wgan.table_path).to_pandas()
    assert len(rows) == 300 and set(rows[SOURCE_COL]) == {"wgan"} and (rows[LABEL] == 1).all()
    assert rows[ID_COL].is_unique and rows[ID_COL].min() == "wgan-000001"
    assert np.isfinite(rows[FEATURES].to_numpy()).all() and (rows["Amount"] >= 0).all()

    # The composer ran with the WGAN frauds (synthetic.composer.method: wgan): 2% fraud, 60/40.
    stream = DeltaTable(wgan.stream_path).to_pandas()
    frauds = stream[stream[LABEL] == 1]
    assert len(frauds) == round(0.02 * (len(stream) - len(frauds)) / 0.98)
    assert (frauds[SOURCE_COL] == "wgan").sum() == round(0.6 * len(frauds))
    assert set(frauds[SOURCE_COL]) == {"wgan", "real"} and stream[ID_COL].is_unique

    smote = synthesize(spark, cfg, "smote")
    table = DeltaTable(smote.table_path).to_pandas()
    assert table[LABEL].mean() == pytest.approx(0.5, abs=1 / len(table))
    assert set(table[SOURCE_COL]) == {"real", "smote"}
    assert (table[SOURCE_COL] == "real").sum() == counts["train"]["rows"]

    quality = DeltaTable(cfg.table_path("synthetic_quality")).to_pandas()
    assert sorted(quality["method"]) == ["smote", "wgan"]
    for _, q in quality.iterrows():
        assert 0.0 <= q["c2st_auc"] <= 1.0 and 0.0 < q["tstr_ap"] <= 1.0 and q["mean_wasserstein"] >= 0
        assert q["trtr_ap"] > 0.8  # real frauds are well separable on the real test split
        assert json.loads(q["report_json"])["summary"]["method"] == q["method"]
    s = smote.report.summary
    assert s["tstr_ap"] > 0.8 and s["dcr_ratio"] < 1.0  # SMOTE interpolates between real frauds
    for method in ("wgan", "smote"):
        for suffix in ("quality.json", "distances.csv", "pca.png"):
            assert (tmp_path / "reports" / f"{method}_{suffix}").is_file()

    client = mlflow.tracking.MlflowClient()
    run = client.get_run(wgan.run_id)
    assert run.data.tags["method"] == "wgan" and "quality_c2st_auc" in run.data.metrics
    assert len(client.get_metric_history(wgan.run_id, "wgan_wasserstein")) == 40
    artifacts = {f.path for d in ("wgan", "quality") for f in client.list_artifacts(wgan.run_id, d)}
    assert {"wgan/generator.pt", "wgan/wgan_checkpoint.pt", "quality/wgan_pca.png"} <= artifacts
