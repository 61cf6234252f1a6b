"""Streamlit dashboard on the Delta tables, bound to dashboard.address:dashboard.port (127.0.0.1 by default).

python jobs/dashboard.py [--conf conf/local.yaml] [--set dashboard.port=8502]
"""

import os
import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.ops.dashboard import dashboard_command, dashboard_niceness


def main(args, cfg) -> int:
    config_args = (["--conf", args.conf] if args.conf else []) + [a for o in args.overrides for a in ("--set", o)]
    command = dashboard_command(cfg, config_args)
    os.nice(dashboard_niceness(cfg))  # kept across the exec: Streamlit yields the CPU to a stream beside it
    os.execv(command[0], command)  # Streamlit takes over this process (Ctrl-C stops it)


if __name__ == "__main__":
    sys.exit(run_job(main, job_parser(__doc__)))
