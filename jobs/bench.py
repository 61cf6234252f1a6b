"""Streaming benchmark (Kafka -> Spark -> pyfunc -> Delta) beside its reference lines. Never a timed test.

    python jobs/bench.py --mode capacity [--backlog 1000000] [--lines stream,floor]
    python jobs/bench.py --mode latency --offered-tps 1000 [--duration 40]
    python jobs/bench.py --mode fuzz [--fuzz-messages 100000]

Uses its own broker (unless one answers on kafka.bootstrap_servers), a scratch Delta
root, checkpoint and MLflow store under --workdir, and a synthetic 300-tree model.
The last line printed is one JSON object (throughput_tps, latency_p50_ms,
latency_p99_ms, offered_tps, mode, ...). Tune with --set, e.g.
--set stream.max_offsets_per_trigger=250000 --set spark.arrow_batch_size=20000.
"""

import sys

from fraud_ml.cli import interrupt_on_sigterm, job_parser, options_from_args, run_job
from fraud_ml.ops.bench import (
    MODES,
    BenchOptions,
    add_scratch_arguments,
    format_result,
    run_benchmark,
    scratch_overrides,
    scratch_workdir,
)
from fraud_ml.ops.bench_lines import LINES


def main(args, cfg) -> int:
    interrupt_on_sigterm()  # a terminated run still stops its broker, stream and other children
    lines = tuple(args.lines.split(",")) if args.lines else BenchOptions.lines
    with scratch_workdir(args.workdir, cfg):
        result = run_benchmark(cfg, options_from_args(BenchOptions, args, lines=lines))
    print(format_result(result), flush=True)
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--mode", choices=list(MODES), default=BenchOptions.mode)
    parser.add_argument("--lines", default="", help=f"comma-separated lines to run (default: all of {','.join(LINES)})")
    parser.add_argument("--fuzz-messages", type=int, default=BenchOptions.fuzz_messages, help="fuzz: messages pushed")
    parser.add_argument("--backlog", type=int, default=BenchOptions.backlog, help="capacity: transactions pre-loaded")
    parser.add_argument(
        "--offered-tps", type=float, default=BenchOptions.offered_tps, help="latency: offered load (tx/s)"
    )
    parser.add_argument(
        "--warmup", dest="warmup_s", type=float, default=BenchOptions.warmup_s, help="latency: seconds before measuring"
    )
    parser.add_argument(
        "--duration", dest="duration_s", type=float, default=BenchOptions.duration_s, help="latency: measured seconds"
    )
    parser.add_argument(
        "--repeats", type=int, default=BenchOptions.repeats, help="runs of each line, alternating in order (medians)"
    )
    parser.add_argument("--trees", type=int, default=BenchOptions.trees, help="trees in the benchmark model")
    add_scratch_arguments(parser)
    # The user's overrides come last so they win over the scratch locations.
    sys.exit(
        run_job(
            main,
            parser,
            extra_overrides=lambda a: scratch_overrides(a.workdir, a.use_running_broker) + list(a.overrides),
        )
    )
