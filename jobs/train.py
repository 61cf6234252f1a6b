"""The training experiment: the model zoo (DecisionTree, RandomForest, XGBoost, CatBoost,
LightGBM x data variants plain / SMOTE / WGAN-GP), the XGBoost hyperparameter search,
then the champion: trained with the best params, threshold chosen on validation,
evaluated on the real test split and registered as ``<mlflow.model_name>@<mlflow.alias>``.
Everything lands in one MLflow experiment under one parent run; the comparison
table is printed at the end.

    python jobs/train.py [--no-zoo] [--no-tune] [--models dt,xgb] [--variants plain,smote]
                         [--conf conf/local.yaml] [--set train.tuning.n_iter=5 ...]
"""

import argparse
import sys

from fraud_ml.cli import job_parser, run_job


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    switches = {  # on / off / unset (None: the config decides)
        "zoo": (None, "train and compare the model zoo (default: train.zoo.enabled)"),
        "tune": (None, "randomized search of the champion's XGBoost params (default: train.tuning.enabled)"),
        "progress": (None, "tqdm progress bar over the zoo (default: train.zoo.progress)"),
        "register": (True, "register the champion and point the alias at it (default: yes)"),
    }
    for name, (default, help_text) in switches.items():
        parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help_text)
    parser.add_argument("--models", default=None, help="zoo models, comma separated: dt,rf,xgb,cat,lgbm")
    parser.add_argument("--variants", default=None, help="zoo data variants, comma separated: plain,smote,wgan,cwgan")
    return parser


def main(args, cfg) -> int:
    from fraud_ml.io.spark import build_spark
    from fraud_ml.training.experiment import run_experiment

    result = run_experiment(
        build_spark(cfg, "fraud-ml-train"),
        cfg,
        **{name: getattr(args, name) for name in ("zoo", "tune", "models", "variants", "progress", "register")},
    )
    if result.zoo is not None:
        zoo = result.zoo
        print(f"\nModel zoo on the real test split ({len(zoo.runs_)} runs, parent run {zoo.parent_run_id_}):\n")
        print(zoo.report())
        print()
    if result.tuned is not None:
        tuned = result.tuned
        print(f"tuning: best of {len(tuned.trials_)} trials, val AP {tuned.best_score_:.4f}: {tuned.best_params_}")
    champion = result.champion
    m = champion.metrics
    print(
        f"champion test AP {m['average_precision']:.4f}  ROC AUC {m['roc_auc']:.4f}  threshold "
        f"{champion.threshold:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}"
    )
    if champion.champion:
        print(f"registered {champion.champion.model_uri} as @{cfg.get('mlflow.alias')}")
    print(f"MLflow: experiment '{cfg.get('mlflow.experiment')}', run {result.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, build_parser()))
