"""Train the XGBoost champion, choose its threshold on validation, evaluate on test,
and register it in MLflow as ``<mlflow.model_name>@<mlflow.alias>``.

    python jobs/train.py [--conf conf/local.yaml] [--set train.xgboost.n_estimators=500 ...]
"""
import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.session import build_spark
from fraud_ml.training import load_splits, train_champion


def main(args, cfg) -> int:
    result = train_champion(load_splits(build_spark(cfg, "fraud-ml-train"), cfg), cfg)
    m = result.metrics
    print(f"test AP {m['average_precision']:.4f}  ROC AUC {m['roc_auc']:.4f}  threshold {result.threshold:.3f}  "
          f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}")
    if result.champion:
        print(f"registered {result.champion.model_uri} as @{cfg.get('mlflow.alias')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, job_parser(__doc__)))
