"""Drift job: PSI per window of features (vs train) and score (vs each version's first rows)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.io.delta_reader import read_columns
from fraud_ml.monitoring.drift import (
    DRIFT_SCHEMA,
    DriftSettings,
    ScoreReferences,
    compute_drift,
    feature_reference,
    run_drift,
    score_references,
)

WINDOW_OVERRIDES = (
    "drift.window=1min",
    "drift.min_rows=100",
    "drift.reference_rows=200",
    "drift.psi_bins=10",
)


def independent_psi(reference: np.ndarray, actual: np.ndarray, bins: int) -> float:
    """PSI written out again: reference deciles, right-open bins, shares floored at 1e-4."""
    cuts = np.unique(np.quantile(reference, [i / bins for i in range(1, bins)]))

    def shares(x):
        idx = np.searchsorted(cuts, x, side="right")
        return np.maximum(np.bincount(idx, minlength=len(cuts) + 1) / len(x), 1e-4)

    e, a = shares(reference), shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.fixture
def tables(make_config, tmp_path, stream_data):
    cfg = make_config(*WINDOW_OVERRIDES)
    root = Path(cfg.get("delta.root"))
    # 6 batches 50 s apart from 12:00:05 -> windows 12:00 (2 batches), 12:01 ... 12:04;
    # version 1 scores batches 0-2, version 2 batches 3-5; features shift from batch 4 on.
    stream = stream_data.write_stream_tables(root, batches=6, rows=150, seed=21, versions=("1", "2"), shift_after=4)
    train = stream_data.write_train_table(root)
    return cfg, stream, train


def test_feature_reference_drops_oversampled_rows():
    frame = pd.DataFrame({"V4": [1.0, 2.0, 3.0, 4.0], "source": ["real", "generated", "smote", None]})
    assert feature_reference(frame)["V4"].tolist() == [1.0, 2.0, 4.0]


def test_run_drift_matches_independent_psi(tables, stream_data):
    cfg, stream, train = tables
    result = run_drift(cfg)
    drift = read_columns(cfg.table_path("drift"))
    assert list(drift.columns) == DRIFT_SCHEMA.names
    assert result.rows_written == len(drift) and result.windows == 5
    preds = stream.predictions
    windows = preds["scored_at"].dt.floor("1min")
    ref = train[train["source"] != "smote"]
    for f in stream_data.features:
        got = drift[drift["feature"] == f].sort_values("window_start")
        assert len(got) == 5 and got["model_version"].isna().all()
        for row in got.itertuples():
            actual = preds.loc[windows == row.window_start, f].to_numpy()
            assert row.rows == len(actual)
            assert row.psi == pytest.approx(independent_psi(ref[f].to_numpy(), actual, 10), rel=1e-9)
            assert row.reference == "train" and row.reference_rows == len(ref)
    v14 = drift[drift["feature"] == "V14"].set_index("window_start")["psi"].sort_index()
    assert (v14.iloc[:3] < 0.2).all()  # batches 0-3: same distribution as train
    assert (v14.iloc[-2:] > 0.5).all()  # batches 4-5: shifted by +2
    # score: per version, against that version's first 200 predictions
    scores = drift[drift["feature"] == "probability"]
    assert sorted(scores["model_version"].unique()) == ["1", "2"]
    for row in scores.itertuples():
        mine = preds[preds["model_version"] == row.model_version].sort_values(
            ["scored_at", "batch_id", "kafka_partition", "kafka_offset"], kind="stable"
        )
        reference = mine["probability"].head(200).to_numpy()
        actual = mine.loc[mine["scored_at"].dt.floor("1min") == row.window_start, "probability"].to_numpy()
        assert row.rows == len(actual) and row.reference_rows == 200
        assert row.psi == pytest.approx(independent_psi(reference, actual, 10), rel=1e-9)


@pytest.mark.parametrize("kept_references", [False, True])
def test_incremental_run_equals_full_recompute(tables, tmp_path, kept_references, stream_data):
    cfg, stream, _ = tables
    refs = ScoreReferences(DriftSettings.from_config(cfg).reference_rows) if kept_references else None
    run_drift(cfg, references=refs)
    first_version = read_columns(cfg.table_path("drift"))
    # More batches arrive, two of them in the last (12:04) window: it is recomputed, not duplicated.
    rng = np.random.default_rng(4)
    for i, seconds in enumerate((280, 330, 400)):
        batch = stream_data.make_batch(
            6 + i,
            120,
            stream_data.base_time + pd.Timedelta(seconds=seconds),
            rng,
            "2",
            shift=2.0,
            offset_start=10_000 * (i + 1),
        )
        stream_data.append_batch(Path(cfg.get("delta.root")), batch, processing_ms=300.0)
    result = run_drift(cfg, references=refs)
    assert result.since == first_version["window_start"].max()
    incremental = read_columns(cfg.table_path("drift"))
    run_drift(cfg, full=True)
    full = read_columns(cfg.table_path("drift"))
    key = ["window_start", "feature", "model_version"]
    cols = key + ["psi", "rows", "reference_rows", "bins"]
    a = incremental[cols].sort_values(key, na_position="first").reset_index(drop=True)
    b = full[cols].sort_values(key, na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not a.duplicated(key).any() and a["window_start"].nunique() == 7


def test_small_windows_are_skipped():
    settings = DriftSettings(features=("V4",), window="1min", bins=4, min_rows=50, reference_rows=10)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    preds = pd.DataFrame(
        {
            "scored_at": [t0] * 60 + [t0 + pd.Timedelta(minutes=1)] * 10,
            "model_version": "1",
            "probability": np.linspace(0, 1, 70),
            "V4": np.linspace(-1, 1, 70),
        }
    )
    ref = pd.DataFrame({"V4": np.linspace(-1, 1, 200)})
    out = compute_drift(preds, ref, score_references(preds, 10), settings)
    assert out["window_start"].unique().tolist() == [t0]
    assert set(out["feature"]) == {"V4", "probability"} and not math.isnan(out["psi"].max())


def test_job_without_predictions_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "drift.py"), "--set", f"delta.root={tmp_path / 'none'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "no predictions table" in errors[0] and "Traceback" not in proc.stderr


def test_a_complete_score_reference_is_not_read_again(tables, monkeypatch):
    from fraud_ml.monitoring import drift

    cfg, _, _ = tables
    refs = ScoreReferences(reference_rows=50)
    path = cfg.table_path("predictions")
    versions = sorted(read_columns(path, ["model_version"])["model_version"].astype(str).unique())
    first = refs.update(path, versions)
    assert all(len(first[v]) == 50 for v in versions)
    reads = []
    monkeypatch.setattr(drift, "read_columns", lambda *a, **k: reads.append(a) or read_columns(*a, **k))
    again = refs.update(path, versions)
    assert reads == [] and all(again[v].equals(first[v]) for v in versions)
