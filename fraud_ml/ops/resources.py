"""Memory and CPU of a process tree (a job's driver, its JVM and Python workers), for the
benchmark and the soak.

Memory is reported two ways. ``rss``: the sum of each process's resident set, which counts a
page shared by several processes once per process. ``pss``: the sum of proportional set sizes (a
shared page split between its sharers), the memory the tree occupies.

A child that shares its parent's address space is not counted at all: the JVM starts each
``chmod`` Hadoop's local file system runs on a checkpoint file with ``posix_spawn``, whose child
runs in the JVM's own memory (``CLONE_VM``) until it execs, and a reading in that instant showed
the JVM twice (the soak's 1-s readings: +1.0 GiB spikes of a second "jvm"). ``kcmp(KCMP_VM)``
tells such a child from a forked one; its count is kept as ``shared_vm`` by role.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass, field

import psutil

log = logging.getLogger(__name__)

_SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())
_KCMP_VM = 1
_libc = ctypes.CDLL(None, use_errno=True)


def shares_address_space(pid: int, other: int) -> bool | None:
    """Whether two processes run in one address space (``kcmp(2)`` ``KCMP_VM``); None when the kernel
    cannot say (no kcmp on this machine, not permitted, a process gone)."""
    if _SYS_KCMP is None:
        return None
    answer = _libc.syscall(_SYS_KCMP, pid, other, _KCMP_VM, 0, 0)
    return None if answer < 0 else answer == 0


@dataclass(frozen=True)
class TreeSample:
    """One reading: summed RSS and PSS (MiB; PSS None when not read) and CPU % since the previous reading
    (100 = one core)."""

    rss_mib: float
    pss_mib: float | None
    cpu_pct: float
    # The same readings by role in the tree (see ProcessTree.role): {role: {"n", "rss_mib", "pss_mib"}}.
    by_role: dict[str, dict[str, float | None]] = field(default_factory=dict)


def _no_memory(pss: bool) -> dict[str, float | None]:
    return {"n": 0, "rss_mib": 0.0, "pss_mib": 0.0 if pss else None}


class ProcessTree:
    """A process and (with ``children``) its descendants, read on demand."""

    def __init__(self, pid: int, children: bool = True) -> None:
        self.root, self.children = psutil.Process(pid), children
        self._known: dict[int, psutil.Process] = {}
        self._roles: dict[int, str] = {}

    def role(self, proc: psutil.Process) -> str:
        """What a process of a job's tree is: ``driver`` (the root), ``jvm``, ``python-daemon`` and
        ``python-worker`` (PySpark's worker daemon and the workers it forks), else its program name.

        A child the JVM spawned that has not exec'd yet still runs java, so it counts as ``jvm``. Only
        the driver's and PySpark's roles are kept per pid: any other process may still exec (the JVM
        starts as the ``bash`` of ``spark-submit``), so its program is read again at each sample.
        """
        if proc.pid in self._roles:
            return self._roles[proc.pid]
        try:
            cmd = proc.cmdline()
            program = os.path.basename(cmd[0]) if cmd else proc.name()
            if proc.pid == self.root.pid:
                role = "driver"
            elif program == "java":
                role = "jvm"
            elif "pyspark.daemon" in cmd:
                parent = proc.parent()
                role = "python-worker" if parent and "pyspark.daemon" in parent.cmdline() else "python-daemon"
            else:
                role = program
        except psutil.Error:
            return "gone"
        if role in ("driver", "python-worker", "python-daemon"):
            self._roles[proc.pid] = role
        return role

    def sample(self, pss: bool = True) -> TreeSample | None:
        """The tree now, or None once its root is gone; without ``pss`` only the cheap readings.

        PSS comes from ``/proc/<pid>/smaps_rollup``, which walks each process's page tables under
        its memory-map lock (a 1.3 GiB JVM: milliseconds of kernel time, and its allocations wait);
        RSS and CPU come from ``statm`` / ``stat``, which cost nothing comparable.
        """
        try:
            tree = [self.root, *(self.root.children(recursive=True) if self.children else [])]
        except psutil.Error:
            return None
        rss = pss_bytes = 0
        cpu = 0.0
        by_role: dict[str, dict[str, float | None]] = {}
        for p in tree:
            proc = self._known.setdefault(p.pid, p)
            try:
                parent = proc.ppid() if proc.pid != self.root.pid else None
                if parent is not None and shares_address_space(proc.pid, parent):
                    role = by_role.setdefault(self.role(proc), _no_memory(pss))
                    role["shared_vm"] = role.get("shared_vm", 0) + 1  # its pages are its parent's, counted there
                    continue
                memory = proc.memory_full_info() if pss else proc.memory_info()
                cpu += proc.cpu_percent(None)
            except psutil.Error:  # exited between the listing and the reading
                continue
            rss += memory.rss
            pss_bytes += memory.pss if pss else 0
            role = by_role.setdefault(self.role(proc), _no_memory(pss))
            role["n"] += 1
            role["rss_mib"] += memory.rss / 2**20
            if pss:
                role["pss_mib"] += memory.pss / 2**20
        self._known = {p.pid: self._known[p.pid] for p in tree if p.pid in self._known}
        self._roles = {pid: r for pid, r in self._roles.items() if pid in self._known}
        return TreeSample(rss / 2**20, pss_bytes / 2**20 if pss else None, cpu, by_role)


class TreeSampler:
    """Samples a :class:`ProcessTree` in a thread: RSS and CPU every ``interval_s``, PSS every
    ``pss_interval_s``; keeps the peaks and the mean CPU.

    Run it outside the measured process (the benchmark samples each line from its parent): in the
    line's own process its psutil parsing took the GIL from the stream (py-spy: a quarter of the
    driver's wall-clock samples at 0.5 s with PSS every time).
    """

    def __init__(self, pid: int, interval_s: float = 0.5, pss_interval_s: float = 5.0) -> None:
        self.tree, self.interval_s, self.pss_interval_s = ProcessTree(pid), interval_s, pss_interval_s
        self.samples: list[TreeSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_pss = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            sample = self.tree.sample(pss=now >= next_pss)
            if sample is not None:
                self.samples.append(sample)
                if sample.pss_mib is not None:
                    next_pss = now + self.pss_interval_s
            self._stop.wait(self.interval_s)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> dict:
        """Mean CPU % and peak RSS / PSS (MiB) over the samples."""
        self._stop.set()
        self._thread.join(timeout=5)
        cpu = [s.cpu_pct for s in self.samples[2:] or self.samples]  # the first cpu_percent readings are 0
        peak_rss = max(self.samples, key=lambda s: s.rss_mib, default=None)
        peak_pss = max((s for s in self.samples if s.pss_mib is not None), key=lambda s: s.pss_mib, default=None)
        return {
            "cpu_mean_pct": sum(cpu) / len(cpu) if cpu else None,
            "peak_rss_mib": peak_rss.rss_mib if peak_rss else None,
            "peak_pss_mib": peak_pss.pss_mib if peak_pss else None,
            "samples": len(self.samples),
            "peak_rss_by_role": peak_rss.by_role if peak_rss else None,
            "peak_pss_by_role": peak_pss.by_role if peak_pss else None,
        }
