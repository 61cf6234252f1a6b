"""Champion / challenger: train a challenger XGBoost on the current splits, register it
without the alias, score it and the current champion on the same real test split, and
move ``<mlflow.model_name>@<mlflow.alias>`` only when the challenger wins by
``train.promotion.margin`` on ``train.promotion.metric``. The old version is kept
(as ``@<train.promotion.previous_alias>``); the decision is an MLflow run. A running
stream picks up the new champion on restart.

    python jobs/retrain.py [--tune] [--dry-run] [--conf conf/local.yaml] [--set train.promotion.margin=0.01]
"""

import argparse
import sys

from fraud_ml.cli import job_parser, run_job


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--tune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tune the challenger's XGBoost params first (default: train.promotion.tune)",
    )
    parser.add_argument("--dry-run", action="store_true", help="register and compare, but never move the alias")
    return parser


def main(args, cfg) -> int:
    from fraud_ml.io.spark import build_spark
    from fraud_ml.training.promotion import retrain
    from fraud_ml.training.splits import load_splits

    splits = load_splits(build_spark(cfg, "fraud-ml-retrain"), cfg)
    result = retrain(splits, cfg, tune=args.tune, apply=not args.dry_run)
    d = result.decision
    print(d.summary())
    if d.promoted and not args.dry_run:
        print(
            f"@{d.alias} -> models:/{cfg.get('mlflow.model_name')}/{d.challenger_version} "
            "(restart the stream to score with it)"
        )
    elif d.promoted:
        print("dry run: alias not moved")
    print(f"decision logged in MLflow run {d.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, build_parser()))
