"""One micro-batch, exactly once: :class:`MicroBatchWriter` routes the scored rows and appends
``predictions``, ``quarantine`` and ``batch_metrics``, each commit tagged (fraud_ml.io.delta), and
finds its own commits when the batch is replayed after a crash.

``FRAUD_ML_FAULT_AT=<point>:<batch id>`` kills the driver at ``after_predictions``,
``after_quarantine`` or ``after_batch_metrics`` of that batch (the fault tests use it).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, StreamConflictError, StreamStateError
from fraud_ml.io.delta import BatchTag, Maintenance, StreamTable
from fraud_ml.schema import ID_COL
from fraud_ml.streaming.batch_scoring import Scoring
from fraud_ml.streaming.lease import StreamLease
from fraud_ml.streaming.recent_ids import RecentIds, map_large_allocations
from fraud_ml.streaming.routing import (
    BATCH_METRICS_SCHEMA,
    QUARANTINE_SCHEMA,
    RoutedBatch,
    metrics_row,
    predictions_schema,
    route_batch,
    with_raw,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

FAULT_ENV = "FRAUD_ML_FAULT_AT"
FAULT_POINTS = ("after_predictions", "after_quarantine", "after_batch_metrics")
OUTPUT_TABLES = ("predictions", "quarantine", "batch_metrics")


def fault_point(point: str, batch_id: int) -> None:
    """Kill this driver (and its JVM) here when ``FRAUD_ML_FAULT_AT`` names this point and batch."""
    wanted = os.environ.get(FAULT_ENV, "")
    if wanted and wanted == f"{point}:{batch_id}":
        log.error("fault injection: killing the driver %s of batch %d", point, batch_id)
        logging.shutdown()
        if os.getpgrp() == os.getpid():  # our own process group (the fault tests start one): take the JVM too
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def stream_tables(cfg: Config, keep_features: list[str]) -> dict[str, StreamTable]:
    """The stream's output tables, each with its schema, table properties and maintenance."""
    m = cfg.get("stream.maintenance")
    maintenance = Maintenance(
        int(m["compact_every_commits"]), int(m["target_file_mb"]), int(m["concurrent_tasks"]), bool(m["vacuum"])
    )
    properties = cfg.get("stream.table_properties") or {}
    schemas = {
        "predictions": predictions_schema(keep_features),
        "quarantine": QUARANTINE_SCHEMA,
        "batch_metrics": BATCH_METRICS_SCHEMA,
    }
    return {name: StreamTable(cfg.table_path(name), schemas[name], properties, maintenance) for name in OUTPUT_TABLES}


def lease_folder(cfg: Config) -> str:
    """Where the app-id leases live: ``<delta.root>/_stream_leases`` (a file system path)."""
    root = cfg.get("delta.root")
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(
            f"delta.root '{root}' is not a file system path: the stream lease (fraud_ml.streaming.lease) "
            "needs the tables on a shared file system (docs/cluster.md)"
        )
    return str(Path(root.removeprefix("file://")) / "_stream_leases")


def driver_mmap_threshold_bytes(cfg: Config) -> int:
    """``stream.driver_mmap_threshold_kib`` in bytes; ConfigError unless it is at least 1 KiB (glibc
    takes any value: 0 would map every allocation, a negative one turn mapping off)."""
    kib = cfg.get("stream.driver_mmap_threshold_kib")
    if isinstance(kib, bool) or not isinstance(kib, int) or kib < 1:
        raise ConfigError(f"stream.driver_mmap_threshold_kib must be a whole number of KiB >= 1, got {kib!r}")
    return kib * 1024


