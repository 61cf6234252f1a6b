"""fraud_ml.delta_io: tagged idempotent appends (Spark and deltalake writers) and recent-file selection."""
from datetime import datetime, timedelta, timezone

from deltalake import DeltaTable
from pyspark.sql import types as T

from fraud_ml.delta_io import (append_idempotent, append_rows_idempotent, committed_batch, files_with_rows_since,
                               table_rows)

SCHEMA = T.StructType([T.StructField("batch_id", T.LongType(), False), T.StructField("at", T.TimestampType(), True),
                       T.StructField("value", T.DoubleType(), True)])


def test_spark_append_is_idempotent_per_app_and_batch(spark, tmp_path):
    path = str(tmp_path / "t")
    assert committed_batch(path, "app") is None
    df = spark.createDataFrame([(0, None, 1.0), (0, None, 2.0)], SCHEMA)
    assert append_idempotent(df, path, "app", 0) is True
    assert append_idempotent(df, path, "app", 0) is False  # replay of batch 0
    assert append_idempotent(df, path, "other-app", 0) is True  # another writer's batch 0
    assert committed_batch(path, "app") == 0 and committed_batch(path, "other-app") == 0
    assert append_idempotent(df, path, "app", 1) is True
    assert committed_batch(path, "app") == 1
    assert table_rows(path) == 6


def test_tag_is_found_behind_many_other_commits(spark, tmp_path):
    path = str(tmp_path / "t")
    df = spark.createDataFrame([(0, None, 1.0)], SCHEMA)
    append_idempotent(df, path, "app", 7)
    for i in range(4):
        append_idempotent(df, path, f"noise-{i}", 0)
    assert committed_batch(path, "app", recent=2) == 7


def test_legacy_txn_actions_still_count(spark, tmp_path):
    path = str(tmp_path / "t")
    (spark.createDataFrame([(0, None, 1.0)], SCHEMA).write.format("delta").mode("append")
     .option("txnAppId", "old-app").option("txnVersion", 12).save(path))
    assert committed_batch(path, "old-app") == 12


def test_driver_rows_append_to_a_table_spark_created_and_spark_reads_them(spark, tmp_path):
    path = str(tmp_path / "metrics")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    append_idempotent(spark.createDataFrame([(0, now, 1.0)], SCHEMA), path, "app", 0)
    assert append_rows_idempotent([(1, now, None)], SCHEMA, path, "app", 1) is True
    assert append_rows_idempotent([(1, now, None)], SCHEMA, path, "app", 1) is False
    rows = sorted(spark.read.format("delta").load(path).collect())
    assert [r["batch_id"] for r in rows] == [0, 1] and rows[1]["value"] is None
    assert rows[1]["at"].replace(tzinfo=timezone.utc) == now or rows[1]["at"] == now.replace(tzinfo=None)


def test_driver_rows_create_the_table(tmp_path):
    path = str(tmp_path / "fresh")
    assert append_rows_idempotent([(3, datetime.now(timezone.utc), 2.5)], SCHEMA, path, "app", 3)
    assert committed_batch(path, "app") == 3
    assert DeltaTable(path).to_pandas()["value"].tolist() == [2.5]


def test_files_with_rows_since_uses_file_statistics(spark, tmp_path):
    path = str(tmp_path / "t")
    assert files_with_rows_since(path, "at", datetime.now(timezone.utc)) is None
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    new = datetime.now(timezone.utc)
    append_idempotent(spark.createDataFrame([(0, old, 1.0)], SCHEMA).coalesce(1), path, "app", 0)
    append_idempotent(spark.createDataFrame([(1, new, 1.0)], SCHEMA).coalesce(1), path, "app", 1)
    recent = files_with_rows_since(path, "at", new - timedelta(minutes=5))
    assert len(recent) == 1
    assert spark.read.parquet(*recent).collect()[0]["batch_id"] == 1
    assert len(files_with_rows_since(path, "at", old - timedelta(minutes=5))) == 2
