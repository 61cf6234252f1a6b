"""End-to-end demo: Kafka broker, data, champion, streaming job, replay, summary, dashboard.

    python jobs/demo.py [--transactions 20000] [--rate 1000] [--no-dashboard] [--no-alerts] [--input creditcard.csv]

--transactions and --rate override demo.transactions and demo.rate (conf/local.yaml: 1,000 tx/s,
a realistic rate; --rate 0 replays as fast as possible).

The real-time alerts job (jobs/alerts.py) runs beside the stream (demo.alerts) and the summary
reports its alerts and their latency; --no-alerts leaves it out.

With --no-dashboard it waits until every produced transaction is in Delta,
prints the summary and exits 0, stopping everything it started.
"""

import os
import sys

from fraud_ml.cli import interrupt_on_sigterm, job_parser, run_job
from fraud_ml.ops.demo import DemoOptions, run_demo


def main(args, cfg) -> int:
    interrupt_on_sigterm()  # run the demo's cleanup: stream, Spark, dashboard, broker
    dashboard = not args.no_dashboard and os.environ.get("DASHBOARD", "1") not in ("0", "false", "no")
    overrides = list(args.overrides) + ([f"data.input={args.input}"] if args.input else [])
    options = DemoOptions.from_config(cfg, dashboard=dashboard)
    run_demo(cfg, options, conf_path=args.conf, overrides=overrides)
    return 0


def demo_overrides(args) -> list[str]:
    """Config overrides from the demo's own options (given ones only)."""
    given = {"data.input": args.input, "demo.transactions": args.transactions, "demo.rate": args.rate}
    if args.no_alerts:
        given["demo.alerts"] = "false"
    return [f"{key}={value}" for key, value in given.items() if value is not None]


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--transactions", type=int, default=None, help="how many to replay (demo.transactions)")
    parser.add_argument("--rate", type=float, default=None, help="replay rate in tx/s, 0 = full speed (demo.rate)")
    parser.add_argument("--input", default=None, help="real Kaggle creditcard.csv (default: synthetic generator)")
    parser.add_argument("--no-alerts", action="store_true", help="without the real-time alerts job (demo.alerts)")
    parser.add_argument("--no-dashboard", action="store_true", help="headless: summary, then exit (or DASHBOARD=0)")
    sys.exit(run_job(main, parser, extra_overrides=demo_overrides))
