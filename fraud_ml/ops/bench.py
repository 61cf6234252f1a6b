"""Streaming benchmark: the project's stream beside its reference lines, measured in one run.

Modes:
  capacity  pre-load a backlog (>= 1,000,000 transactions), then run each line over it in a
            fresh process: the stream, Spark's Kafka -> Delta floor, the read-only floor and
            the plain Python peer (fraud_ml.ops.bench_lines).
  latency   offer a fixed rate (e.g. 1,000 tx/s) for a warm-up and a measured window, to the
            stream, then to the peer; latency = Delta commit - Kafka timestamp of each row.
  fuzz      push fuzzed messages mixed with good ones (fraud_ml.ops.fuzzing) through the stream:
            every message must land in predictions or quarantine and the query stay alive.

Each line runs ``repeats`` times (default 2), the order reversed every other round (stream,
floor, ..., then ..., floor, stream); its figures are medians over its runs, and each ratio to a
reference line is the median of the ratios within a round. Every result also holds the raw
XGBoost ceiling (``inplace_predict`` on all cores) and the per-message pyfunc baseline (one call
per transaction, the original design), and ratios to each line. The last line printed is one
JSON object.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import platform
import queue
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
import psutil
import xgboost as xgb

from fraud_ml.config import Config
from fraud_ml.errors import FraudMLError, KafkaUnavailableError
from fraud_ml.features import feature_matrix
from fraud_ml.io.kafka import check_reachable, ensure_topic
from fraud_ml.io.mlflow import load_verified, setup_mlflow
from fraud_ml.local.kafka_broker import LocalKafkaBroker, free_port
from fraud_ml.ops.bench_lines import LINES, run_line
from fraud_ml.ops.resources import TreeSampler
from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL, SOURCE_GENERATED
from fraud_ml.streaming.producer import replay
from fraud_ml.training.data import SyntheticCreditCardGenerator
from fraud_ml.training.pyfunc_model import log_champion

log = logging.getLogger(__name__)

MODES = ("capacity", "latency", "fuzz")
# the libraries on the hot path, recorded in every result: a figure is only comparable under the same set
VERSIONED = ("pyspark", "delta-spark", "deltalake", "pyarrow", "numpy", "pandas", "msgspec", "xgboost", "mlflow")


@dataclass
class BenchOptions:
    """What one benchmark run does."""

    mode: str = "capacity"
    backlog: int = 1_000_000  # capacity: transactions pre-loaded before the lines start
    offered_tps: float = 1000.0  # latency: offered load
    warmup_s: float = 15.0  # latency: seconds of load before measuring
    duration_s: float = 40.0  # latency: measured seconds
    trees: int = 300  # size of the benchmark model
    baseline_rows: int = 2000  # rows for the per-message baseline
    ceiling_rows: int = 200_000  # rows for the raw scoring ceiling
    fuzz_messages: int = 100_000  # fuzz: messages pushed
    lines: tuple[str, ...] = LINES  # which lines to run (capacity: all four; latency: stream, peer)
    # runs of each line, alternating in order: one run's figures moved by a third between runs minutes
    # apart as the machine's speed varied (docs/performance.md), so each figure is a median of runs
    repeats: int = 2


def bench_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """Synthetic transactions with ids (benchmarks measure speed, not model quality)."""
    frame = SyntheticCreditCardGenerator(n_rows=n, fraud_rate=0.0017, seed=seed).generate()
    frame.insert(0, ID_COL, [f"bench-{seed}-{i:08d}" for i in range(n)])
    frame[SOURCE_COL] = SOURCE_GENERATED
    return frame


def train_bench_model(cfg: Config, trees: int) -> tuple[xgb.Booster, str]:
    """Train a ``trees``-tree XGBoost on synthetic rows and register it as the champion."""
    setup_mlflow(cfg)
    frame = SyntheticCreditCardGenerator(n_rows=60_000, fraud_rate=0.01, seed=3).generate()
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=6, learning_rate=0.1, n_jobs=2)
    model.fit(frame[FEATURES], frame[LABEL])
    booster = model.get_booster()
    with mlflow.start_run(run_name=f"bench-xgboost-{trees}"), tempfile.TemporaryDirectory() as tmp:
        champ = log_champion(
            booster, 0.5, cfg.get("mlflow.model_name"), cfg.get("mlflow.alias"), Path(tmp), cfg.get("train.reasons")
        )
    return booster, champ.model_uri


def scoring_ceiling(booster: xgb.Booster, frame: pd.DataFrame) -> float:
    """Rows/s of booster.inplace_predict on all cores: the best any pipeline could score."""
    x = feature_matrix(frame)
    booster.set_param({"nthread": os.cpu_count() or 1})
    booster.inplace_predict(x[:1000])
    started = time.perf_counter()
    booster.inplace_predict(x)
    return len(x) / (time.perf_counter() - started)


def decode_probe(cfg: Config, frame: pd.DataFrame, chunk_sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Microseconds a message of ``decode_messages`` on one core, best of three, by chunk size: JSON always,
    the configured message format too (e.g. ``avro``), on the same rows."""
    from fraud_ml.streaming.avro import avro_writer
    from fraud_ml.streaming.contract import NATIVE, MessageContract
    from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages
    from fraud_ml.streaming.producer import encode_messages

    limits = ValidationLimits.from_config(cfg)
    configured = MessageContract.from_config(cfg)
    contracts = {"json": NATIVE, **({configured.format: configured} if configured.format != "json" else {})}
    stamp_ms = int(time.time() * 1000)
    out: dict[str, dict[str, float]] = {}
    for name, contract in contracts.items():
        writer = avro_writer(contract.avro, cfg.get("stream.message.avro_writer_schema_id")) if name == "avro" else None
        keys, values = encode_messages(frame, stamp_ms, contract, writer)
        stamps = [stamp_ms] * len(values)
        refused = decode_messages(values, limits, None, contract, keys=keys, timestamps_ms=stamps)[REASON].dropna()
        if len(refused):  # a probe that quarantines what it times would time the wrong work
            raise FraudMLError(f"decode probe ({name}): {len(refused)} messages refused, e.g. {refused.iloc[0]}")
        out[name] = {}
        for size in chunk_sizes:
            chunks = [(keys[i : i + size], values[i : i + size]) for i in range(0, len(values), size)]
            best = math.inf
            for _ in range(3):
                started = time.perf_counter()
                for k, v in chunks:
                    decode_messages(v, limits, None, contract, keys=k, timestamps_ms=stamps[: len(v)])
                best = min(best, time.perf_counter() - started)
            out[name][str(size)] = best / len(values) * 1e6
    return out


