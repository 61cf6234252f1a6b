"""Compute score and feature drift (PSI per time window) into the ``drift`` Delta table.

    python jobs/drift.py                      # new windows since the last run
    python jobs/drift.py --full               # recompute every window
    python jobs/drift.py --every 30           # keep going, one pass every 30 s (Ctrl-C stops)

See fraud_ml/monitoring/drift.py and docs/dashboard.md for the method.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fraud_ml.config import add_config_arguments, config_from_args  # noqa: E402
from fraud_ml.errors import FraudMLError  # noqa: E402
from fraud_ml.logs import setup_logging  # noqa: E402

log = logging.getLogger("jobs.drift")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options: the shared --conf/--set plus --full and --every."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--full", action="store_true", help="recompute all windows instead of only the new ones")
    parser.add_argument(
        "--every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="repeat every SECONDS until interrupted (default: run once)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the drift job; 0 on success, 2 on a user-facing error."""
    args = parse_args(argv)
    setup_logging("INFO")
    try:
        cfg = config_from_args(args)
        setup_logging(cfg.get("project.log_level"))
        from fraud_ml.monitoring.drift import DriftSettings, ScoreReferences, run_drift

        full = args.full
        references = ScoreReferences(DriftSettings.from_config(cfg).reference_rows)
        while True:
            result = run_drift(cfg, full=full, references=references)
            log.info(
                "drift table version %s: %d rows, %d windows", result.table_version, result.rows_written, result.windows
            )
            if args.every <= 0:
                return 0
            full = False
            time.sleep(args.every)
    except FraudMLError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.info("stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
