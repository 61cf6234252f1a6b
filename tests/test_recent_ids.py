"""fraud_ml.recent_ids: the driver's set of recently scored ids (pure numpy)."""
import numpy as np

from fraud_ml.recent_ids import RecentIds, hash_ids


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


def test_merges_keep_answers_and_drop_expired_ids():
    recent = RecentIds()
    for batch in range(200):  # forces merges of the tail into the sorted part
        recent.add(hash_ids([f"id-{batch}-{i}" for i in range(100)]), batch, scored_at_ms=batch * 10)
        found = recent.seen_in(hash_ids([f"id-{batch}-0", f"id-{max(batch - 5, 0)}-7"]), since_ms=max(batch - 5, 0) * 10)
        assert found.tolist() == [batch, max(batch - 5, 0)]
    recent.seen_in(hash_ids(["x"]), since_ms=1_900)
    recent._merge(1_900)
    assert len(recent) == 10 * 100  # batches 190..199 remain


def test_an_id_scored_again_after_expiry_is_found_with_its_new_batch():
    recent = RecentIds()
    recent.load(["a", "b"], np.array([1, 1]), np.array([100, 100]))
    recent.add(hash_ids(["a"]), batch_id=9, scored_at_ms=5_000)
    recent._merge(None)
    assert recent.seen_in(hash_ids(["a", "b"]), since_ms=1_000).tolist() == [9, -1]


def test_load_keeps_the_latest_scoring_and_discard_forgets_one_batch():
    recent = RecentIds()
    recent.load(["a", "a", "b"], np.array([1, 4, 4]), np.array([100, 400, 400]))
    assert recent.seen_in(hash_ids(["a", "b"]), since_ms=0).tolist() == [4, 4]
    recent.discard_batch(4, 400)
    assert recent.seen_in(hash_ids(["a", "b"]), since_ms=0).tolist() == [-1, -1]
    assert len(recent) == 0
