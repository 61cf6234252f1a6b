"""Start, stop or inspect the embedded single-node KRaft Kafka broker.

    python jobs/kafka_local.py start|stop|status|create-topic [--partitions 4]

Ports come from kafka.bootstrap_servers and kafka.local.controller_port; data and
logs live in kafka.local.data_dir (git-ignored var/kafka by default).
"""

import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.kafka import ensure_topic
from fraud_ml.local.kafka_broker import LocalKafkaBroker


def main(args, cfg) -> int:
    broker = LocalKafkaBroker.from_config(cfg)
    if args.action == "start":
        broker.start()
        print(f"Kafka ready on {broker.bootstrap_servers} (pid {broker.pid()}, logs {broker.log_file})")
    elif args.action == "stop":
        broker.stop()
        print("Kafka stopped")
    elif args.action == "status":
        pid = broker.pid()
        print(f"Kafka running (pid {pid}) on {broker.bootstrap_servers}" if pid else "Kafka not running")
        return 0 if pid else 3
    elif args.action == "create-topic":
        created = ensure_topic(
            cfg.with_overrides([f"kafka.bootstrap_servers={broker.bootstrap_servers}"], env={}),
            args.topic,
            args.partitions,
        )
        print("topic created" if created else "topic already exists")
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("action", choices=["start", "stop", "status", "create-topic"])
    parser.add_argument("--topic", default=None)
    parser.add_argument("--partitions", type=int, default=None)
    sys.exit(run_job(main, parser))
