"""Soak: an hour at 1,000 tx/s with the stream, the dashboard (in headless Chromium) and the drift job.

    python jobs/soak.py [--minutes 60] [--window-minutes 10] [--offered-tps 1000]

Uses its own broker (unless --use-running-broker), scratch tables, checkpoint and MLflow
store under --workdir, and the benchmark's synthetic 300-tree model. Prints one Markdown
row per window (batch p50/p99, latency p50/p99, look-back size, RSS, file counts) and,
last, one JSON object. A benchmark, never a test (fraud_ml/ops/soak.py).
"""

import json
import sys
from functools import cache

from fraud_ml.cli import interrupt_on_sigterm, job_parser, options_from_args, run_job
from fraud_ml.ops.bench import (
    add_scratch_arguments,
    child_conf_args,
    scratch_broker,
    scratch_overrides,
    scratch_workdir,
)
from fraud_ml.ops.soak import SoakOptions, run_soak


@cache
def soak_overrides(workdir: str | None, use_running_broker: bool, user: tuple[str, ...]) -> tuple[str, ...]:
    """Scratch locations, then the user's overrides; computed once so the child jobs get the same."""
    return (*scratch_overrides(workdir, use_running_broker), *user)


def main(args, cfg) -> int:
    interrupt_on_sigterm()  # a terminated run still stops its broker, stream and other children
    with scratch_workdir(args.workdir, cfg) as workdir, scratch_broker(cfg) as cfg:
        overrides = soak_overrides(args.workdir, args.use_running_broker, tuple(args.overrides))
        conf_args = child_conf_args(args.conf, overrides, cfg)
        result = run_soak(cfg, options_from_args(SoakOptions, args), conf_args, workdir)
    print(result.pop("markdown"), flush=True)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=SoakOptions.minutes, help="minutes of offered load")
    parser.add_argument("--window-minutes", type=float, default=SoakOptions.window_minutes, help="reporting window")
    parser.add_argument("--offered-tps", type=float, default=SoakOptions.offered_tps, help="offered load (tx/s)")
    parser.add_argument(
        "--sample-seconds",
        dest="sample_s",
        type=float,
        default=SoakOptions.sample_s,
        help="RSS / file-count sampling period",
    )
    add_scratch_arguments(parser)
    sys.exit(
        run_job(
            main,
            parser,
            extra_overrides=lambda a: list(soak_overrides(a.workdir, a.use_running_broker, tuple(a.overrides))),
        )
    )
