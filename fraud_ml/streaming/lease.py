"""One live streaming query per ``stream.app_id`` on a set of tables: a renewed lease file.

The stream's commits are tagged with its query id (the id Spark keeps in the checkpoint),
so a new checkpoint never mistakes old tags for its own. Two queries that share an app id
on the same tables would then both write everything: the lease stops the second one.

The lease is a small JSON file, ``<delta.root>/_stream_leases/<app_id>.json``, holding the
query id, the run id, host, pid and when it was last renewed. A query takes it when there
is none, when it is its own (a restart of the same checkpoint), when it was not renewed for
``ttl_s`` seconds, or when its holder was a process of this host that no longer runs (a
driver killed with -9 restarts at once). Otherwise the query refuses to start with one
line that names the holder. While running, a thread renews the lease every third of
``ttl_s``; a query that finds the lease taken from it, or that could not renew it for
``ttl_s``, fails its next batch instead of writing beside the new holder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fraud_ml.errors import StreamConflictError

log = logging.getLogger(__name__)

_HELD_HERE: set[str] = set()  # run ids of the leases this process holds now


@dataclass
class StreamLease:
    """The lease of ``app_id`` in ``folder`` for ``query_id`` (one instance per running query)."""

    folder: str
    app_id: str
    query_id: str
    run_id: str
    ttl_s: float
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        self.path = Path(self.folder) / f"{self.app_id}.json"
        self._renewed = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- file ---
    def read(self) -> dict | None:
        """The current lease, or None when there is none (or it is unreadable, as after a torn write)."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            log.warning("lease %s is unreadable: treating it as absent", self.path)
            return None

    def _write(self) -> None:
        body = {
            "app_id": self.app_id,
            "query_id": self.query_id,
            "run_id": self.run_id,
            "host": self.host,
            "pid": self.pid,
            "renewed_at": time.time(),
            "ttl_s": self.ttl_s,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{self.run_id}.tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a reader sees the old lease or the new one
        self._renewed = time.monotonic()

    def _holder_alive(self, lease: dict) -> bool:
        """Renewed within its ttl and, on this host, held by a process that still runs it."""
        if time.time() - float(lease.get("renewed_at", 0)) > float(lease.get("ttl_s", self.ttl_s)):
            return False
        if lease.get("host") != self.host:
            return True
        pid = lease.get("pid")
        if pid == self.pid:
            return lease.get("run_id") in _HELD_HERE
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, TypeError, ValueError, OverflowError):
            return True
        return True

    # --- life cycle ---
    def acquire(self) -> "StreamLease":
        """Take the lease or raise StreamConflictError naming the live holder."""
        lease = self.read()
        if lease is not None and lease.get("run_id") != self.run_id and self._holder_alive(lease):
            age = time.time() - float(lease.get("renewed_at", 0))
            what = (
                "this checkpoint is already running"
                if lease.get("query_id") == self.query_id
                else f"stream.app_id '{self.app_id}' is held by another running query ({lease.get('query_id')})"
            )
            raise StreamConflictError(
                f"{what}: host {lease.get('host')} pid {lease.get('pid')}, lease {self.path} renewed {age:.0f}s ago; "
                f"stop that query, or give this stream its own stream.app_id"
            )
        if lease is not None and lease.get("query_id") not in (None, self.query_id):
            log.warning(
                "taking over stream.app_id '%s' from query %s (its lease lapsed or its process is gone)",
                self.app_id,
                lease.get("query_id"),
            )
        self._write()
        _HELD_HERE.add(self.run_id)
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.app_id}", daemon=True)
        self._thread.start()
        return self

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                lease = self.read()
                if lease is not None and lease.get("run_id") != self.run_id:
                    self._lost = (
                        f"the lease of stream.app_id '{self.app_id}' was taken by query "
                        f"{lease.get('query_id')} (host {lease.get('host')} pid {lease.get('pid')})"
                    )
                    log.error("%s: this query stops writing", self._lost)
                    return
                self._write()
            except OSError as exc:  # keep trying; check() fails the batch once the lease may have lapsed
                log.warning("could not renew the lease %s: %s", self.path, exc)

    def check(self) -> None:
        """Raise StreamConflictError unless this query still holds a valid lease (called before each commit)."""
        if self._lost:
            raise StreamConflictError(self._lost)
        if time.monotonic() - self._renewed > self.ttl_s:
            raise StreamConflictError(
                f"the lease {self.path} was not renewed for {self.ttl_s:.0f}s: "
                "another query may have taken stream.app_id, refusing to commit"
            )

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still ours."""
        self._stop.set()
        _HELD_HERE.discard(self.run_id)
        if self._thread is not None:
            self._thread.join(timeout=5)
        lease = self.read()
        if lease is not None and lease.get("run_id") == self.run_id:
            self.path.unlink(missing_ok=True)
