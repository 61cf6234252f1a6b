"""Split the input 60/20/20 (stratified, seeded) into train/validation/test Delta tables.

    python jobs/prepare_data.py [--input creditcard.csv] [--conf conf/local.yaml] [--set key=value ...]
    spark-submit --jars "$(python -m fraud_ml.local.jars --csv)" jobs/prepare_data.py --input /shared/creditcard.csv

Without --input (and with data.input empty) the clearly labelled SYNTHETIC generator is used.
"""

import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.spark import build_spark
from fraud_ml.training.splits import prepare_splits


def main(args, cfg) -> int:
    counts = prepare_splits(build_spark(cfg, "fraud-ml-prepare"), cfg)
    for name, c in counts.items():
        print(f"{name:>10}: {c['rows']:>8} rows, {c['frauds']:>5} frauds -> {cfg.table_path(name)}")
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--input", help="path to a real Kaggle creditcard.csv (overrides data.input)")
    parser.add_argument("--rows", type=int, help="rows of the synthetic generator (data.synthetic_rows)")
    sys.exit(
        run_job(
            main,
            parser,
            extra_overrides=lambda a: (
                ([f"data.input={a.input}"] if a.input else []) + ([f"data.synthetic_rows={a.rows}"] if a.rows else [])
            ),
        )
    )