def per_message_baseline(model_uri: str, frame: pd.DataFrame) -> float:
    """Rows/s when every transaction is its own pyfunc call (the original per-message design)."""
    model = load_verified(model_uri)
    rows = [frame[FEATURES].iloc[[i]] for i in range(len(frame))]
    model.predict(rows[0])
    started = time.perf_counter()
    for row in rows:
        model.predict(row)
    return len(rows) / (time.perf_counter() - started)


def replay_file(cfg_dict: dict, source: str, frame_path: str, rate: float) -> None:
    """Entry point of a spawned producer process: replay a Parquet frame at ``rate`` tx/s."""
    frame = pd.read_parquet(frame_path)
    replay(frame, Config(cfg_dict, source), rate=rate)


def run_lines(
    cfg: Config,
    lines: tuple[str, ...],
    expected: int,
    offered: dict | None = None,
    preload=None,
    offer=None,
    repeats: int = 1,
) -> dict[str, dict]:
    """Run each line ``repeats`` times, each run in its own spawned process (fresh JVM) on its own topic,
    one after another, the order reversed every other round; return each line's median figures with its
    runs under ``runs`` (see :func:`combine_runs`).

    ``preload(cfg)`` fills a run's topic before the run starts (capacity); ``offer(cfg)`` starts a
    rate-limited producer process once the run reports it is ready (latency).
    """
    spawn = mp.get_context("spawn")
    runs: dict[str, list[dict]] = {line: [] for line in lines}
    for round_ in range(repeats):
        for line in lines if round_ % 2 == 0 else lines[::-1]:
            topic = f"{cfg.get('kafka.topic')}-{line}-{round_}"
            work = scratch_root(cfg) / topic
            line_cfg = cfg.with_overrides(
                [
                    f"kafka.topic={topic}",
                    f"delta.root={work / 'delta'}",
                    f"stream.checkpoint_dir={work / 'checkpoint'}",
                ],
                env={},
            )
            ensure_topic(cfg, topic)
            if preload is not None:
                preload(line_cfg)
            outbox = spawn.Queue()
            proc = spawn.Process(
                target=run_line, args=(line, line_cfg.as_dict(), cfg.source, expected, offered, outbox)
            )
            proc.start()
            sampler = TreeSampler(proc.pid).start()  # from here, so the line's process only runs the line
            log.info("bench line %s, round %d, started (pid %d, topic %s)", line, round_ + 1, proc.pid, topic)
            producer = None
            try:
                kind, result = outbox.get(timeout=3600)
                if kind == "ready":
                    producer = offer(line_cfg) if offer is not None else None
                    kind, result = outbox.get(timeout=3600)
            except queue.Empty:
                result = {"error": "no result within an hour"}
            resources = sampler.stop()
            if "error" not in result:
                result.update(resources)
            proc.join(timeout=120)
            if proc.is_alive():
                proc.kill()
            if producer is not None:
                producer.join(timeout=600)
            runs[line].append(result)
            log.info("bench line %s, round %d: %s", line, round_ + 1, json.dumps(result, default=str)[:400])
    return {line: combine_runs(line_runs) for line, line_runs in runs.items()}


