"""fraud_ml.io.delta: the stream's tagged, idempotent deltalake appends and the narrow "no table" rule."""

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from fraud_ml.errors import StreamStateError
from fraud_ml.io.delta import (
    BatchTag,
    Maintenance,
    StreamTable,
    accounted_rows,
    open_table,
    table_rows,
)

SCHEMA = pa.schema([pa.field("batch_id", pa.int64()), pa.field("value", pa.float64())])
PROPS = {
    "delta.checkpointInterval": "100",
    "delta.logRetentionDuration": "interval 1 hours",
    "delta.deletedFileRetentionDuration": "interval 1 hours",
}


def tag(batch: int, query: str = "q1", app: str = "app") -> BatchTag:
    return BatchTag(app, query, batch, started_at_ms=1_000 + batch, since_ms=None, model_version="1")


def rows(batch: int, n: int = 2) -> pa.Table:
    return pa.table({"batch_id": [batch] * n, "value": [float(i) for i in range(n)]}, schema=SCHEMA)


def stream_table(path, compact_every: int = 0) -> StreamTable:
    return StreamTable(str(path), SCHEMA, PROPS, Maintenance(compact_every, 128, 1, True))


def test_commits_are_found_per_query_and_batch(tmp_path):
    table = stream_table(tmp_path / "t")
    assert not table.committed(tag(0)) and table.find_tag(tag(0)) is None
    at_ms = table.append(rows(0), tag(0))
    assert table.committed(tag(0)) and not table.committed(tag(1))
    found, commit_ms = table.find_tag(tag(0))
    assert found == tag(0) and commit_ms == at_ms
    # A new checkpoint (another query id) starts at batch 0 again: none of it counts as done.
    assert not table.committed(tag(0, query="q2")) and table.find_tag(tag(0, query="q2")) is None
    table.append(rows(0), tag(0, query="q2"))
    assert table_rows(str(tmp_path / "t")) == 4
    assert DeltaTable(str(tmp_path / "t")).metadata().configuration == PROPS


def test_a_reopened_table_still_knows_its_commits(tmp_path):
    stream_table(tmp_path / "t").append(rows(3), tag(3))
    again = stream_table(tmp_path / "t")
    assert again.committed(tag(3)) and again.find_tag(tag(3))[0].started_at_ms == 1_003


def test_a_checkpoint_behind_the_table_is_an_error_not_a_skip(tmp_path):
    table = stream_table(tmp_path / "t")
    table.append(rows(5), tag(5))
    with pytest.raises(StreamStateError, match="already holds batch 5 .* at batch 2"):
        table.committed(tag(2))


def test_the_tag_is_found_behind_many_other_commits(tmp_path):
    table = stream_table(tmp_path / "t")
    table.append(rows(0), tag(0))
    for i in range(5):
        table.append(rows(i), tag(i, app=f"noise-{i}"))
    assert table.find_tag(tag(0), recent=2)[0] == tag(0)


def test_compaction_keeps_the_rows_and_bounds_the_files(tmp_path):
    table = stream_table(tmp_path / "t", compact_every=5)
    for b in range(12):
        table.append(rows(b), tag(b))
        table.wait_maintenance()  # one round at a time, so the file count is exact
    files = DeltaTable(str(tmp_path / "t")).file_uris()
    assert len(files) <= 4, files  # two compactions: 12 appends -> 1 + 1 + 2 files
    assert table_rows(str(tmp_path / "t")) == 24 and table.committed(tag(11))


def test_background_compaction_overlapping_appends_loses_nothing(tmp_path):
    table = stream_table(tmp_path / "t", compact_every=3)
    commit_ms = {b: table.append(rows(b, 5), tag(b)) for b in range(60)}
    table.wait_maintenance()
    fresh = DeltaTable(str(tmp_path / "t"))
    operations = [c["operation"] for c in fresh.history()]
    assert operations.count("OPTIMIZE") >= 2, operations  # rounds really ran beside the appends
    data = fresh.to_pyarrow_table()
    assert data.num_rows == 300 and sorted(set(data["batch_id"].to_pylist())) == list(range(60))
    assert fresh.transaction_version("app/q1") == 59
    tagged = {found.batch: int(c["timestamp"]) for c in fresh.history() if (found := BatchTag.from_commit(c))}
    assert tagged == commit_ms  # what each append returned is the time of its own tagged commit


