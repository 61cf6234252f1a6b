"""Real-time alerts: Kafka transactions -> the champion's decision (scored in the JVM) -> Kafka.

    python jobs/alerts.py [--timeout 600] [--set alerts.emit=all]
    spark-submit --master "local[6]" --jars "$(python -m fraud_ml.local.jars --csv)" jobs/alerts.py

Spark's real-time mode, beside the Delta stream (jobs/stream_score.py): decisions go to
alerts.topic keyed by transaction id (at least once), refused messages to
alerts.dead_letter_topic with the reason in a header. The champion version behind the alias is
pinned at start; restart the job to pick up a new one. Checkpoint: alerts.checkpoint_dir.
"""

import signal
import sys
import threading

from fraud_ml.alerts.query import ensure_alerts_topics, load_champion, start_alerts
from fraud_ml.cli import job_parser, run_job
from fraud_ml.io.spark import build_spark

STOP = threading.Event()


def _stop_on_sigterm(signum, frame) -> None:
    # Only a flag: an exception raised inside a py4j call broke the gateway connection, and the
    # query could not be stopped any more.
    STOP.set()


def _stop_when_asked(query, timeout_s: float | None) -> None:
    """Stop ``query`` on SIGTERM, after ``timeout_s``, or once the job ends (a stopped query: no-op)."""
    STOP.wait(timeout_s)
    query.stop()


def main(args, cfg) -> int:
    # A terminated job must stop its query itself: real-time tasks run for a whole batch, and a JVM
    # left without its Python driver was still running at 136 % CPU five minutes after the demo ended.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ensure_alerts_topics(cfg)
    champion = load_champion(cfg)  # before the JVM starts: a missing model fails in a second
    cfg = cfg.with_overrides([f"spark.master={cfg.get('alerts.spark_master')}"], env={})
    spark = build_spark(cfg, "fraud-ml-alerts")
    query = start_alerts(spark, cfg, champion)
    # The query is stopped from a thread of its own (its own py4j connection): the main thread's
    # awaitTermination(1) was seen not to return for minutes once the broker was gone.
    stopper = threading.Thread(target=_stop_when_asked, args=(query, args.timeout), daemon=True)
    stopper.start()
    try:
        query.awaitTermination()
    finally:
        STOP.set()
        stopper.join(timeout=120)
        failure = query.exception()
        spark.stop()
    if failure is not None:
        raise RuntimeError(str(failure))
    return 0


if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    sys.exit(run_job(main, parser))