def combine_runs(runs: list[dict]) -> dict:
    """One line's figures over its runs: the median of each number (per key of a nested mapping, such as
    ``stage_ms_p50``), the runs themselves under ``runs``; the first error if a run failed."""
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        return {"error": errors[0], "runs": runs}

    def median(values: list):
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return float(statistics.median(numbers)) if numbers else values[0]

    combined: dict = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        if isinstance(values[0], dict):
            combined[key] = {k: median([v.get(k) for v in values]) for k in values[0]}
        else:
            combined[key] = median(values)
    return {**combined, "runs": runs}


def paired_ratio(lines: dict[str, dict], line: str, reference: str) -> float | None:
    """Median over rounds of ``line``'s throughput over ``reference``'s in the same round: each ratio
    compares two runs minutes apart, so a slower spell of the machine does not tip it."""
    pairs = zip(lines.get(line, {}).get("runs", []), lines.get(reference, {}).get("runs", []))
    ratios = [
        a["throughput_tps"] / b["throughput_tps"]
        for a, b in pairs
        if a.get("throughput_tps") and b.get("throughput_tps")
    ]
    return float(statistics.median(ratios)) if ratios else None


def add_scratch_arguments(parser) -> None:
    """``--workdir`` and ``--use-running-broker``, shared by the benchmark and soak jobs."""
    parser.add_argument(
        "--workdir",
        default=None,
        help="scratch folder, kept afterwards (default: a new temp dir, removed after a successful run)",
    )
    parser.add_argument(
        "--use-running-broker",
        action="store_true",
        help="use the broker on kafka.bootstrap_servers instead of starting one",
    )


def scratch_overrides(workdir: str | None, use_running_broker: bool) -> list[str]:
    """Scratch locations so a benchmark never touches the user's tables, checkpoint or registry."""
    work = Path(workdir or tempfile.mkdtemp(prefix="fraud-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    overrides = [
        f"delta.root={work / 'delta'}",
        f"stream.checkpoint_dir={work / 'checkpoint'}",
        f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",
        f"mlflow.artifact_location={work / 'artifacts'}",
        "mlflow.model_name=bench-xgboost",
        f"kafka.topic=bench-{uuid.uuid4().hex[:8]}",
    ]
    if not use_running_broker:  # nothing listens on port 1: the benchmark starts its own broker
        overrides.append("kafka.bootstrap_servers=127.0.0.1:1")
    return overrides


def scratch_root(cfg: Config) -> Path:
    """The folder ``scratch_overrides`` put this run's tables, checkpoint and registry in; every other
    scratch file of the run (line tables, the broker's log, offered frames) goes there too."""
    return Path(cfg.get("delta.root")).parent


@contextmanager
def scratch_workdir(workdir: str | None, cfg: Config) -> Iterator[Path]:
    """The run's scratch folder; a temp one (no ``--workdir``) is removed once the run succeeds and kept,
    with its path logged, when it fails."""
    root = scratch_root(cfg)
    try:
        yield root
    except BaseException:
        log.warning("scratch files of the failed run kept in %s", root)
        raise
    if workdir is None:
        shutil.rmtree(root)
        log.info("removed the scratch folder %s", root)


@contextmanager
def scratch_broker(cfg: Config) -> Iterator[Config]:
    """``cfg`` if a broker answers on ``kafka.bootstrap_servers``, else the config of a fresh embedded
    broker in the scratch folder, stopped and its log removed on exit (its topics are this run's)."""
    try:
        check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options(), timeout=3)
        running = True
    except KafkaUnavailableError:
        running = False
    if running:
        yield cfg
        return
    scratch_root(cfg).mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="kafka-", dir=scratch_root(cfg)))
    broker = LocalKafkaBroker(
        jars_dir=Path(cfg.get("kafka.local.jars_dir")),
        data_dir=data_dir,
        port=free_port(),
        controller_port=free_port(),
        heap="1g",
    ).start()
    try:
        yield cfg.with_overrides([f"kafka.bootstrap_servers={broker.bootstrap_servers}"], env={})
    finally:
        broker.stop()
        shutil.rmtree(data_dir)


