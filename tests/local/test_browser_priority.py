"""The soak's browser stands for an analyst's laptop: every thread of every Chromium process it
starts must stay in the idle scheduling class (Chromium re-prioritises its children itself)."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from fraud_ml.local.browser import Chromium, ensure_chromium


def policy(tid: int) -> int | None:
    """The scheduling policy of thread ``tid``; None if it has exited since it was listed."""
    try:
        return os.sched_getscheduler(tid)
    except ProcessLookupError:
        return None


@pytest.mark.parametrize("background", [True, False])
def test_a_background_browser_runs_every_thread_in_the_idle_class(tmp_path, background):
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(why)
    with Chromium(path, tmp_path / "profile", background=background) as browser:
        browser.navigate("data:text/html,<h1>idle</h1>")
        time.sleep(1)
        root = psutil.Process(browser.proc.pid)
        processes = [root, *root.children(recursive=True)]
        policies = {policy(t.id) for p in processes for t in p.threads()} - {None}
    assert len(processes) > 1, "Chromium starts its renderer and GPU processes as children"
    assert (policies == {os.SCHED_IDLE}) if background else (os.SCHED_IDLE not in policies)
