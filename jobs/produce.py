"""Replay a Delta table (default: the test split) into Kafka at --rate transactions/s.

    python jobs/produce.py [--rate 1000] [--transactions 20000] [--table test] [--topic transactions]

--rate 0 sends as fast as possible. With --transactions larger than the table, rows
are replayed again with suffixed transaction ids.
"""

import logging
import sys

from tqdm import tqdm

from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.delta import require_table
from fraud_ml.io.kafka import ensure_topic
from fraud_ml.streaming.producer import replay, replay_frame

log = logging.getLogger("fraud_ml.produce")


def main(args, cfg) -> int:
    table = args.table or cfg.get("producer.split")
    path = cfg.table_path(table)
    frame = require_table(path, "run `make prepare` (or `make synthesize`) first").to_pandas()
    frame = replay_frame(frame, args.transactions)
    topic = args.topic or cfg.get("kafka.topic")
    ensure_topic(cfg, topic)
    with tqdm(total=len(frame), unit="tx", desc=f"producing to {topic}", disable=args.quiet) as bar:
        report = replay(frame, cfg, topic=topic, rate=args.rate, on_progress=bar.update)
    print(f"sent {report.sent} transactions to {topic} in {report.seconds:.1f}s ({report.rate:,.0f} tx/s)")
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--rate", type=float, default=None, help="transactions per second (0 = max; producer.rate)")
    parser.add_argument("--transactions", type=int, default=None, help="how many to send (default: the whole table)")
    parser.add_argument(
        "--table", default=None, help="table of the catalog (delta.tables) to replay (default: producer.split)"
    )
    parser.add_argument("--topic", default=None, help="Kafka topic (kafka.topic)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    sys.exit(run_job(main, parser))
