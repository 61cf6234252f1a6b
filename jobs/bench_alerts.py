"""Alerts benchmark: Kafka -> real-time alerts latency at an offered rate, the Delta stream running too.

    python jobs/bench_alerts.py --offered-tps 1000 [--duration 60] [--warmup 20]

Uses its own broker (unless --use-running-broker), scratch tables, checkpoints and MLflow
store under --workdir, and the benchmark's synthetic 300-tree model. Prints one JSON object
last (latency_p50_ms, latency_p99_ms, offered_tps, mode "alerts", received, sent, parity).
A benchmark, never a test (fraud_ml/ops/bench_alerts.py).
"""

import json
import sys
import time
from functools import cache
from pathlib import Path

from fraud_ml.cli import interrupt_on_sigterm, job_parser, options_from_args, run_job
from fraud_ml.ops.bench import (
    add_scratch_arguments,
    child_conf_args,
    scratch_broker,
    scratch_overrides,
    scratch_workdir,
)
from fraud_ml.ops.bench_alerts import AlertsBenchOptions, run_bench_alerts


@cache
def bench_overrides(workdir: str | None, use_running_broker: bool, user: tuple[str, ...]) -> tuple[str, ...]:
    """Scratch locations and topics, then the user's overrides; computed once so the child jobs get the same."""
    # A folder per run: `make bench-alerts` runs twice with one --workdir, and the second run must not
    # resume the first one's checkpoints (their topic is gone with its broker).
    run_dir = str(Path(workdir) / f"run-{time.strftime('%Y%m%d-%H%M%S')}") if workdir else None
    scratch = scratch_overrides(run_dir, use_running_broker)
    topic = next(o.split("=", 1)[1] for o in scratch if o.startswith("kafka.topic="))
    work = Path(next(o.split("=", 1)[1] for o in scratch if o.startswith("delta.root="))).parent
    return (
        *scratch,
        f"alerts.topic={topic}-alerts",
        f"alerts.dead_letter_topic={topic}-dead-letter",
        f"alerts.checkpoint_dir={work / 'alerts-checkpoint'}",
        "alerts.emit=all",
        "alerts.starting_offsets=latest",
        *user,
    )


def main(args, cfg) -> int:
    interrupt_on_sigterm()  # a terminated run still stops its broker, stream and other children
    with scratch_workdir(args.workdir, cfg) as workdir, scratch_broker(cfg) as cfg:
        overrides = bench_overrides(args.workdir, args.use_running_broker, tuple(args.overrides))
        conf_args = child_conf_args(args.conf, overrides, cfg)
        result = run_bench_alerts(cfg, options_from_args(AlertsBenchOptions, args), conf_args, workdir)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--offered-tps", type=float, default=AlertsBenchOptions.offered_tps, help="offered load (tx/s)")
    parser.add_argument("--warmup", dest="warmup_s", type=float, default=AlertsBenchOptions.warmup_s)
    parser.add_argument("--duration", dest="duration_s", type=float, default=AlertsBenchOptions.duration_s)
    parser.add_argument("--trees", type=int, default=AlertsBenchOptions.trees, help="trees in the benchmark model")
    add_scratch_arguments(parser)
    sys.exit(
        run_job(
            main,
            parser,
            extra_overrides=lambda a: list(bench_overrides(a.workdir, a.use_running_broker, tuple(a.overrides))),
        )
    )
