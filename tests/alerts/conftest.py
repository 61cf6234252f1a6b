"""Fixtures of the alerts path: a default-sized champion registered beside the session one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_ml.schema import FEATURES, LABEL

PARITY_ROWS = 50_000


@pytest.fixture(scope="session")
def parity_rows() -> pd.DataFrame:
    """50,000 rows of the labelled synthetic generator (features and Class)."""
    from fraud_ml.training.data import SyntheticCreditCardGenerator

    return SyntheticCreditCardGenerator(n_rows=PARITY_ROWS, fraud_rate=0.01, seed=11).generate()


@pytest.fixture(scope="session")
def default_champion(base_config, session_dir, parity_rows):
    """(compiled, pyfunc) of a champion of train.xgboost's default size (300 trees of depth 6), with
    a prior correction, registered in the session's MLflow store and read back from the registry."""
    import mlflow

    from fraud_ml.alerts.booster_sql import compile_model_dir
    from fraud_ml.io.mlflow import download_verified, load_verified, setup_mlflow
    from fraud_ml.training.calibration import prior_shift
    from fraud_ml.training.champion import fit_xgboost
    from fraud_ml.training.pyfunc_model import log_champion

    setup_mlflow(base_config)
    params = {**base_config.get("train.xgboost"), "n_jobs": 2}
    booster = fit_xgboost(parity_rows, params, seed=5).get_booster()
    ratio = 0.05
    raw = booster.inplace_predict(parity_rows[FEATURES].to_numpy(np.float32))
    threshold = float(np.quantile(prior_shift(raw, ratio)[parity_rows[LABEL].to_numpy() == 1], 0.3))
    with mlflow.start_run(run_name="alerts-parity"):
        registered = log_champion(
            booster,
            threshold,
            "alerts-parity",
            None,
            session_dir / "alerts-parity",
            base_config.get("train.reasons"),
            prior={"prior_odds_ratio": ratio},
        )
    model_dir = download_verified(registered.model_uri)
    return compile_model_dir(model_dir, registered.version), load_verified(registered.model_uri)
