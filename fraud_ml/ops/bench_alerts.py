"""``make bench-alerts``: the real-time alerts path at an offered rate, with the Delta stream running.

The real jobs run side by side, as in production: ``jobs/stream_score.py`` (Kafka -> Delta) and
``jobs/alerts.py`` (Kafka -> alerts, Spark's real-time mode) read the same transactions topic.
A producer process offers ``offered_tps`` for ``warmup_s + duration_s``; a consumer reads the
alerts topic, whose broker stamps each record on append (``LogAppendTime``). Latency = the
alert's broker timestamp - the input record's Kafka timestamp (carried in the alert), over the
rows sent after the warm-up. Parity: every alert's probability and decision against the pyfunc
on the same rows. A benchmark, never a test.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from fraud_ml.config import Config
from fraud_ml.schema import FEATURES, ID_COL

log = logging.getLogger(__name__)

PROBABILITY_TOLERANCE = 1e-5
DECISION_MARGIN = 1e-6  # decisions are compared where the probability is further than this from the threshold


@dataclass
class AlertsBenchOptions:
    """What one alerts benchmark run does."""

    offered_tps: float = 1000.0
    warmup_s: float = 20.0  # seconds of load before measuring
    duration_s: float = 60.0  # measured seconds
    trees: int = 300  # size of the benchmark model
    drain_s: float = 60.0  # how long to wait for the last alerts after the load ends
    window_s: float = 10.0  # the latency is also summarised per window of input time


class AlertsReader:
    """A consumer thread on the alerts topic: per transaction id, the alert and its broker timestamp."""

    def __init__(self, cfg: Config, topic: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
                "group.id": f"bench-alerts-{time.time_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                **cfg.kafka_client_options(),
            }
        )
        self.consumer.subscribe([topic])
        self.alerts: dict[str, tuple[dict, int]] = {}  # the last alert of each id, its broker timestamp
        self.counts: dict[str, int] = {}  # alerts per id (at least once: a repeat is a duplicate)
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self.consumer.consume(5000, 0.1):
                if message.error() is None:
                    self.received += 1
                    key = message.key().decode()
                    self.alerts[key] = (json.loads(message.value()), message.timestamp()[1])
                    self.counts[key] = self.counts.get(key, 0) + 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()


def run_bench_alerts(cfg: Config, options: AlertsBenchOptions, conf_args: list[str], workdir: Path) -> dict:
    """Run the benchmark; ``conf_args`` (``--conf``/``--set``) give the child jobs ``cfg``."""
    from fraud_ml.alerts.query import ensure_alerts_topics
    from fraud_ml.io.delta import open_table
    from fraud_ml.io.mlflow import load_verified
    from fraud_ml.local.browser import stop_process
    from fraud_ml.ops.bench import bench_frame, replay_file, train_bench_model
    from fraud_ml.ops.bench_lines import latency_summary
    from fraud_ml.ops.resources import ProcessTree
    from fraud_ml.ops.soak import start_job
    from fraud_ml.streaming.producer import replay

    alerts_topic = cfg.get("alerts.topic")
    ensure_alerts_topics(cfg)
    _, model_uri = train_bench_model(cfg, options.trees)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    reader = AlertsReader(cfg, alerts_topic)
    stream = start_job("stream_score.py", conf_args, log_path=logs / "stream.log")
    alerts = start_job("alerts.py", conf_args, log_path=logs / "alerts.log")
    trees = {"stream": ProcessTree(stream.pid), "alerts": ProcessTree(alerts.pid)}
    peaks: dict[str, float] = {}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    # CPU % of each process every ~2 s of the load (the first reading is 0), and of the whole machine
    # (100 % per core): what the named processes leave is mostly the broker's.
    timeline: list[dict] = []
    try:
        # Both jobs up: the stream's first batch committed, the alerts query answering probes.
        probe = bench_frame(200, seed=5)
        deadline = time.monotonic() + 300
        while reader.received == 0 or open_table(cfg.table_path("batch_metrics")) is None:
            for name, job in (("stream", stream), ("alerts", alerts)):
                if job.poll() is not None:
                    raise RuntimeError(f"the {name} job exited with {job.returncode}; see {logs / name}.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the jobs did not answer within 300 s; see {logs}")
            replay(probe.sample(5), cfg, rate=0)
            time.sleep(1)
        total = int(options.offered_tps * (options.warmup_s + options.duration_s))
        frame = bench_frame(total, seed=17)
        frame_path = workdir / "offered.parquet"
        frame.to_parquet(frame_path)
        producer = mp.get_context("spawn").Process(
            target=replay_file, args=(cfg.as_dict(), cfg.source, str(frame_path), options.offered_tps)
        )
        started_ms = int(time.time() * 1000)
        producer.start()
        trees |= {"producer": ProcessTree(producer.pid, children=False), "harness": ProcessTree(os.getpid(), False)}
        cpu |= {"producer": [], "harness": []}
        psutil.cpu_percent(None)
        while producer.is_alive():
            moment = {"t_s": round(time.time() - started_ms / 1000, 1), "machine": _machine_cpu_pct()}
            for name, tree in trees.items():
                reading = tree.sample()
                if reading is not None:
                    peaks[name] = max(peaks.get(name, 0.0), reading.pss_mib)
                    cpu[name].append(reading.cpu_pct)
                    moment[name] = reading.cpu_pct
            timeline.append(moment)
            producer.join(timeout=2)
        ids = set(frame[ID_COL])
        drained_by = time.monotonic() + options.drain_s
        while not ids <= reader.alerts.keys() and time.monotonic() < drained_by:
            time.sleep(0.5)
    finally:
        stop_process(alerts, timeout=60)
        stop_process(stream, timeout=60)
        reader.close()
    got = {k: v for k, v in reader.alerts.items() if k in ids}
    measured_from = started_ms + options.warmup_s * 1000
    stamps = np.array([(alert["kafka_timestamp_ms"], ts) for alert, ts in got.values()], dtype="int64").reshape(-1, 2)
    measured = stamps[stamps[:, 0] >= measured_from]
    latencies = measured[:, 1] - measured[:, 0]
    parity = _parity(frame, got, load_verified(model_uri))
    return {
        "mode": "alerts",
        "offered_tps": options.offered_tps,
        "sent": len(frame),
        "received": len(got),
        "duplicates": sum(reader.counts.get(i, 0) - 1 for i in got),
        "measured": int(latencies.size),
        **latency_summary(latencies),
        # From the end of the warm-up; the warm-up's windows (negative from_s) are not in the figures above.
        "latency_by_window": latency_windows(
            stamps[:, 0] - measured_from, stamps[:, 1] - stamps[:, 0], options.window_s
        ),
        "parity": parity["parity"],
        "parity_detail": parity,
        "stream_running": True,
        "peak_pss_mib": {k: round(v) for k, v in peaks.items()},
        "cpu_mean_pct": {k: round(float(np.mean(v[1:])), 1) if len(v) > 1 else None for k, v in cpu.items()},
        "cpu_timeline": timeline,
        "model_trees": options.trees,
        "kafka_partitions": cfg.get("kafka.partitions"),
    }


def _machine_cpu_pct() -> float:
    """The machine's CPU use since the last call, 100 % per core."""
    return round(psutil.cpu_percent(None) * (psutil.cpu_count() or 1), 1)


