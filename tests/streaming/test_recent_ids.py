"""fraud_ml.streaming.recent_ids: the driver's set of recently scored ids (pure numpy), checked against a plain dict."""

import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_ml.streaming.recent_ids import RecentIds, hash_ids


def test_hashes_are_stable_and_distinct():
    ids = [f"tx-{i}" for i in range(10_000)]
    assert np.array_equal(hash_ids(ids), hash_ids(list(ids)))
    assert len(np.unique(hash_ids(ids))) == len(ids)
    assert hash_ids(["a"]).dtype == np.uint64 and int(hash_ids(["a"])[0]) == 13950350942979735504  # fixed SipHash key


def test_lookups_see_only_ids_scored_since_the_bound():
    recent = RecentIds()
    recent.add(hash_ids(["a", "b"]), batch_id=1, scored_at_ms=1_000)
    recent.add(hash_ids(["c"]), batch_id=2, scored_at_ms=2_000)
    assert recent.seen_in(hash_ids(["a", "c", "z"]), since_ms=0).tolist() == [1, 2, -1]
    assert recent.seen_in(hash_ids(["a", "c"]), since_ms=1_500).tolist() == [-1, 2]


def test_compaction_drops_expired_ids_and_keeps_the_others():
    recent = RecentIds(max_tail_runs=3)
    for batch in range(200):
        recent.add(hash_ids([f"id-{batch}-{i}" for i in range(100)]), batch, scored_at_ms=batch * 10)
        since = max(batch - 5, 0) * 10
        assert recent.seen_in(hash_ids([f"id-{batch}-0", f"id-{max(batch - 5, 0)}-7"]), since).tolist() == [
            batch,
            max(batch - 5, 0),
        ]
    assert len(recent) < 200 * 100 / 2  # most of the 20,000 ids expired and were dropped


def test_load_keeps_the_latest_scoring_and_discard_forgets_one_batch():
    recent = RecentIds()
    recent.load(["a", "a", "b"], np.array([4, 1, 4]), np.array([400, 100, 400]))
    assert recent.seen_in(hash_ids(["a", "b"]), since_ms=0).tolist() == [4, 4]
    recent.discard_batch(4, 400)
    assert recent.seen_in(hash_ids(["a", "b"]), since_ms=0).tolist() == [-1, -1]
    assert len(recent) == 0


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "look"]), st.lists(st.integers(0, 40), max_size=12, unique=True), st.integers(0, 30)
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_answers_match_a_plain_dict_whatever_the_compaction(ops):
    recent, oracle = RecentIds(max_tail_runs=2, max_tail_share=0.0, main_fraction=0.5, min_tail_rows=3), {}
    clock, since = 0, 0  # the stream's look-back bound only moves forward (batch start - window)
    for kind, ids, back in ops:
        clock += 10
        keys = [f"id-{i}" for i in ids]
        if kind == "add":
            recent.add(hash_ids(keys), clock // 10, clock)
            for k in keys:
                oracle[k] = (clock // 10, clock)
        else:
            since = max(since, clock - back * 10)
            expected = [oracle[k][0] if k in oracle and oracle[k][1] >= since else -1 for k in keys]
            assert recent.seen_in(hash_ids(keys), since).tolist() == expected


_FREED_PEAK = """
import sys
import numpy as np
from fraud_ml.streaming.recent_ids import map_large_allocations

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "mapped":
    assert map_large_allocations(1 << 20)
np.ones(1 << 19).sum()  # one 4 MiB block freed: glibc's default threshold rises past it
before = rss_mib()
blocks = [np.ones(1 << 19) for _ in range(64)]  # 256 MiB of merge-sized arrays...
pinned = np.ones(1 << 19)  # ...below one that stays
del blocks
print(rss_mib() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(), reason="glibc only")
def test_mapped_allocations_give_freed_peaks_back_to_the_os():
    def retained_mib(mode: str) -> float:
        run = subprocess.run([sys.executable, "-c", _FREED_PEAK, mode], capture_output=True, text=True, check=True)
        return float(run.stdout)

    assert retained_mib("default") > 200  # the heap keeps the freed arrays: what the soak's driver saw
    assert retained_mib("mapped") < 20


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "true"])
def test_an_mmap_threshold_below_one_kib_is_one_clear_config_error(value):
    from fraud_ml.config import load_config
    from fraud_ml.errors import ConfigError
    from fraud_ml.streaming.writer import driver_mmap_threshold_bytes

    assert driver_mmap_threshold_bytes(load_config(env={})) == 1 << 20
    with pytest.raises(ConfigError, match="driver_mmap_threshold_kib"):
        driver_mmap_threshold_bytes(load_config(overrides=[f"stream.driver_mmap_threshold_kib={value}"], env={}))
