"""Memory and CPU of a process tree (a job's driver, its JVM and Python workers), for the
benchmark and the soak.

Memory is reported two ways. ``rss``: the sum of each process's resident set, which counts a
page shared by several processes once per process; in particular the JVM forks a child for each
``chmod`` / ``readlink`` Hadoop's local file system runs on a checkpoint file, and until that
child execs it shows the JVM's whole RSS (1.3 GiB; 5-s samples of the soak caught it as single
+1.3 GiB spikes). ``pss``: the sum of proportional set sizes (a shared page split between its
sharers), the memory the tree occupies; it is what the memory targets are read on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class TreeSample:
    """One reading: summed RSS and PSS (MiB; PSS None when not read) and CPU % since the previous reading
    (100 = one core)."""

    rss_mib: float
    pss_mib: float | None
    cpu_pct: float


class ProcessTree:
    """A process and (with ``children``) its descendants, read on demand."""

    def __init__(self, pid: int, children: bool = True) -> None:
        self.root, self.children = psutil.Process(pid), children
        self._known: dict[int, psutil.Process] = {}

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
        for p in tree:
            proc = self._known.setdefault(p.pid, p)
            try:
                memory = proc.memory_full_info() if pss else proc.memory_info()
                cpu += proc.cpu_percent(None)
            except psutil.Error:  # exited between the listing and the reading
                continue
            rss += memory.rss
            pss_bytes += memory.pss if pss else 0
        return TreeSample(rss / 2**20, pss_bytes / 2**20 if pss else None, cpu)


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
        return {
            "cpu_mean_pct": sum(cpu) / len(cpu) if cpu else None,
            "peak_rss_mib": max((s.rss_mib for s in self.samples), default=None),
            "peak_pss_mib": max((s.pss_mib for s in self.samples if s.pss_mib is not None), default=None),
        }
