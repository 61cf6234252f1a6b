"""Build the compose stack's images, start it, produce through its Kafka and check its stream's
Delta output and its MLflow (PostgreSQL + MinIO); then remove it (fraud_ml.ops.compose).

    make compose-test                       # the whole run; last line: the result as JSON
    python jobs/compose_test.py --keep      # leave the stack up afterwards
"""

from __future__ import annotations

import json
import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.ops.compose import ComposeTestOptions, run_compose_test


def main(args, cfg) -> int:
    options = ComposeTestOptions(transactions=args.transactions, local_images=not args.public_images, keep=args.keep)
    result = run_compose_test(cfg, options)
    print(json.dumps(result, default=str))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--transactions", type=int, default=ComposeTestOptions.transactions, help="how many to produce")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its volumes up")
    parser.add_argument(
        "--public-images", action="store_true", help="pull the public images instead of building stand-ins"
    )
    sys.exit(run_job(main, parser))
