"""Delta Lake I/O: Spark writes for the batch jobs, ``deltalake`` for the stream's tables.

The stream's tables (``predictions``, ``quarantine``, ``batch_metrics``) are appended by
the streaming driver with ``deltalake`` through a handle kept open (:class:`StreamTable`):
one commit per table and micro-batch, carrying

* a Delta ``txn`` action ``(<app_id>/<query_id>, <batch id>)``: the idempotent-write
  protocol of Delta (``txnAppId``/``txnVersion`` in Spark), read back in O(1) from the
  snapshot; the query id is the one Spark keeps in the checkpoint, so a new checkpoint
  (batch ids from 0 again) never takes old commits for its own;
* a ``userMetadata`` tag (:class:`BatchTag`) with what the batch was decided on (its start,
  the duplicate look-back bound, the model version), so a batch replayed after a crash
  between its commits decides exactly as its first attempt did.

Only "table does not exist" is ever taken as "no table yet" (:func:`open_table`); any other
error (I/O, a corrupt log) propagates and fails the micro-batch, which Spark then retries.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from fraud_ml.errors import DataSchemaError, StreamStateError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- batch jobs (Spark)
def write_table(df, path: str, mode: str = "overwrite") -> None:
    """Write a batch Spark DataFrame as a Delta table (schema replaced on overwrite)."""
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    writer.save(path)


def read_table(spark, path: str):
    """Read a Delta table with Spark."""
    return spark.read.format("delta").load(path)


# ----------------------------------------------------------------------------- reading with deltalake
def open_table(path: str, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (optionally at ``version``), or None when there is none.

    Only a missing table reads as None: an unreadable log or a storage error propagates.
    """
    try:
        return DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    except TableNotFoundError:
        return None


def require_table(path: str, hint: str) -> DeltaTable:
    """The Delta table at ``path``; DataSchemaError saying ``hint`` (what makes it) when there is none."""
    table = open_table(path)
    if table is None:
        raise DataSchemaError(f"no Delta table at {path}: {hint}")
    return table


def table_rows(path: str) -> int:
    """Row count of a Delta table (0 when it does not exist yet)."""
    table = open_table(path)
    return 0 if table is None else table.to_pyarrow_dataset().count_rows()


def accounted_rows(batch_metrics_path: str) -> int:
    """Rows whose micro-batch is complete: scored + quarantined, summed over ``batch_metrics``."""
    table = open_table(batch_metrics_path)
    if table is None:
        return 0
    metrics = table.to_pyarrow_dataset().to_table(columns=["rows", "quarantined"])
    return int(pa.compute.sum(metrics["rows"]).as_py() or 0) + int(pa.compute.sum(metrics["quarantined"]).as_py() or 0)


# ----------------------------------------------------------------------------- the stream's tables
@dataclass(frozen=True)
class BatchTag:
    """What one micro-batch was decided on; carried by each of its commits."""

    app_id: str
    query_id: str
    batch: int
    started_at_ms: int  # batch start on the driver: scored_at, the event_time bound
    since_ms: int | None  # duplicate look-back: ids scored at or after this count (None: no look-back)
    model_version: str

    @property
    def txn_app(self) -> str:
        """The ``txn`` application id of this query's commits."""
        return f"{self.app_id}/{self.query_id}"

    def user_metadata(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_commit(cls, commit: dict[str, Any]) -> "BatchTag | None":
        """The tag of a commit-info dict from ``DeltaTable.history``, None when it has none (or another's)."""
        try:
            meta = json.loads(commit.get("userMetadata") or "null")
            return cls(**meta) if isinstance(meta, dict) and set(meta) == set(cls.__dataclass_fields__) else None
        except (ValueError, TypeError):
            return None


# Appends and maintenance write checkpoints but leave expired log entries to StreamTable.maintain.
KEEP_LOGS = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)


@dataclass(frozen=True)
class Maintenance:
    """How a stream table is kept small: compaction every N commits, then vacuum (``stream.maintenance``)."""

    compact_every_commits: int
    target_file_mb: int
    concurrent_tasks: int
    vacuum: bool


