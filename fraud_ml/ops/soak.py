"""Soak run: the stream, the dashboard (open in headless Chromium) and the drift job for an hour.

At a fixed offered rate (1,000 tx/s by default) a producer process sends fresh synthetic
transactions; the real job processes run side by side (``jobs/stream_score.py``,
``jobs/dashboard.py``'s Streamlit app with a browser keeping its live fragment refreshing,
``jobs/drift.py --every``). Every ``sample_s`` the run records the RSS of each process tree and
the files of each table (in the current snapshot, on disk, in ``_delta_log``). At the end it
reports per window (10 minutes by default): batch processing p50/p99, Kafka -> Delta latency
p50/p99, the duplicate look-back size, the RSS and the file counts at the window's end, so a
quantity that grows with uptime shows as a trend down the table. A benchmark, never a test.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from deltalake import write_deltalake

from fraud_ml.config import PROJECT_ROOT, Config
from fraud_ml.io.delta import accounted_rows, open_table
from fraud_ml.monitoring.quality import commit_times
from fraud_ml.ops.resources import ProcessTree, TreeSampler

log = logging.getLogger(__name__)

SOAK_TABLES = ("predictions", "quarantine", "batch_metrics", "drift")
# The producer stands for the card network and the browser for an analyst's laptop: neither runs
# on a scoring host, so here they take only the CPU the stream, dashboard and drift job leave
# (the producer at nice 19; the browser in the idle scheduling class, fraud_ml.local.browser).
LOAD_NICENESS = 19


@dataclass
class SoakOptions:
    """What one soak run does."""

    minutes: float = 60.0  # offered-load duration
    window_minutes: float = 10.0  # reporting window
    offered_tps: float = 1000.0
    # Sampling every 5 s (smaps_rollup of six process trees + four table listings) put the stream's
    # p99 at 1,009 ms in an hour's soak; at 30 s the same 12-minute run held 848-864 ms.
    sample_s: float = 30.0  # PSS/RSS and file-count sampling period
    # The stream's RSS alone (statm, cheap) is read this often too, by role, for its true peak.
    stream_rss_s: float = 1.0
    drift_every_s: float = 60.0  # drift job period
    trees: int = 300  # size of the benchmark model
    chunk_rows: int = 60_000  # producer: rows generated per replay call (one minute at 1,000 tx/s)
    bad_share: float = 0.002  # fuzzed messages sent after each chunk, as a share of it


def produce_forever(
    cfg_dict: dict, source: str, rate: float, seconds: float, chunk_rows: int, bad_share: float, sent
) -> None:
    """Producer process: fresh synthetic transactions (new ids) at ``rate`` tx/s for ``seconds``,
    and after each chunk ``bad_share`` of its size in fuzzed messages (half of them valid)."""
    from fraud_ml.logs import setup_logging
    from fraud_ml.ops.bench import bench_frame
    from fraud_ml.ops.fuzzing import fuzzed_messages
    from fraud_ml.streaming.producer import replay, send_raw

    cfg = Config(cfg_dict, source)
    setup_logging("WARNING")
    os.nice(LOAD_NICENESS)
    deadline = time.monotonic() + seconds
    for seed in range(1_000, 1_000_000):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        rows = min(chunk_rows, max(1, int(left * rate)))
        sent.value += replay(bench_frame(rows, seed=seed), cfg, rate=rate).sent
        # Bad input too, so quarantine grows and is kept small like the other tables.
        sent.value += send_raw(fuzzed_messages(max(1, int(rows * bad_share)), seed, int(time.time() * 1000))[0], cfg)


def table_files(path: str) -> dict[str, int | None]:
    """Data files in the table's snapshot, Parquet files on disk, and entries in ``_delta_log``."""
    table = open_table(path)
    root = Path(path)
    return {
        "snapshot": len(table.file_uris()) if table is not None else None,
        "on_disk": sum(1 for _ in root.rglob("*.parquet")) if root.exists() else 0,
        "log": sum(1 for _ in (root / "_delta_log").iterdir()) if (root / "_delta_log").exists() else 0,
    }


def write_reference_split(cfg: Config) -> None:
    """A synthetic ``train`` table so the drift job has its feature reference."""
    from fraud_ml.ops.bench import bench_frame

    write_deltalake(cfg.table_path("train"), bench_frame(20_000, seed=2), mode="overwrite")


