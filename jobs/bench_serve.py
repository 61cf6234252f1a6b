"""REST scoring benchmark: MLflow's scoring server on a 300-tree champion, via a real HTTP client.

    python jobs/bench_serve.py [--single-requests 1000] [--batch-rows 1000]

Registers a synthetic benchmark champion in a scratch MLflow store under --workdir (a temp
dir by default, removed afterwards), serves it on a free loopback port, and measures one-row
requests (p50/p99, requests/s) and batched requests (rows/s) beside the same pyfunc called
in-process. The last line printed is one JSON object (``mode: "serve"``). Never a timed test.
"""

import json
import sys

from fraud_ml.cli import interrupt_on_sigterm, job_parser, options_from_args, run_job
from fraud_ml.ops.bench import scratch_overrides, scratch_workdir
from fraud_ml.ops.bench_serve import ServeBenchOptions, run_bench_serve


def main(args, cfg) -> int:
    interrupt_on_sigterm()  # a terminated run still stops its broker, stream and other children
    with scratch_workdir(args.workdir, cfg):
        result = run_bench_serve(cfg, options_from_args(ServeBenchOptions, args))
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--single-requests", type=int, default=ServeBenchOptions.single_requests)
    parser.add_argument("--batch-rows", type=int, default=ServeBenchOptions.batch_rows)
    parser.add_argument("--batch-requests", type=int, default=ServeBenchOptions.batch_requests)
    parser.add_argument("--warmup-requests", type=int, default=ServeBenchOptions.warmup_requests)
    parser.add_argument("--trees", type=int, default=ServeBenchOptions.trees, help="trees in the benchmark model")
    parser.add_argument("--workdir", default=None, help="scratch folder, kept afterwards (default: a temp dir)")
    sys.exit(
        run_job(
            main,
            parser,
            extra_overrides=lambda a: scratch_overrides(a.workdir, use_running_broker=True) + list(a.overrides),
        )
    )
