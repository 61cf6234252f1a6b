"""The whole demo in one process: broker, data, champion, stream, replay, summary, dashboard.

Used by ``make demo``. Everything it starts it stops again (a broker that was
already running is left running).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraud_ml.alerts.query import STARTED
from fraud_ml.config import PROJECT_ROOT, Config
from fraud_ml.errors import KafkaUnavailableError
from fraud_ml.io.delta import accounted_rows, require_table, table_rows
from fraud_ml.io.kafka import admin_client, check_reachable, ensure_topic
from fraud_ml.io.spark import build_spark
from fraud_ml.local.jars import resolve as resolve_jars
from fraud_ml.local.kafka_broker import LocalKafkaBroker
from fraud_ml.monitoring.alerts_feed import alert_latency, read_recent_alerts
from fraud_ml.ops.dashboard import dashboard_command, dashboard_niceness, lowered_priority
from fraud_ml.ops.report import RunSummary, summarize
from fraud_ml.ops.waiting import wait_until
from fraud_ml.streaming.producer import replay, replay_frame
from fraud_ml.streaming.query import start_stream
from fraud_ml.training.champion import train_champion
from fraud_ml.training.splits import load_splits, prepare_splits

log = logging.getLogger(__name__)

OUTPUT_TABLES = ("predictions", "batch_metrics", "quarantine")


@dataclass
class DemoOptions:
    """What the demo replays and how (the ``demo`` section of the config)."""

    transactions: int
    rate: float
    steady_state_after_s: float
    wait_timeout_s: float
    alerts: bool  # the real-time alerts job beside the stream
    dashboard: bool = True

    @classmethod
    def from_config(cls, cfg: Config, dashboard: bool = True) -> "DemoOptions":
        return cls(
            transactions=int(cfg.get("demo.transactions")),
            rate=float(cfg.get("demo.rate")),
            steady_state_after_s=float(cfg.get("demo.steady_state_after_seconds")),
            wait_timeout_s=float(cfg.get("demo.wait_timeout_seconds")),
            alerts=cfg.get("demo.alerts"),
            dashboard=dashboard,
        )


def reset_outputs(cfg: Config) -> None:
    """Remove the previous demo's output tables, checkpoint and topic so counts start at zero."""
    for table in OUTPUT_TABLES:
        path = cfg.table_path(table)
        if "://" not in path:
            shutil.rmtree(path, ignore_errors=True)
    for checkpoint in ("stream.checkpoint_dir", "alerts.checkpoint_dir"):
        shutil.rmtree(cfg.get(checkpoint), ignore_errors=True)
    admin = admin_client(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options())
    for topic in (cfg.get("kafka.topic"), cfg.get("alerts.topic"), cfg.get("alerts.dead_letter_topic")):
        if topic in admin.list_topics(timeout=10).topics:
            admin.delete_topics([topic])[topic].result(timeout=30)
            deadline = time.monotonic() + 30
            while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
                time.sleep(0.2)


def wait_for_rows(cfg: Config, expected: int, timeout_s: float, query) -> None:
    """Block until ``batch_metrics`` accounts for ``expected`` rows (scored or quarantined)."""

    def query_failure() -> str | None:
        error = query.exception()
        return None if error is None else f"the streaming query failed: {str(error).splitlines()[0]}"

    wait_until(
        lambda: accounted_rows(cfg.table_path("batch_metrics")) >= expected,
        timeout_s,
        f"{expected} rows in Delta",
        failed=query_failure,
        poll_s=1.0,
    )


class FirstRowWatch:
    """Polls ``predictions`` in a thread from the replay's start: seconds to the first scored row."""

    def __init__(self, cfg: Config, since: float, poll_s: float = 0.05) -> None:
        self.path, self.since, self.poll_s = cfg.table_path("predictions"), since, poll_s
        self.first_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.first_at is None:
            if table_rows(self.path):
                self.first_at = time.monotonic()
            self._stop.wait(self.poll_s)

    def start(self) -> "FirstRowWatch":
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return (self.first_at or time.monotonic()) - self.since


def _config_args(conf_path: str | None, overrides: list[str]) -> list[str]:
    args = ["--conf", conf_path] if conf_path else []
    for item in overrides:
        args += ["--set", item]
    return args


def start_dashboard(cfg: Config, conf_path: str | None, overrides: list[str]) -> list[subprocess.Popen]:
    """The Streamlit dashboard on ``dashboard.address:port``, plus the drift job refreshing every minute."""
    drift = [
        sys.executable,
        str(PROJECT_ROOT / "jobs" / "drift.py"),
        "--every",
        "60",
        *_config_args(conf_path, overrides),
    ]
    nicer = lowered_priority(dashboard_niceness(cfg))
    return [
        subprocess.Popen(
            dashboard_command(cfg, _config_args(conf_path, overrides)), cwd=PROJECT_ROOT, preexec_fn=nicer
        ),
        subprocess.Popen(drift, cwd=PROJECT_ROOT, preexec_fn=nicer),
    ]


def start_alerts_job(conf_path: str | None, overrides: list[str], log_path) -> subprocess.Popen:
    """``jobs/alerts.py`` in a child process, reading the demo's topic from its start; returns once its
    query runs (its start line is logged), so its JVM start does not overlap the stream's warm-up."""
    from fraud_ml.ops.soak import start_job

    args = _config_args(conf_path, [*overrides, "alerts.starting_offsets=earliest"])
    proc = start_job("alerts.py", args, log_path=log_path)
    wait_until(
        lambda: STARTED in log_path.read_text(errors="replace"),
        180,
        "the real-time alerts job to start",
        failed=lambda: None if proc.poll() is None else f"it exited with {proc.returncode}; see {log_path}",
    )
    return proc


