"""Real rows: the champion learns real fraud patterns from ../shared/data/creditcard_sample.csv."""

import pytest

from fraud_ml.training.champion import train_champion
from fraud_ml.training.splits import load_splits, prepare_splits


def test_champion_on_real_sample_reaches_ap_095(spark, make_config, sample_csv):
    cfg = make_config(f"data.input={sample_csv}", "mlflow.model_name=real-sample-champion")
    counts = prepare_splits(spark, cfg)
    assert counts["test"]["frauds"] >= 90  # ~20% of the sample's frauds, stratified
    result = train_champion(load_splits(spark, cfg), cfg)
    assert result.data_sources == ["real"]
    assert result.metrics["average_precision"] >= 0.95, result.metrics
    assert 0.0 < result.threshold < 1.0
    assert result.champion is not None and result.champion.version
    # Fitted on the sample's ~28 % fraud, the probabilities are moved to the production rate.
    assert 0.2 < result.prior.fitted_rate < 0.35 and result.prior.production_rate == 0.00172
    assert result.prior.ratio < 0.01
    assert result.production["recall"] == pytest.approx(result.metrics["recall"])  # reweighting leaves recall alone
    assert result.production["precision"] <= result.metrics["precision"]  # a rarer class: precision cannot rise
