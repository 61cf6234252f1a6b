"""fraud_ml.ops.waiting: the one polling loop (returns, fails with the reason, or times out)."""

from __future__ import annotations

import itertools

import pytest

from fraud_ml.errors import FraudMLError
from fraud_ml.ops.waiting import wait_until


def test_wait_until_returns_once_the_predicate_holds():
    calls = itertools.count()
    wait_until(lambda: next(calls) >= 3, timeout_s=5, what="three polls", poll_s=0.01)
    assert next(calls) == 4


def test_wait_until_raises_the_failure_and_the_timeout():
    with pytest.raises(FraudMLError, match="the stream: it exited with 1"):
        wait_until(lambda: False, timeout_s=5, what="the stream", failed=lambda: "it exited with 1", poll_s=0.01)
    with pytest.raises(FraudMLError, match="timed out after 0s waiting for nothing"):
        wait_until(lambda: False, timeout_s=0.05, what="nothing", poll_s=0.01)
