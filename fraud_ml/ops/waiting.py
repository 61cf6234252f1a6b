"""Waiting for the system to reach a state: the one polling loop of the demo, benchmarks and soak."""

from __future__ import annotations

import time
from typing import Callable

from fraud_ml.errors import FraudMLError


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    failed: Callable[[], str | None] = lambda: None,
    poll_s: float = 0.25,
) -> None:
    """Poll ``predicate`` until true; raise FraudMLError when ``failed()`` names an error or at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        error = failed()
        if error is not None:
            raise FraudMLError(f"{what}: {error}")
        if predicate():
            return
        time.sleep(poll_s)
    raise FraudMLError(f"timed out after {timeout_s:.0f}s waiting for {what}")