class StreamTable:
    """One table the streaming driver appends to, through a ``deltalake`` handle kept open."""

    def __init__(self, path: str, schema: pa.Schema, configuration: dict[str, str], maintenance: Maintenance) -> None:
        self.path = path
        self.schema = schema
        self.configuration = {str(k): str(v) for k, v in configuration.items()}
        self.maintenance = maintenance
        self.table = open_table(path)
        self._commits = 0
        self._maintenance: threading.Thread | None = None
        self._maintenance_error: BaseException | None = None

    def refresh(self) -> None:
        """Load the latest version (at start-up; the handle follows its own commits afterwards)."""
        if self.table is None:
            self.table = open_table(self.path)
        else:
            self.table.update_incremental()

    def committed(self, tag: BatchTag) -> bool:
        """Whether this table already holds ``tag``'s batch; StreamStateError if it holds a later one."""

        done = None if self.table is None else self.table.transaction_version(tag.txn_app)
        if done is not None and done > tag.batch:
            raise StreamStateError(
                f"{self.path} already holds batch {done} of query {tag.query_id}, but the checkpoint is at batch "
                f"{tag.batch}: the checkpoint was restored from an older copy; refusing to skip or rewrite data"
            )
        return done == tag.batch

    def find_tag(self, tag: BatchTag, recent: int = 200) -> tuple[BatchTag, int] | None:
        """The tag and commit time (epoch ms) of this query's commit of ``tag.batch``, if any (newest first)."""
        if self.table is None or not self.committed(tag):
            return None
        for limit in (recent, None):
            for commit in self.table.history(limit):
                found = BatchTag.from_commit(commit)
                if found is not None and found.txn_app == tag.txn_app and found.batch == tag.batch:
                    return found, int(commit["timestamp"])

        raise StreamStateError(
            f"{self.path} has a txn entry for batch {tag.batch} of {tag.txn_app} but no commit tagged with it"
        )

    def arrow_schema(self) -> pa.Schema:
        """The table's schema when it exists, else the schema it will be created with."""
        return self.schema if self.table is None else pa.schema(self.table.schema().to_arrow())

    def append(self, data: pa.Table, tag: BatchTag) -> int:
        """Append ``data`` in one commit tagged with ``tag`` (creating the table on the first one).

        Returns the commit's timestamp (epoch ms, from its commit info: what a replay reads back).
        """
        properties = CommitProperties(
            custom_metadata={"userMetadata": tag.user_metadata()},
            app_transactions=[Transaction(tag.txn_app, int(tag.batch))],
        )
        if self.table is None:
            write_deltalake(
                self.path,
                data.cast(self.schema),
                mode="append",
                configuration=self.configuration,
                commit_properties=properties,
                post_commithook_properties=KEEP_LOGS,
            )
            self.table = DeltaTable(self.path)
        else:
            target = self.arrow_schema()
            missing = [f for f in data.schema if f.name not in target.names]
            if missing:  # e.g. a new stream.prediction_features column: add it
                target = pa.schema(list(target) + missing)
            data = data.select([f.name for f in target if f.name in data.schema.names])
            write_deltalake(
                self.table,
                data.cast(pa.schema([target.field(n) for n in data.schema.names])),
                mode="append",
                schema_mode="merge" if missing else None,
                commit_properties=properties,
                post_commithook_properties=KEEP_LOGS,
            )
        committed_ms = self._commit_time(tag)
        self._commits += 1
        if self.maintenance.compact_every_commits and self._commits % self.maintenance.compact_every_commits == 0:
            self._maintain_in_background()
        return committed_ms

    def _commit_time(self, tag: BatchTag) -> int:
        """Epoch ms of the commit tagged ``tag`` just made (a background compaction may have committed after it)."""
        for commit in self.table.history(8):
            found = BatchTag.from_commit(commit)
            if found is not None and found.txn_app == tag.txn_app and found.batch == tag.batch:
                return int(commit["timestamp"])
        return self.find_tag(tag)[1]

    def maintain(self) -> dict:
        """Compact small files (data unchanged), vacuum every unreferenced file the table's retention
        allows, then delete the expired log entries.

        Runs on its own handle, so it may overlap the next appends: compaction removes files with
        ``dataChange=false`` and a blind append reads none, so each commit rebases on the other.
        Expired log entries are deleted here only, after the vacuum: when an append's post-commit
        hook deleted them, a vacuum running beside it failed on a log file just removed
        (``_delta_log/...1985.json not found`` after 24 minutes of the soak), which stopped the
        stream.
        """
        table = DeltaTable(self.path)
        metrics = table.optimize.compact(
            target_size=self.maintenance.target_file_mb * 2**20,
            max_concurrent_tasks=self.maintenance.concurrent_tasks,
            post_commithook_properties=KEEP_LOGS,
        )
        # full: every file the snapshot does not reference, past the retention. The default (lite)
        # deletes only files with a remove action still in the log, but a tombstone leaves the
        # snapshot when it turns deletedFileRetentionDuration old, the same moment its file becomes
        # deletable, so a file whose tombstone expired between two rounds stayed on disk for good:
        # ~3,100 of 6,583 parquet files after the 60-minute soak, growing ~700 per 10 minutes.
        removed = (
            table.vacuum(dry_run=False, full=True, post_commithook_properties=KEEP_LOGS)
            if self.maintenance.vacuum
            else []
        )
        table.cleanup_metadata()
        log.info(
            "%s: compacted %s files into %s, vacuumed %d",
            self.path,
            metrics.get("numFilesRemoved"),
            metrics.get("numFilesAdded"),
            len(removed),
        )
        return {**metrics, "vacuumed": len(removed)}

    def _maintain_in_background(self) -> None:
        # Compaction + vacuum in the batch delayed the next batch by 1.3-1.8 s at 1,000 tx/s (the p99
        # of latency, make soak); off the batch's path it costs the stream nothing it waits for.
        self.raise_maintenance_error()
        if self._maintenance is not None and self._maintenance.is_alive():
            return  # the previous round is still going: the next due commit tries again

        def run() -> None:
            try:
                self.maintain()
            except Exception as exc:  # noqa: BLE001 - carried to the batch thread: the next append raises it
                log.error("%s: maintenance failed: %s", self.path, exc)
                self._maintenance_error = exc

        self._maintenance = threading.Thread(target=run, name=f"maintain-{self.path}")
        self._maintenance.start()

    def raise_maintenance_error(self) -> None:
        """Raise the failure of the last background maintenance, once."""
        error, self._maintenance_error = self._maintenance_error, None
        if error is not None:
            raise error

    def wait_maintenance(self, timeout_s: float | None = None) -> None:
        """Wait for a running background maintenance; raise its failure."""
        if self._maintenance is not None:
            self._maintenance.join(timeout_s)
        self.raise_maintenance_error()

    def read(self, columns: list[str], filter=None) -> pa.Table:
        """Columns of the current version (an empty table when the table does not exist)."""
        if self.table is None:
            return self.schema.empty_table().select(columns)
        return self.table.to_pyarrow_dataset().to_table(columns=columns, filter=filter)