class MicroBatchWriter:
    """The ``foreachBatch`` function: score one micro-batch and append it exactly once."""

    def __init__(
        self, cfg: Config, scoring: Scoring, model_version: str, tables: dict[str, StreamTable] | None = None
    ) -> None:
        self.cfg = cfg
        self.scoring = scoring
        self.model_version = str(model_version)
        self.keep_features = scoring.keep_features
        self.app_id = cfg.get("stream.app_id")
        self.tables = tables or stream_tables(cfg, self.keep_features)
        self.deduplicate = cfg.get("stream.deduplicate")
        self.lookback_ms = int(float(cfg.get("stream.dedupe_lookback_minutes")) * 60_000)
        self.recent = RecentIds() if self.deduplicate and self.lookback_ms > 0 else None
        if self.recent is not None:
            map_large_allocations(driver_mmap_threshold_bytes(cfg))
        self.accounted_rows = 0  # scored + quarantined rows of the batches this writer completed
        self.query_id: str | None = None
        self.lease: StreamLease | None = None
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None

    # --- binding to the running query ---
    def bind(self, query_id: str, run_id: str) -> None:
        """Tie commits to ``query_id``, take the app-id lease and load the recent ids; batches wait for this."""
        try:
            lease = StreamLease(
                lease_folder(self.cfg), self.app_id, query_id, run_id, float(self.cfg.get("stream.lease_ttl_seconds"))
            )
            self.lease = lease.acquire()
            for table in self.tables.values():
                table.refresh()
            if self.recent is not None:
                self._load_recent()
            self.query_id = query_id
        except BaseException as exc:
            self._bind_error = exc
            raise
        finally:
            self._bound.set()

    def close(self) -> None:
        """Let running table maintenance finish, then give the lease back (the query has stopped)."""
        try:
            for table in self.tables.values():
                table.wait_maintenance()
        finally:
            if self.lease is not None:
                self.lease.release()

    def _load_recent(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as pds

        since = pa.scalar((int(time.time() * 1000) - self.lookback_ms) * 1000, pa.timestamp("us", tz="UTC"))
        rows = self.tables["predictions"].read([ID_COL, "batch_id", "scored_at"], pds.field("scored_at") >= since)
        self.recent.load(
            rows[ID_COL].to_numpy(zero_copy_only=False),
            rows["batch_id"].to_numpy(),
            pc.cast(rows["scored_at"], pa.int64()).to_numpy() // 1000,
        )
        log.info("duplicate check: %d ids scored in the last %.0f minutes", len(self.recent), self.lookback_ms / 60_000)

    # --- one micro-batch ---
    def __call__(self, batch_df, batch_id: int) -> None:
        if not self._bound.wait(600):
            raise StreamStateError(
                "the streaming query was never bound to its writer (fraud_ml.streaming.query.start_stream)"
            )
        if self._bind_error is not None:
            raise StreamConflictError(f"the stream could not start: {self._bind_error}")
        self.lease.check()
        started = time.time()
        now_ms = int(started * 1000)
        fresh = BatchTag(
            self.app_id,
            self.query_id,
            int(batch_id),
            now_ms,
            now_ms - self.lookback_ms if self.recent is not None else None,
            self.model_version,
        )
        tag, committed = self._pinned(fresh)
        if committed:
            log.warning(
                "batch %d was partly committed before a restart (%s): finishing it as first decided",
                batch_id,
                ", ".join(committed),
            )
            if self.recent is not None:
                self.recent.discard_batch(tag.batch, tag.started_at_ms)
        scored = self.scoring.scored(batch_df, tag.model_version)
        scored_at = time.time()
        routed = route_batch(
            scored,
            tag,
            self.keep_features,
            self.deduplicate,
            self.recent,
            self.scoring.limits,
            self.scoring.contract,
        )
        if routed.empty:
            return
        if routed.duplicates_without_raw.num_rows and "quarantine" not in committed:
            raw = self.scoring.raw_records(batch_df, routed.duplicates_without_raw)
            routed.quarantine = with_raw(routed.quarantine, raw)
        routed_at = time.time()
        stages = {
            "score_ms": (scored_at - started) * 1000,
            "route_ms": (routed_at - scored_at) * 1000,
            "lookback_ids": len(self.recent) if self.recent is not None else None,
        }
        commit_ms = self._write(routed, tag, committed, stages)
        self.accounted_rows += routed.predictions.num_rows + routed.quarantine.num_rows
        if self.recent is not None:
            self.recent.add(routed.scored_hashes, tag.batch, tag.started_at_ms)
        log.info(
            "batch %d: %d scored, %d quarantined in %.0f ms",
            batch_id,
            routed.predictions.num_rows,
            routed.quarantine.num_rows,
            commit_ms - now_ms,
        )

    def _pinned(self, fresh: BatchTag) -> tuple[BatchTag, dict[str, int]]:
        """The tag this batch was first decided with (and its commit times per table), or ``fresh``."""
        found = {name: hit for name, table in self.tables.items() if (hit := table.find_tag(fresh)) is not None}
        if not found:
            return fresh, {}
        tags = {tag for tag, _ in found.values()}
        if len(tags) > 1:
            raise StreamStateError(
                f"batch {fresh.batch} of query {fresh.query_id} was committed with different "
                f"tags: {sorted(t.user_metadata() for t in tags)}"
            )
        return tags.pop(), {name: ms for name, (_, ms) in found.items()}

    def _write(self, routed: RoutedBatch, tag: BatchTag, committed: dict[str, int], stages: dict) -> int:
        """Append what is not committed yet, in order; return the batch's commit time (epoch ms)."""
        writing = time.time()
        commit_ms = committed.get("predictions")
        for name, rows in (("predictions", routed.predictions), ("quarantine", routed.quarantine)):
            if rows.num_rows and name not in committed:
                self.lease.check()
                at_ms = self.tables[name].append(rows, tag)
                commit_ms = at_ms if commit_ms is None else commit_ms
                fault_point(f"after_{name}", tag.batch)
            elif rows.num_rows and commit_ms is None:
                commit_ms = committed[name]
        if "batch_metrics" not in committed:
            self.lease.check()
            stages = {**stages, "write_ms": (time.time() - writing) * 1000}
            self.tables["batch_metrics"].append(metrics_row(routed, tag, commit_ms, stages), tag)
            fault_point("after_batch_metrics", tag.batch)
        return commit_ms
