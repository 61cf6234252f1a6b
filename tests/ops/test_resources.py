"""fraud_ml.ops.resources: a process tree's summed RSS counts shared pages per process, PSS once, and a
child in its parent's address space not at all."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from fraud_ml.ops import resources
from fraud_ml.ops.resources import ProcessTree, TreeSampler, shares_address_space

# A child that maps 200 MiB, touches it, then forks: parent and child share those pages.
FORKING_CHILD = """
import os, sys, time
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
pid = os.fork()
sys.stdout.write("forked\\n"); sys.stdout.flush()
time.sleep(30)
"""


def test_shared_pages_count_twice_in_rss_and_once_in_pss():
    proc = subprocess.Popen([sys.executable, "-c", FORKING_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "forked"
        time.sleep(0.5)
        sample = ProcessTree(proc.pid).sample()
        assert sample is not None
        assert sample.rss_mib > 400  # the 200 MiB block, once in each of the two processes
        assert 200 < sample.pss_mib < sample.rss_mib - 150  # ... and once in the tree's PSS
        child = os.path.basename(sys.executable)
        assert {role: r["n"] for role, r in sample.by_role.items()} == {"driver": 1, child: 1}
        assert abs(sum(r["rss_mib"] for r in sample.by_role.values()) - sample.rss_mib) < 1e-6
        assert sample.by_role[child]["rss_mib"] > 200 and sample.by_role[child]["pss_mib"] < 150
    finally:
        proc.kill()
        proc.wait()


def test_the_sampler_keeps_peaks_and_cpu():
    sampler = TreeSampler(os.getpid(), interval_s=0.05).start()
    time.sleep(0.3)
    result = sampler.stop()
    assert result["peak_rss_mib"] >= result["peak_pss_mib"] > 0
    assert result["cpu_mean_pct"] is not None
    assert result["peak_rss_by_role"]["driver"]["n"] == 1 and result["samples"] >= 2


def test_a_cheap_sample_reads_rss_and_cpu_but_not_pss():
    tree = ProcessTree(os.getpid(), children=False)
    full, cheap = tree.sample(), tree.sample(pss=False)
    assert cheap.pss_mib is None and full.pss_mib > 0
    assert cheap.rss_mib > 0 and abs(cheap.rss_mib - full.rss_mib) < 50


def test_kcmp_tells_one_address_space_from_a_forked_copy():
    proc = subprocess.Popen([sys.executable, "-c", FORKING_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "forked"
        (child,) = psutil.Process(proc.pid).children()
        assert shares_address_space(proc.pid, proc.pid) is True
        assert shares_address_space(child.pid, proc.pid) is False  # fork: a copy, counted on its own
    finally:
        proc.kill()
        proc.wait()


def test_a_child_in_its_parents_address_space_is_not_counted_again(monkeypatch):
    """What a spawned child shows before it execs (CLONE_VM): its parent's pages, so it adds nothing."""
    proc = subprocess.Popen([sys.executable, "-c", FORKING_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "forked"
        (child,) = psutil.Process(proc.pid).children()
        monkeypatch.setattr(resources, "shares_address_space", lambda pid, other: pid == child.pid)
        sample = ProcessTree(proc.pid).sample()
        name = os.path.basename(sys.executable)
        assert sample.by_role[name] == {"n": 0, "rss_mib": 0.0, "pss_mib": 0.0, "shared_vm": 1}
        assert sample.rss_mib == sample.by_role["driver"]["rss_mib"] and 200 < sample.rss_mib < 400
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_execs_gets_the_role_of_its_new_program():
    # spark-submit is a bash script that execs java: the JVM must not stay "bash"
    child = subprocess.Popen(["bash", "-c", "read _; exec sleep 30"], stdin=subprocess.PIPE, text=True)
    try:
        tree = ProcessTree(os.getpid())
        deadline = time.monotonic() + 10
        while tree.role(psutil.Process(child.pid)) != "bash" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tree.role(psutil.Process(child.pid)) == "bash"
        child.stdin.write("go\n")
        child.stdin.flush()
        while tree.role(psutil.Process(child.pid)) != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tree.role(psutil.Process(child.pid)) == "sleep"
    finally:
        child.kill()
        child.wait()
