"""End-to-end demo: Kafka broker, data, champion, streaming job, replay, summary, dashboard.

    python jobs/demo.py [--transactions 20000] [--rate 0] [--no-dashboard] [--input creditcard.csv]

With --no-dashboard it waits until every produced transaction is in Delta,
prints the summary and exits 0, stopping everything it started.
"""
import os
import signal
import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.demo import DemoOptions, run_demo


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # run the demo's cleanup: stream, Spark, dashboard, broker


def main(args, cfg) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    dashboard = not args.no_dashboard and os.environ.get("DASHBOARD", "1") not in ("0", "false", "no")
    overrides = list(args.overrides) + ([f"data.input={args.input}"] if args.input else [])
    run_demo(cfg, DemoOptions(transactions=args.transactions, rate=args.rate, dashboard=dashboard),
             conf_path=args.conf, overrides=overrides)
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--transactions", type=int, default=20000, help="how many transactions to replay")
    parser.add_argument("--rate", type=float, default=0.0, help="replay rate in tx/s (0 = as fast as possible)")
    parser.add_argument("--input", default=None, help="real Kaggle creditcard.csv (default: synthetic generator)")
    parser.add_argument("--no-dashboard", action="store_true", help="headless: summary, then exit (or DASHBOARD=0)")
    sys.exit(run_job(main, parser, extra_overrides=lambda a: [f"data.input={a.input}"] if a.input else []))
