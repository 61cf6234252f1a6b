"""Synthetic fraud rows with a quality report: SMOTE on train, (conditional) WGAN-GP on validation.

    python jobs/synthesize.py --method smote|wgan|cwgan [--prepare [--input creditcard.csv]]
                              [--epochs N] [--samples N] [--ratio R] [--device auto|cpu|cuda]
                              [--no-compose] [--no-report] [--no-mlflow] [--conf ...] [--set key=value ...]
    spark-submit --jars "$(python -m fraud_ml.local.jars --csv)" jobs/synthesize.py --method wgan

Writes the synthetic set (Delta, every synthetic row has source=smote/wgan/cwgan),
its quality report (JSON/CSV/PNG under synthetic.report_dir, a row in the
synthetic_quality Delta table, MLflow) and, when synthetic.composer.method is
this method, the replay stream (validation normals + 60% synthetic / 40% real
frauds at synthetic.composer.fraud_rate). Settings: the synthetic section of the config.
"""

import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.synthetic.pipeline import METHODS


def main(args, cfg) -> int:
    from fraud_ml.io.spark import build_spark
    from fraud_ml.synthetic.pipeline import synthesize

    spark = build_spark(cfg, f"fraud-ml-synthesize-{args.method}")
    if args.prepare:
        from fraud_ml.training.splits import prepare_splits

        prepare_splits(spark, cfg)
    result = synthesize(
        spark,
        cfg,
        args.method,
        compose=False if args.no_compose else None,
        report=False if args.no_report else None,
        track=not args.no_mlflow,
    )
    print(
        f"{result.method}: {result.synthetic_rows} synthetic frauds ({result.table_rows} rows) -> {result.table_path}"
    )
    if result.epochs_per_second is not None:
        print(f"  trained on {result.device} at {result.epochs_per_second:.1f} epochs/s")
    if result.report is not None:
        s = result.report.summary
        print(
            f"  C2ST AUC {s['c2st_auc']:.3f} (0.5 = indistinguishable) | TSTR AP {s['tstr_ap']:.3f} vs real "
            f"{s['trtr_ap']:.3f}, augmented {s['augmented_ap']:.3f} | mean Wasserstein {s['mean_wasserstein']:.3f} "
            f"| mean KS {s['mean_ks']:.3f} | NN-distance ratio {s['dcr_ratio']:.2f}"
        )
        print(f"  verdict: {s['verdict']}")
        print(f"  report: {result.report.paths.get('json')}  plot: {result.report.paths.get('plot')}")
    if result.stream_path:
        st = result.stream
        print(
            f"  stream: {st['rows']} rows, {st['frauds']} frauds ({st['fraud_rate']:.4%}): "
            f"{st['synthetic_frauds']} synthetic + {st['real_frauds']} real -> {result.stream_path}"
        )
    return 0


def overrides(args) -> list[str]:
    """CLI shortcuts as config overrides (so the config stays the one source of settings)."""
    out = []
    if args.input:
        out.append(f"data.input={args.input}")
    if args.epochs is not None:
        out.append(f"synthetic.wgan.epochs={args.epochs}")
    if args.samples is not None:
        out.append(f"synthetic.wgan.n_samples={args.samples}")
    if args.ratio is not None:
        out.append(f"synthetic.smote.ratio={args.ratio}")
    if args.device:
        out.append(f"synthetic.wgan.device={args.device}")
    return out


def build_parser():
    parser = job_parser(__doc__)
    parser.add_argument("--method", required=True, choices=METHODS, help="smote | wgan | cwgan (conditional WGAN-GP)")
    parser.add_argument("--prepare", action="store_true", help="(re)write the train/validation/test splits first")
    parser.add_argument("--input", default=None, help="real Kaggle creditcard.csv for --prepare (data.input)")
    parser.add_argument("--epochs", type=int, default=None, help="WGAN epochs (synthetic.wgan.epochs)")
    parser.add_argument("--samples", type=int, default=None, help="WGAN rows to generate (synthetic.wgan.n_samples)")
    parser.add_argument("--ratio", type=float, default=None, help="SMOTE fraud ratio (synthetic.smote.ratio)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (synthetic.wgan.device)")
    parser.add_argument("--no-compose", action="store_true", help="do not write the composed stream")
    parser.add_argument("--no-report", action="store_true", help="skip the quality report")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    return parser


if __name__ == "__main__":
    sys.exit(run_job(main, build_parser(), extra_overrides=overrides))