def child_conf_args(conf: str | None, overrides: list[str] | tuple[str, ...], cfg: Config) -> list[str]:
    """``--conf`` / ``--set`` arguments that give a child job ``cfg``: the overrides, then the broker
    ``scratch_broker`` settled on."""
    items = [*overrides, f"kafka.bootstrap_servers={cfg.get('kafka.bootstrap_servers')}"]
    return (["--conf", conf] if conf else []) + [a for o in items for a in ("--set", o)]


def run_benchmark(cfg: Config, options: BenchOptions) -> dict:
    """Run one benchmark; return the result dict (also what the job prints as JSON)."""
    if options.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if options.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {options.repeats}")
    with scratch_broker(cfg) as cfg:
        booster, model_uri = train_bench_model(cfg, options.trees)
        ceiling_frame = bench_frame(options.ceiling_rows, seed=11)
        ceiling = scoring_ceiling(booster, ceiling_frame)
        baseline = per_message_baseline(model_uri, ceiling_frame.head(options.baseline_rows))
        decode_us = decode_probe(cfg, ceiling_frame.head(20_000), (250, int(cfg.get("spark.arrow_batch_size"))))
        log.info(
            "raw XGBoost ceiling %.0f rows/s; per-message pyfunc baseline %.0f rows/s; decode us/message %s",
            ceiling,
            baseline,
            json.dumps(decode_us),
        )
        result: dict = {"mode": options.mode}
        if options.mode == "capacity":
            result.update(_capacity(cfg, options))
        elif options.mode == "latency":
            result.update(_latency(cfg, options))
        else:
            result.update(_fuzz(cfg, options))
        result.update(
            scoring_ceiling_tps=ceiling,
            per_message_baseline_tps=baseline,
            decode_us_per_message=decode_us,
            message_format=cfg.get("stream.message.format"),
            model_trees=options.trees,
            kafka_partitions=cfg.get("kafka.partitions"),
            reader=cfg.get("stream.reader"),
            udf=cfg.get("stream.udf"),
            max_offsets_per_trigger=cfg.get("stream.max_offsets_per_trigger"),
            trigger_interval=cfg.get("stream.trigger_interval"),
            deduplicate=cfg.get("stream.deduplicate"),
            machine=f"{platform.machine()} {psutil.cpu_count()} cores "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.python_version()}",
            versions={name: metadata.version(name) for name in VERSIONED},
        )
        if result.get("throughput_tps"):
            result["ratio_to_ceiling"] = result["throughput_tps"] / ceiling
            result["ratio_to_baseline"] = result["throughput_tps"] / baseline
        return result


def _capacity(cfg: Config, options: BenchOptions) -> dict:
    frame = bench_frame(options.backlog)

    def preload(line_cfg: Config) -> None:
        produced = replay(frame, line_cfg, rate=0)
        log.info(
            "pre-loaded %d transactions into %s in %.1fs", produced.sent, line_cfg.get("kafka.topic"), produced.seconds
        )

    lines = run_lines(cfg, options.lines, options.backlog, preload=preload, repeats=options.repeats)
    stream = lines.get("stream", {})
    out = {
        "offered_tps": None,
        "backlog": options.backlog,
        "throughput_tps": stream.get("throughput_tps"),
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "floor_tps": lines.get("floor", {}).get("throughput_tps"),
        "read_floor_tps": lines.get("read_floor", {}).get("throughput_tps"),
        "peer_tps": lines.get("peer", {}).get("throughput_tps"),
        "peer_latency_p50_ms": None,
        "stream_peak_rss_mib": stream.get("peak_rss_mib"),
        "stream_peak_pss_mib": stream.get("peak_pss_mib"),
        "stream_cpu_mean_pct": stream.get("cpu_mean_pct"),
        "lines": lines,
    }
    for name, key in (("floor", "ratio_to_floor"), ("read_floor", "ratio_to_read_floor"), ("peer", "ratio_to_peer")):
        out[key] = paired_ratio(lines, "stream", name)
    return out


