"""Structured Streaming: Kafka -> champion pyfunc (pandas UDF) -> Delta, exactly once.

    python jobs/stream_score.py [--available-now] [--timeout 600] [--set stream.trigger_interval="2 seconds"]
    spark-submit --master spark://host:7077 --jars "$(python -m fraud_ml.local.jars --csv)" jobs/stream_score.py

Writes <delta.root>/predictions, /batch_metrics and /quarantine; the checkpoint is
stream.checkpoint_dir. Restarting resumes from the checkpoint without duplicates.
"""

import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.kafka import ensure_topic
from fraud_ml.io.spark import build_spark
from fraud_ml.streaming.query import run_stream, stream_config


def main(args, cfg) -> int:
    # The Kafka source fails on a missing topic: create it the way the producer would.
    ensure_topic(cfg)
    cfg = stream_config(cfg)
    run_stream(
        build_spark(cfg, "fraud-ml-stream"), cfg, available_now=args.available_now or None, timeout_s=args.timeout
    )
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--available-now", action="store_true", help="drain the topic, then exit")
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    sys.exit(run_job(main, parser))
