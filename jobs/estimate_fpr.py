"""Out-of-fold false-positive rate and recall of the champion recipe on a real creditcard.csv.

    python jobs/estimate_fpr.py --input ../shared/data/creditcard_sample.csv [--folds 5]
                                [--set train.threshold.strategy=target_fpr]

Every real row is held out once (stratified folds); the rest is split into train and
validation like data.split, the champion recipe of `make train` (the XGBoost search when
train.tuning.enabled, train.xgboost, prior correction, train.threshold.*) runs on them, and the
held-out fold is scored (fraud_ml/training/oof.py). The search's trials go to a throw-away
MLflow store, not to mlflow.tracking_uri.
Prints the FPR over all real normals and the recall over all frauds with 95 % intervals;
the last line is one JSON object.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from fraud_ml.cli import job_parser, run_job
from fraud_ml.errors import DataSchemaError
from fraud_ml.io.mlflow import setup_mlflow
from fraud_ml.schema import LABEL
from fraud_ml.training.data import resolve_columns
from fraud_ml.training.oof import out_of_fold_estimate


def read_real_csv(path: str, drop_duplicates: bool) -> pd.DataFrame:
    """The Kaggle columns of a real creditcard.csv (the loader's header rules), labels as 0/1."""
    try:
        raw = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise DataSchemaError(f"cannot read {path}: {exc}") from None
    mapping = resolve_columns(list(raw.columns))
    frame = raw.rename(columns=mapping)[list(mapping.values())]
    frame[LABEL] = frame[LABEL].astype(float).astype(int)
    return frame.drop_duplicates().reset_index(drop=True) if drop_duplicates else frame


def main(args, cfg) -> int:
    frame = read_real_csv(args.input, cfg.get("data.drop_duplicates"))
    tune = cfg.get("train.tuning.enabled") if args.tune is None else args.tune
    with tempfile.TemporaryDirectory(prefix="estimate-fpr-mlflow-") as store:
        if tune:
            scratch = Path(store)
            setup_mlflow(
                cfg.with_overrides(
                    [
                        f"mlflow.tracking_uri=sqlite:///{scratch / 'mlflow.db'}",
                        f"mlflow.artifact_location={scratch / 'artifacts'}",
                    ],
                    env={},
                )
            )
        estimate = out_of_fold_estimate(frame, cfg, folds=args.folds, tune=tune)
    for line in estimate.lines():
        print(line)
    print(json.dumps(estimate.as_dict()))
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--input", required=True, help="a real Kaggle creditcard.csv (or the sample)")
    parser.add_argument("--folds", type=int, default=5, help="stratified folds (every row held out once)")
    parser.add_argument(
        "--tune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the XGBoost search in each fold (default: train.tuning.enabled)",
    )
    sys.exit(run_job(main, parser))