def window_table(
    metrics: pd.DataFrame, predictions: pd.DataFrame, samples: pd.DataFrame, start: pd.Timestamp, window: pd.Timedelta
) -> pd.DataFrame:
    """One row per window of the run: batch time, latency, look-back, RSS and file counts at its end,
    and each process tree's peak RSS and PSS over the window's samples (``<name>_rss_peak_mib``,
    ``<name>_pss_peak_mib``; fraud_ml.ops.resources says why both)."""
    metrics = metrics.assign(committed_at=pd.to_datetime(metrics["committed_at"], utc=True))
    stamps = pd.to_datetime(predictions["kafka_timestamp"], utc=True)
    latency = (pd.to_datetime(commit_times(predictions, metrics), utc=True) - stamps).dt.total_seconds() * 1000
    rows = []
    end_of_run = metrics["committed_at"].max()
    k = 0
    while start + k * window < end_of_run:
        lo, hi = start + k * window, start + (k + 1) * window
        batch = metrics[(metrics["committed_at"] >= lo) & (metrics["committed_at"] < hi) & (metrics["rows"] > 0)]
        in_window = (stamps >= lo) & (stamps < hi)
        lat = latency[in_window].dropna()
        sample = samples[samples["at"] < hi].tail(1)
        in_samples = samples[(samples["at"] >= lo) & (samples["at"] < hi)]
        row = {
            "window": f"{k * window.total_seconds() / 60:.0f}-{(k + 1) * window.total_seconds() / 60:.0f} min",
            "batches": len(batch),
            "rows": int(batch["rows"].sum()),
            "batch_p50_ms": _pct(batch["processing_ms"], 50),
            "batch_p99_ms": _pct(batch["processing_ms"], 99),
            "latency_p50_ms": _pct(lat, 50),
            "latency_p99_ms": _pct(lat, 99),
            "lookback_ids_max": int(batch["lookback_ids"].max()) if len(batch) else None,
        }
        if len(sample):
            row.update({c: sample[c].iloc[0] for c in samples.columns if c != "at"})
        if len(in_samples):
            row.update(
                {
                    c.removesuffix("_mib") + "_peak_mib": in_samples[c].max()
                    for c in samples.columns
                    if c.endswith(("_rss_mib", "_pss_mib"))
                }
            )
        rows.append(row)
        k += 1
    return pd.DataFrame(rows)


def _pct(values, q: float) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.percentile(values, q)) if values.size else None


def markdown(table: pd.DataFrame) -> str:
    """The window table as Markdown (numbers rounded, thousands separated)."""

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "—"
        if isinstance(v, (float, np.floating)):
            return f"{v:,.0f}"
        if isinstance(v, (int, np.integer)):
            return f"{v:,}"
        return str(v)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def start_job(script: str, conf_args: list[str], *extra: str, log_path: Path, niceness: int = 0) -> subprocess.Popen:
    """``jobs/<script>`` in a child process with the given config arguments, its output to ``log_path``."""
    from fraud_ml.ops.dashboard import lowered_priority

    with open(log_path, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "jobs" / script), *conf_args, *extra],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lowered_priority(niceness),
        )


