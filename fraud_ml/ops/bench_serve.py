"""REST scoring benchmark (``make bench-serve``): MLflow's scoring server on the champion, measured
with a real HTTP client beside in-process references from the same run.

* single requests: one transaction per ``POST /invocations`` on a kept-alive connection, one
  after another: p50/p90/p99/max latency and requests/s;
* batched: ``batch_rows`` transactions per request: rows/s;
* references: the same pyfunc called in-process on one row (what a request costs without HTTP)
  and on a batch, and the raw XGBoost ceiling (``inplace_predict`` on all cores).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from fraud_ml.config import Config
from fraud_ml.local.kafka_broker import free_port
from fraud_ml.schema import FEATURES

log = logging.getLogger(__name__)


@dataclass
class ServeBenchOptions:
    """What one REST benchmark run does."""

    single_requests: int = 1000  # one-row requests timed one after another
    batch_rows: int = 1000  # rows per batched request
    batch_requests: int = 50  # batched requests timed
    warmup_requests: int = 50  # untimed requests first
    trees: int = 300  # size of the benchmark model


def payload(frame: pd.DataFrame) -> bytes:
    """``dataframe_split`` JSON of ``frame``'s features."""
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": frame[FEATURES].to_numpy().tolist()}}).encode()


def timed_posts(url: str, bodies: list[bytes]) -> np.ndarray:
    """Milliseconds of each ``POST /invocations`` on one kept-alive connection; any non-200 raises."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    out = np.empty(len(bodies))
    try:
        for i, body in enumerate(bodies):
            started = time.perf_counter()
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            out[i] = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"the scoring server answered {response.status}: {answer[:300]!r}")
    finally:
        connection.close()
    return out


def in_process(model, frame: pd.DataFrame, options: ServeBenchOptions) -> dict:
    """The pyfunc without HTTP: one row per call (ms) and one batch per call (rows/s)."""
    singles = [frame.iloc[[i]] for i in range(min(options.single_requests, len(frame)))]
    model.predict(singles[0])
    ms = []
    for row in singles:
        started = time.perf_counter()
        model.predict(row)
        ms.append((time.perf_counter() - started) * 1000)
    batch = frame.head(options.batch_rows)
    started = time.perf_counter()
    for _ in range(options.batch_requests):
        model.predict(batch)
    seconds = time.perf_counter() - started
    return {
        "inprocess_single_p50_ms": float(np.median(ms)),
        "inprocess_single_p99_ms": float(np.percentile(ms, 99)),
        "inprocess_batch_rows_per_s": options.batch_rows * options.batch_requests / seconds,
    }


def run_bench_serve(cfg: Config, options: ServeBenchOptions) -> dict:
    """Train and register the benchmark champion, serve it, measure; return the result dict."""
    from fraud_ml.io.mlflow import load_verified
    from fraud_ml.ops.bench import bench_frame, scoring_ceiling, train_bench_model
    from fraud_ml.ops.bench_lines import latency_summary
    from fraud_ml.serving.rest import RestServer

    booster, model_uri = train_bench_model(cfg, options.trees)
    frame = bench_frame(max(options.single_requests, options.batch_rows) + options.warmup_requests, seed=21)
    references = in_process(load_verified(model_uri), frame, options)
    references["scoring_ceiling_tps"] = scoring_ceiling(booster, bench_frame(200_000, seed=11))
    served_cfg = cfg.with_overrides([f"serve.port={free_port()}"], env={})
    with RestServer(served_cfg) as server:
        timed_posts(server.url, [payload(frame.iloc[[i]]) for i in range(options.warmup_requests)])
        single = timed_posts(server.url, [payload(frame.iloc[[i]]) for i in range(options.single_requests)])
        batch_body = payload(frame.head(options.batch_rows))
        batched = timed_posts(server.url, [batch_body] * options.batch_requests)
    result = {
        "mode": "serve",
        **latency_summary(single),
        "requests_per_s": len(single) / (single.sum() / 1000),
        "batch_rows": options.batch_rows,
        "batch_latency_p50_ms": float(np.median(batched)),
        "batch_rows_per_s": options.batch_rows * len(batched) / (batched.sum() / 1000),
        **references,
        "workers": server.settings.workers,
        "model_trees": options.trees,
        "offered_tps": None,
    }
    result["http_overhead_p50_ms"] = result["latency_p50_ms"] - result["inprocess_single_p50_ms"]
    result["ratio_batch_to_inprocess"] = result["batch_rows_per_s"] / result["inprocess_batch_rows_per_s"]
    return result
