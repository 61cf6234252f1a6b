"""Incremental Delta reading with the ``deltalake`` package (no Spark, no JVM).

:class:`DeltaIncremental` remembers which data files it has already read and, on each poll,
reads only the files added since (projected to the needed columns). A poll that finds no new
table version does no data I/O at all. Files removed (overwrite, OPTIMIZE) trigger one full
re-read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds

from fraud_ml.io.delta import open_table

log = logging.getLogger(__name__)


# --- Delta reading
@dataclass
class DeltaUpdate:
    """Result of :meth:`DeltaIncremental.poll`.

    ``exists``: the table exists; ``version``: its current version (None if absent);
    ``new``: rows of the files added since the last poll (None when nothing changed);
    ``reset``: files were removed (overwrite/compaction), so ``new`` holds the whole
    table and previously accumulated state must be dropped.
    """

    exists: bool
    version: int | None
    new: pa.Table | None = None
    reset: bool = False

    @property
    def changed(self) -> bool:
        return self.new is not None or self.reset


def table_version(path: str) -> int | None:
    """Current version of the Delta table at ``path``, or None when there is none."""
    table = open_table(path)
    return None if table is None else int(table.version())


def read_columns(
    path: str, columns: Sequence[str] | None = None, filter: pds.Expression | None = None, version: int | None = None
) -> pd.DataFrame:
    """Read a Delta table (optionally at ``version``) projected to ``columns`` and filtered, as pandas.

    Missing columns come back as nulls, so readers tolerate older table schemas.
    """
    from deltalake import DeltaTable

    dt = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    ds = dt.to_pyarrow_dataset()
    return _project(ds, columns, filter).to_pandas()


def _project(ds: pds.Dataset, columns: Sequence[str] | None, filter: pds.Expression | None = None) -> pa.Table:
    names = set(ds.schema.names)
    wanted = list(columns) if columns is not None else list(ds.schema.names)
    present = [c for c in wanted if c in names]
    table = ds.to_table(columns=present, filter=filter)
    for c in wanted:
        if c not in names:
            table = table.append_column(c, pa.nulls(table.num_rows))
    return table.select(wanted)


class DeltaIncremental:
    """Read a growing Delta table incrementally, one poll per dashboard tick.

    Each :meth:`poll` refreshes the log (``update_incremental``); if the version is
    unchanged it returns at once. Otherwise it replays the commits since the last poll
    from ``_delta_log``: files added with ``dataChange`` are read (projected to
    ``columns``), even when a later commit already compacted them away; files added by
    a compaction (``dataChange: false``, OPTIMIZE) hold rows already read, so they are
    only noted. A delete, an overwrite, a recreated table or a commit whose log file is
    gone re-reads everything and sets ``reset``.
    """

    def __init__(self, path: str, columns: Sequence[str] | None = None) -> None:
        self.path = path
        self.columns = list(columns) if columns is not None else None
        self.version: int | None = None
        self._dt = None
        self._seen: set[str] = set()
        self.files_read = 0  # data files read so far (for tests and logs)

    def poll(self) -> DeltaUpdate:
        """Read what changed since the last poll (see :class:`DeltaUpdate`)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            if self._dt is None:
                if not DeltaTable.is_deltatable(self.path):
                    return DeltaUpdate(exists=False, version=None)
                self._dt = DeltaTable(self.path)
            else:
                self._dt.update_incremental()
            version = int(self._dt.version())
        except (TableNotFoundError, FileNotFoundError) as exc:  # deleted, or being recreated, between two polls
            log.info("Delta table %s not readable (%s); will retry", self.path, str(exc).splitlines()[0][:120])
            had_state = bool(self._seen)
            self._forget()
            return DeltaUpdate(exists=False, version=None, reset=had_state)
        if version == self.version:
            return DeltaUpdate(exists=True, version=version)
        ds = self._dt.to_pyarrow_dataset()
        current = {f.path for f in ds.get_fragments()}
        plan = self._replay(ds.filesystem, version) if self.version is not None and version > self.version else None
        if plan is not None and plan[1] == current:
            read, self._seen = plan
        else:
            if self.version is not None:
                log.info(
                    "Delta table %s: rows removed or log gone before version %s, re-reading it", self.path, version
                )
            read, self._seen = sorted(current), set(current)
        subset = pds.FileSystemDataset.from_paths(read, schema=ds.schema, format=ds.format, filesystem=ds.filesystem)
        table = _project(subset, self.columns)
        self.files_read += len(read)
        reset = plan is None and self.version is not None
        self.version = version
        return DeltaUpdate(exists=True, version=version, new=table, reset=reset)

    def _replay(self, filesystem, version: int) -> tuple[list[str], set[str]] | None:
        """(files to read, files of the new version) from the commits since the last poll; None: re-read all."""
        seen, read = set(self._seen), []
        for v in range(self.version + 1, version + 1):
            try:
                with filesystem.open_input_stream(f"_delta_log/{v:020d}.json") as stream:
                    lines = stream.read().decode("utf-8").splitlines()
            except FileNotFoundError:
                return None  # the log was cleaned up past a checkpoint: the files in between are unknown
            for action in (json.loads(line) for line in lines if line.strip()):
                if "add" in action:
                    path = unquote(action["add"]["path"])
                    if action["add"].get("dataChange", True):
                        read.append(path)
                    seen.add(path)
                elif "remove" in action:
                    if action["remove"].get("dataChange", True):
                        return None  # rows deleted or overwritten
                    seen.discard(unquote(action["remove"]["path"]))
        return read, seen

    def _forget(self) -> None:
        self._dt, self._seen, self.version = None, set(), None


class VersionedTable:
    """A small Delta table kept fully in memory, refreshed incrementally; None if absent."""

    def __init__(self, path: str, columns: Sequence[str] | None = None) -> None:
        self._reader = DeltaIncremental(path, columns)
        self.frame: pd.DataFrame | None = None

    @property
    def version(self) -> int | None:
        return self._reader.version

    def refresh(self) -> bool:
        """Apply the latest changes; True if the frame changed."""
        update = self._reader.poll()
        if not update.exists:
            changed = self.frame is not None
            self.frame = None
            return changed
        if not update.changed:
            return False
        new = update.new.to_pandas() if update.new is not None else None
        if update.reset or self.frame is None:
            self.frame = new
        elif new is not None and len(new):
            self.frame = pd.concat([self.frame, new], ignore_index=True)
        return True
