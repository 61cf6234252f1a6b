"""fraud_ml.streaming.lease: one live query per stream.app_id on a set of tables (a renewed lease file)."""

import json
import subprocess
import sys
import time

import pytest

from fraud_ml.errors import StreamConflictError
from fraud_ml.streaming.lease import StreamLease


def lease(tmp_path, query="q1", run="r1", ttl=30.0, **kw) -> StreamLease:
    return StreamLease(str(tmp_path), "app", query, run, ttl, **kw)


def test_a_second_live_query_is_refused_with_the_holder_named(tmp_path):
    first = lease(tmp_path).acquire()
    try:
        with pytest.raises(StreamConflictError, match="held by another running query \\(q1\\)"):
            lease(tmp_path, query="q2", run="r2").acquire()
        with pytest.raises(StreamConflictError, match="this checkpoint is already running"):
            lease(tmp_path, query="q1", run="r3").acquire()
        first.check()
    finally:
        first.release()
    assert not (tmp_path / "app.json").exists()


def test_a_released_or_lapsed_lease_is_taken_over(tmp_path):
    lease(tmp_path).acquire().release()
    second = lease(tmp_path, query="q2", run="r2").acquire()
    second.release()
    (tmp_path / "app.json").write_text(
        json.dumps(
            {
                "query_id": "q9",
                "run_id": "r9",
                "host": "elsewhere",
                "pid": 1,
                "renewed_at": time.time() - 120,
                "ttl_s": 30,
            }
        )
    )
    third = lease(tmp_path, query="q3", run="r3").acquire()
    assert json.loads((tmp_path / "app.json").read_text())["query_id"] == "q3"
    third.release()


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = lease(tmp_path, query="q1", run="r1", pid=int(dead.stdout))
    holder._write()  # as a driver killed with -9 leaves it: fresh, but its process is gone
    taker = lease(tmp_path, query="q2", run="r2").acquire()
    taker.release()


def test_a_lease_held_elsewhere_and_renewed_is_refused(tmp_path):
    lease(tmp_path, query="q1", run="r1", host="other-host")._write()
    with pytest.raises(StreamConflictError, match="host other-host"):
        lease(tmp_path, query="q2", run="r2").acquire()


def test_losing_the_lease_fails_the_next_check(tmp_path):
    held = lease(tmp_path, ttl=0.3).acquire()
    try:
        lease(tmp_path, query="q2", run="r2", host="other-host")._write()  # someone took it over
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and held._lost is None:
            time.sleep(0.05)
        with pytest.raises(StreamConflictError, match="was taken by query q2"):
            held.check()
    finally:
        held.release()
    assert json.loads((tmp_path / "app.json").read_text())["query_id"] == "q2"  # not removed: not ours


def test_a_lease_not_renewed_for_its_ttl_refuses_to_commit(tmp_path):
    held = lease(tmp_path, ttl=30.0).acquire()
    try:
        held._renewed -= 31
        with pytest.raises(StreamConflictError, match="not renewed"):
            held.check()
    finally:
        held.release()


def test_an_unreadable_lease_counts_as_absent(tmp_path):
    (tmp_path / "app.json").write_text("{torn")
    lease(tmp_path).acquire().release()