def run_soak(cfg: Config, options: SoakOptions, conf_args: list[str], workdir: Path) -> dict:
    """Run the soak; ``conf_args`` (``--conf``/``--set``) give the child jobs the same config as ``cfg``."""
    from fraud_ml.io.kafka import ensure_topic
    from fraud_ml.local.browser import Chromium, ensure_chromium, stop_process
    from fraud_ml.ops.bench import bench_frame, train_bench_model
    from fraud_ml.ops.dashboard import StreamlitServer, dashboard_niceness
    from fraud_ml.ops.waiting import wait_until
    from fraud_ml.streaming.producer import replay

    chromium, why_not = ensure_chromium()
    if chromium is None:
        raise RuntimeError(f"the soak keeps the dashboard open in headless Chromium: {why_not}")
    monitor_niceness = dashboard_niceness(cfg)  # a bad value fails here, before anything starts
    ensure_topic(cfg)
    train_bench_model(cfg, options.trees)
    write_reference_split(cfg)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stream = start_job("stream_score.py", conf_args, log_path=logs / "stream.log")
    spawn = mp.get_context("spawn")
    producer = drift = None
    samples: list[dict] = []
    try:
        # A first burst warms the stream (its first batch loads the model); then the load starts.
        replay(bench_frame(2_000, seed=5), cfg, rate=0)
        wait_until(
            lambda: open_table(cfg.table_path("batch_metrics")) is not None or stream.poll() is not None,
            300,
            "the stream's first batch",
        )
        time.sleep(5)
        if stream.poll() is not None:
            raise RuntimeError(f"the stream exited with {stream.returncode}; see {logs / 'stream.log'}")
        seconds = options.minutes * 60
        sent = spawn.Value("q", 2_000)  # the warm-up burst, then what the producer process sends
        producer = spawn.Process(
            target=produce_forever,
            args=(cfg.as_dict(), cfg.source, options.offered_tps, seconds, options.chunk_rows, options.bad_share, sent),
        )
        producer.start()
        started = pd.Timestamp.now(tz="UTC")
        with (
            StreamlitServer({}, logs / "dashboard.log", conf_args, niceness=monitor_niceness) as dashboard,
            Chromium(chromium, workdir / "chromium", background=True) as browser,
        ):
            browser.navigate(dashboard.url)
            drift = start_job(
                "drift.py",
                conf_args,
                "--every",
                str(options.drift_every_s),
                log_path=logs / "drift.log",
                niceness=monitor_niceness,
            )
            trees = {
                name: ProcessTree(p.pid)
                for name, p in (
                    ("stream", stream),
                    ("dashboard", dashboard.proc),
                    ("drift", drift),
                    ("browser", browser.proc),
                )
            }
            trees["producer"] = ProcessTree(producer.pid)
            trees["harness"] = ProcessTree(os.getpid(), children=False)  # this process alone
            stream_rss = TreeSampler(stream.pid, options.stream_rss_s, pss_interval_s=float("inf")).start()
            stream_pss_peak = None
            while producer.is_alive():
                for name, p in (("stream", stream), ("drift", drift)):
                    if p.poll() is not None:
                        raise RuntimeError(f"the {name} job exited with {p.returncode}; see {logs / name}.log")
                sample = {"at": pd.Timestamp.now(tz="UTC")}
                for name, tree in trees.items():
                    reading = tree.sample()
                    if (
                        name == "stream"
                        and reading
                        and (stream_pss_peak is None or reading.pss_mib > stream_pss_peak.pss_mib)
                    ):
                        stream_pss_peak = reading
                    sample[f"{name}_rss_mib"] = reading.rss_mib if reading else None
                    sample[f"{name}_pss_mib"] = reading.pss_mib if reading else None
                    sample[f"{name}_cpu_pct"] = reading.cpu_pct if reading else None
                for table in SOAK_TABLES:
                    files = table_files(cfg.table_path(table))
                    sample[f"{table}_files"] = files["snapshot"]
                    sample[f"{table}_on_disk"] = files["on_disk"]
                    sample[f"{table}_log"] = files["log"]
                samples.append(sample)
                log.info(
                    "soak %.0f/%.0f min: %s",
                    (sample["at"] - started).total_seconds() / 60,
                    options.minutes,
                    {k: round(v) for k, v in sample.items() if k != "at" and v is not None},
                )
                producer.join(timeout=options.sample_s)
            dashboard_text = browser.text()
            stream_fine = stream_rss.stop()
        sent_until = pd.Timestamp.now(tz="UTC")
        wait_until(
            lambda: accounted_rows(cfg.table_path("batch_metrics")) >= sent.value,
            600,
            "the stream to drain the offered load",
        )
    finally:
        if producer is not None and producer.is_alive():
            producer.kill()
        stop_process(drift, timeout=60)
        stop_process(stream, timeout=60)
    metrics = open_table(cfg.table_path("batch_metrics")).to_pandas()
    predictions = open_table(cfg.table_path("predictions")).to_pandas(
        columns=["query_id", "batch_id", "kafka_timestamp"]
    )
    table = window_table(
        metrics, predictions, pd.DataFrame(samples), started, pd.Timedelta(minutes=options.window_minutes)
    )
    return {
        "mode": "soak",
        "offered_tps": options.offered_tps,
        "minutes": options.minutes,
        "started": started.isoformat(),
        "ended": sent_until.isoformat(),
        "sent": sent.value,
        "scored": len(predictions),
        "accounted": accounted_rows(cfg.table_path("batch_metrics")),
        **{
            f"peak_{kind}_mib": {
                c.removesuffix(f"_{kind}_mib"): max(s[c] for s in samples if s[c] is not None)
                for c in (samples[0] if samples else {})
                if c.endswith(f"_{kind}_mib")
            }
            for kind in ("rss", "pss")
        },
        # The stream's tree by role at its peaks: RSS read every stream_rss_s, PSS every sample_s.
        "stream_peak_rss_every_s": options.stream_rss_s,
        "stream_peak_rss_mib": stream_fine["peak_rss_mib"],
        "stream_peak_rss_by_role": stream_fine["peak_rss_by_role"],
        "stream_peak_pss_by_role": stream_pss_peak.by_role if stream_pss_peak else None,
        "dashboard_live": "Fraud" in dashboard_text,
        "windows": json.loads(table.to_json(orient="records")),
        "markdown": markdown(table),
    }