def latency_windows(offset_ms: np.ndarray, latencies: np.ndarray, window_s: float) -> list[dict]:
    """p50 / p99 / max of the latencies per ``window_s`` of input time (``offset_ms`` from the start):
    a backlog that builds and drains shows as a window of seconds, a steady tail in every window."""
    window = (offset_ms // (window_s * 1000)).astype("int64")
    out = []
    for w in np.unique(window):
        values = latencies[window == w]
        out.append(
            {
                "from_s": float(w * window_s),
                "rows": int(values.size),
                "p50_ms": float(np.percentile(values, 50)),
                "p99_ms": float(np.percentile(values, 99)),
                "max_ms": float(values.max()),
            }
        )
    return out


def pyfunc_threshold(pyfunc) -> float:
    """The decision threshold of a loaded champion pyfunc (its ``model_config``)."""
    return float(pyfunc.model_config["threshold"])


def _parity(frame: pd.DataFrame, got: dict[str, tuple[dict, int]], pyfunc) -> dict:
    """Alerts against the pyfunc on the same rows: max probability gap, decisions that differ."""
    rows = frame[frame[ID_COL].isin(got.keys())]
    expected = pyfunc.predict(rows[FEATURES])
    alerts = [got[i][0] for i in rows[ID_COL]]
    gap = np.abs(np.array([a["probability"] for a in alerts]) - expected["probability"].to_numpy())
    clear = np.abs(expected["probability"].to_numpy() - pyfunc_threshold(pyfunc)) > DECISION_MARGIN
    decisions = (np.array([a["decision"] for a in alerts]) != expected["decision"].to_numpy()) & clear
    max_gap = float(gap.max()) if gap.size else None
    return {
        "rows": len(rows),
        "max_probability_gap": max_gap,
        "decisions_differing": int(decisions.sum()),
        "flagged": int(expected["decision"].sum()),
        "parity": bool(gap.size) and max_gap <= PROBABILITY_TOLERANCE and not decisions.any(),
    }
