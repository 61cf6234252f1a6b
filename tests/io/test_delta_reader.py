"""fraud_ml.io.delta_reader: incremental Delta reading (deltalake only, no Spark)."""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as pds
from deltalake import write_deltalake

from fraud_ml.io.delta_reader import DeltaIncremental, read_columns, table_version


def test_delta_incremental_reads_only_new_files(tmp_path):
    path = str(tmp_path / "t")
    reader = DeltaIncremental(path, ["a", "missing"])
    assert not reader.poll().exists and table_version(path) is None
    write_deltalake(path, pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    write_deltalake(path, pd.DataFrame({"a": [3], "b": ["z"]}), mode="append")
    first = reader.poll()
    assert first.exists and first.version == 1 and not first.reset
    assert sorted(first.new.column("a").to_pylist()) == [1, 2, 3]
    assert first.new.column_names == ["a", "missing"] and first.new.column("missing").null_count == 3
    assert reader.files_read == 2
    idle = reader.poll()  # no new version: nothing read
    assert idle.new is None and not idle.changed and reader.files_read == 2
    write_deltalake(path, pd.DataFrame({"a": [4], "b": ["w"]}), mode="append")
    step = reader.poll()
    assert step.new.column("a").to_pylist() == [4] and reader.files_read == 3 and not step.reset
    write_deltalake(path, pd.DataFrame({"a": [9], "b": ["q"]}), mode="overwrite")
    over = reader.poll()
    assert over.reset and over.new.column("a").to_pylist() == [9]
    # projection, filter and time travel
    assert read_columns(path, ["a"], version=1)["a"].sort_values().tolist() == [1, 2, 3]
    assert read_columns(path, ["b"], filter=pds.field("a") > 5)["b"].tolist() == ["q"]


def test_delta_incremental_does_not_re_read_a_compacted_table(tmp_path):
    from deltalake import DeltaTable

    path = str(tmp_path / "t")
    reader = DeltaIncremental(path, ["a"])
    for i in range(4):
        write_deltalake(path, pd.DataFrame({"a": [i]}), mode="append")
    assert sorted(reader.poll().new.column("a").to_pylist()) == [0, 1, 2, 3] and reader.files_read == 4
    write_deltalake(path, pd.DataFrame({"a": [4]}), mode="append")  # not seen yet when the compaction runs
    DeltaTable(path).optimize.compact()
    write_deltalake(path, pd.DataFrame({"a": [5]}), mode="append")
    step = reader.poll()
    assert not step.reset and sorted(step.new.column("a").to_pylist()) == [4, 5]
    assert reader.files_read == 6  # the two new files, not the compacted one
    DeltaTable(path).optimize.compact()
    assert reader.poll().new.num_rows == 0 and reader.files_read == 6
    DeltaTable(path).delete("a = 5")  # rows removed: the reader starts over
    gone = reader.poll()
    assert gone.reset and sorted(gone.new.column("a").to_pylist()) == [0, 1, 2, 3, 4]
