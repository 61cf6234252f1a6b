"""Delta Lake I/O shared by the jobs: batch writes and idempotent streaming appends."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession


def write_table(df: DataFrame, path: str, mode: str = "overwrite") -> None:
    """Write a batch DataFrame as a Delta table (schema replaced on overwrite)."""
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    writer.save(path)


def append_idempotent(df: DataFrame, path: str, app_id: str, version: int) -> None:
    """Append once per (app_id, version): Delta skips a batch it has already committed.

    This is what makes ``foreachBatch`` exactly-once: a micro-batch replayed after
    a crash carries the same batch id and its write becomes a no-op.
    """
    (df.write.format("delta").mode("append")
       .option("txnAppId", app_id).option("txnVersion", int(version))
       .option("mergeSchema", "true")
       .save(path))


def committed_txn_version(path: str, app_id: str) -> int | None:
    """The last ``txnVersion`` committed to a Delta table by ``app_id`` (None if none or no table)."""
    from deltalake import DeltaTable

    try:
        return DeltaTable(path).transaction_version(app_id)
    except Exception:  # no table yet
        return None


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """Read a Delta table with Spark."""
    return spark.read.format("delta").load(path)


def table_rows(path: str) -> int:
    """Row count of a Delta table via ``deltalake`` (0 when it does not exist yet)."""
    from deltalake import DeltaTable

    try:
        return DeltaTable(path).to_pyarrow_dataset().count_rows()
    except Exception:  # TableNotFoundError before the first commit
        return 0


def accounted_rows(batch_metrics_path: str) -> int:
    """Rows whose micro-batch is complete: scored + quarantined, summed over ``batch_metrics``."""
    from deltalake import DeltaTable

    try:
        metrics = DeltaTable(batch_metrics_path).to_pandas(columns=["rows", "quarantined"])
    except Exception:
        return 0
    return int(metrics["rows"].sum() + metrics["quarantined"].sum())