def alerts_summary(cfg: Config, flagged: int, timeout_s: float = 60.0) -> str:
    """The demo's line on the real-time alerts: how many arrived and their latency."""
    alerts = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alerts = read_recent_alerts(cfg, max(1, flagged))
        if alerts is not None and len(alerts) >= flagged:
            break
        time.sleep(1)
    if alerts is None or alerts.empty:
        return f"real-time alerts   none on {cfg.get('alerts.topic')} (see the alerts job's log)"
    summary = alert_latency(alerts)
    return (
        f"real-time alerts   {summary['alerts']:,} on {cfg.get('alerts.topic')} ({flagged:,} flagged in Delta); "
        f"latency p50 {summary['latency_p50_ms']:,.0f} ms / p99 {summary['latency_p99_ms']:,.0f} ms "
        "(Kafka ts -> alert appended on the broker)"
    )


def run_demo(
    cfg: Config, options: DemoOptions, conf_path: str | None = None, overrides: list[str] | None = None
) -> RunSummary:
    """Run the end-to-end demo and return its summary."""
    t0 = time.monotonic()
    resolve_jars()
    broker = LocalKafkaBroker.from_config(cfg)
    started_broker = False
    try:
        check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options(), timeout=3)
        log.info("using the Kafka broker already running on %s", cfg.get("kafka.bootstrap_servers"))
    except KafkaUnavailableError:
        broker.start()
        started_broker = True
    spark = query = alerts_job = None
    dashboard: list[subprocess.Popen] = []
    try:
        reset_outputs(cfg)
        spark = build_spark(cfg, "fraud-ml-demo")
        counts = prepare_splits(spark, cfg)
        if not cfg.get("data.input"):
            log.warning("DEMO DATA IS SYNTHETIC (generated with the Kaggle schema): metrics are not real-world results")
        result = train_champion(load_splits(spark, cfg), cfg)
        ensure_topic(cfg)
        if options.alerts:
            log_dir = Path(cfg.get("alerts.checkpoint_dir")).parent
            log_dir.mkdir(parents=True, exist_ok=True)
            alerts_job = start_alerts_job(conf_path, overrides or [], log_dir / "alerts-job.log")
        query = start_stream(spark, cfg, available_now=False)
        split = cfg.get("producer.split")
        frame = replay_frame(
            require_table(cfg.table_path(split), "prepare the splits first").to_pandas(), options.transactions
        )
        log.info(
            "replaying %d transactions from the %s split (%d rows) at %s",
            len(frame),
            split,
            counts.get(split, {}).get("rows", 0),
            f"{options.rate:g} tx/s" if options.rate else "full speed",
        )
        t_replay, replay_began = time.monotonic(), pd.Timestamp.now(tz="UTC")
        first_row = FirstRowWatch(cfg, t_replay).start()
        replay(frame, cfg, rate=options.rate)
        wait_for_rows(cfg, len(frame), options.wait_timeout_s, query)
        t_first = first_row.stop()
        predictions = require_table(cfg.table_path("predictions"), "the stream writes it").to_pandas(
            columns=["query_id", "transaction_id", "decision", "label", "batch_id", "kafka_timestamp"]
        )
        metrics = require_table(cfg.table_path("batch_metrics"), "the stream writes it").to_pandas()
        steady_from = replay_began + pd.Timedelta(seconds=options.steady_state_after_s)
        summary = summarize(
            predictions, metrics, quarantined=table_rows(cfg.table_path("quarantine")), latency_from=steady_from
        )
        data_kind = f"REAL data from {cfg.get('data.input')}" if cfg.get("data.input") else "SYNTHETIC demo data"
        print("\n=== fraud-ml demo summary (" + data_kind + ") ===")
        print(
            f"champion           {result.champion.model_uri if result.champion else '-'} "
            f"(test AP {result.metrics['average_precision']:.3f}, threshold {result.threshold:.3f})"
        )
        for line in summary.lines():
            print(
                line.replace(
                    "latency (Kafka ts -> Delta commit)",
                    f"latency, steady state (rows sent {options.steady_state_after_s:g} s on)",
                )
            )
        print(
            f"cold start         {time.monotonic() - t0:,.0f} s total; first scored row "
            f"{t_first:,.1f} s after the replay began (replayed at "
            f"{f'{options.rate:,.0f} tx/s' if options.rate else 'full speed'})"
        )
        if alerts_job is not None:
            print(alerts_summary(cfg, int(predictions["decision"].sum())))
        if options.dashboard:
            dashboard = start_dashboard(cfg, conf_path, overrides or [])
            print(
                f"\ndashboard on http://{cfg.get('dashboard.address')}:{cfg.get('dashboard.port')} — the stream keeps "
                "running; Ctrl-C stops all"
            )
            try:
                while dashboard[0].poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return summary
    finally:
        for proc in [*dashboard, alerts_job]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        if query is not None:
            query.stop()
        if spark is not None:
            spark.stop()
        if started_broker:
            broker.stop()
        os.environ.pop("MLFLOW_TRACKING_URI", None)