def test_a_failed_background_maintenance_fails_the_next_append(tmp_path, monkeypatch):
    table = stream_table(tmp_path / "t", compact_every=1)

    def broken(self):
        raise OSError("disk full while compacting")

    monkeypatch.setattr(StreamTable, "maintain", broken)
    table.append(rows(0), tag(0))
    table._maintenance.join()
    with pytest.raises(OSError, match="disk full"):
        table.append(rows(1), tag(1))


def test_new_columns_are_added_to_an_existing_table(tmp_path):
    table = stream_table(tmp_path / "t")
    table.append(rows(0), tag(0))
    wider = rows(1).append_column("extra", pa.array([1.0, 2.0]))
    table.append(wider, tag(1))
    assert DeltaTable(str(tmp_path / "t")).to_pandas()["extra"].notna().sum() == 2


def test_only_a_missing_table_reads_as_no_table(tmp_path):
    assert open_table(str(tmp_path / "absent")) is None and table_rows(str(tmp_path / "absent")) == 0
    assert accounted_rows(str(tmp_path / "absent")) == 0
    path = tmp_path / "t"
    stream_table(path).append(rows(0), tag(0))
    log = path / "_delta_log" / "00000000000000000000.json"
    log.write_text("{ not a delta log")
    with pytest.raises(DeltaError):
        open_table(str(path))
    with pytest.raises(DeltaError):
        table_rows(str(path))


def test_accounted_rows_sums_scored_and_quarantined(tmp_path):
    path = str(tmp_path / "m")
    table = StreamTable(
        path, pa.schema([("rows", pa.int64()), ("quarantined", pa.int64())]), {}, Maintenance(0, 1, 1, False)
    )
    table.append(pa.table({"rows": [3], "quarantined": [1]}), tag(0))
    table.append(pa.table({"rows": [5], "quarantined": [0]}), tag(1))
    assert accounted_rows(path) == 9


def test_expired_log_entries_are_deleted_by_maintenance_only(tmp_path):
    """An append's post-commit hook once deleted expired log files while a background vacuum read
    them (the soak's stream stopped on ``_delta_log/...json not found``); only maintain() deletes them."""
    props = {**PROPS, "delta.checkpointInterval": "5", "delta.logRetentionDuration": "interval 0 seconds"}
    table = StreamTable(str(tmp_path / "t"), SCHEMA, props, Maintenance(0, 128, 1, True))
    for b in range(12):
        table.append(rows(b), tag(b))
    log_dir = tmp_path / "t" / "_delta_log"
    commits = lambda: sorted(p.name for p in log_dir.glob("*.json"))  # noqa: E731
    assert len(commits()) == 12 and len(list(log_dir.glob("*.checkpoint.parquet"))) == 2  # written, nothing deleted
    table.maintain()
    left = commits()
    assert left[0] == "00000000000000000009.json"  # the entries before the newest checkpoint are gone
    assert table_rows(str(tmp_path / "t")) == 24 and table.committed(tag(11))


def test_maintenance_deletes_unreferenced_files_whose_tombstone_has_expired(tmp_path):
    """Lite vacuum deletes only files with a remove action still in the log: a file whose tombstone
    expired before a round was never deleted (half the soak's parquet files after an hour)."""
    import os
    import time

    table = StreamTable(str(tmp_path / "t"), SCHEMA, PROPS, Maintenance(0, 128, 1, True))
    for b in range(3):
        table.append(rows(b), tag(b))
    orphan = tmp_path / "t" / "part-00000-orphan-c000.snappy.parquet"
    orphan.write_bytes(
        (tmp_path / "t" / next(f for f in os.listdir(tmp_path / "t") if f.endswith(".parquet"))).read_bytes()
    )
    old = time.time() - 7 * 24 * 3600  # older than any retention: unreferenced, no tombstone
    os.utime(orphan, (old, old))
    table.maintain()
    assert not orphan.exists()
    assert table_rows(str(tmp_path / "t")) == 6 and table.committed(tag(2))