def _latency(cfg: Config, options: BenchOptions) -> dict:
    total = int(options.offered_tps * (options.warmup_s + options.duration_s))
    frame_path = scratch_root(cfg) / f"{cfg.get('kafka.topic')}-offered.parquet"
    bench_frame(total, seed=9).to_parquet(frame_path)
    warm = 2_000
    spawn = mp.get_context("spawn")

    def offer(line_cfg: Config):
        # The line is up: a short burst for its first batch, then the offered rate. Rows sent in
        # the first warmup_s seconds of it are not measured.
        replay(bench_frame(warm, seed=5), line_cfg, rate=0)
        time.sleep(5)
        producer = spawn.Process(
            target=replay_file, args=(line_cfg.as_dict(), line_cfg.source, str(frame_path), options.offered_tps)
        )
        producer.start()
        return producer

    # A run reads the start of its measured window when its producer has begun (a shared dict would
    # not cross processes): it is fixed here, warm-up + burst seconds after the run is ready.
    offered = {"warmup_s": options.warmup_s + 5}
    measured = tuple(name for name in options.lines if name in ("stream", "peer"))
    lines = run_lines(cfg, measured, warm + total, offered, offer=offer, repeats=options.repeats)
    stream, peer = lines.get("stream", {}), lines.get("peer", {})
    return {
        "offered_tps": options.offered_tps,
        "warmup_s": options.warmup_s,
        "duration_s": options.duration_s,
        "throughput_tps": stream.get("throughput_tps"),
        "latency_p50_ms": stream.get("latency_p50_ms"),
        "latency_p99_ms": stream.get("latency_p99_ms"),
        "floor_tps": None,
        "ratio_to_floor": None,
        "peer_tps": None,
        "peer_latency_p50_ms": peer.get("latency_p50_ms"),
        "peer_latency_p99_ms": peer.get("latency_p99_ms"),
        "stream_peak_rss_mib": stream.get("peak_rss_mib"),
        "stream_peak_pss_mib": stream.get("peak_pss_mib"),
        "stream_cpu_mean_pct": stream.get("cpu_mean_pct"),
        "lines": lines,
    }


def _fuzz(cfg: Config, options: BenchOptions) -> dict:
    from fraud_ml.io.delta import accounted_rows, open_table
    from fraud_ml.io.spark import build_spark
    from fraud_ml.ops.fuzzing import fuzzed_messages
    from fraud_ml.ops.waiting import wait_until
    from fraud_ml.streaming.producer import send_raw
    from fraud_ml.streaming.query import start_stream

    ensure_topic(cfg)
    messages, good_ids = fuzzed_messages(options.fuzz_messages, seed=20261201, event_time_ms=int(time.time() * 1000))
    spark = build_spark(cfg, "fraud-ml-bench-fuzz")
    stream = start_stream(spark, cfg, available_now=False)
    started = time.monotonic()
    try:
        send_raw(messages, cfg)
        wait_until(
            lambda: accounted_rows(cfg.table_path("batch_metrics")) >= len(messages),
            3600,
            "every fuzzed message in Delta",
            stream.exception,
        )
        alive = stream.is_active and stream.exception() is None
    finally:
        stream.stop()
    preds = open_table(cfg.table_path("predictions")).to_pandas(columns=[ID_COL, "kafka_partition", "kafka_offset"])
    quarantine = open_table(cfg.table_path("quarantine")).to_pandas(
        columns=["kafka_partition", "kafka_offset", "reason"]
    )
    coordinates = set(zip(preds["kafka_partition"], preds["kafka_offset"])) | set(
        zip(quarantine["kafka_partition"], quarantine["kafka_offset"])
    )
    kinds = quarantine["reason"].str.replace(r"[:(].*$", "", regex=True).str.strip().value_counts()
    return {
        "sent": len(messages),
        "scored": len(preds),
        "quarantined": len(quarantine),
        "each_exactly_once": len(coordinates) == len(preds) + len(quarantine) == len(messages),
        "good_ids_all_scored": good_ids <= set(preds[ID_COL]),
        "ids_unique": bool(preds[ID_COL].is_unique),
        "query_alive": alive,
        "seconds": time.monotonic() - started,
        "reasons": {k: int(v) for k, v in kinds.items()},
        "throughput_tps": None,
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "offered_tps": None,
    }


def format_result(result: dict) -> str:
    """Human-readable lines followed by the JSON line."""
    lines = [
        f"{k:>26}: {v:,.1f}" if isinstance(v, float) else f"{k:>26}: {v}" for k, v in result.items() if k != "lines"
    ]
    return "\n".join(lines + [json.dumps(result, default=str)])
