"""The dashboard and drift job start at dashboard.niceness, so their refreshes wait for the scoring stream."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fraud_ml.config import PROJECT_ROOT, load_config
from fraud_ml.errors import ConfigError
from fraud_ml.ops.dashboard import dashboard_niceness, lowered_priority


@pytest.mark.parametrize("value", [0, 10, 19])
def test_a_niceness_from_0_to_19_is_taken(value):
    assert dashboard_niceness(load_config(overrides=[f"dashboard.niceness={value}"], env={})) == value


@pytest.mark.parametrize("value", ["-1", "20", "ten", "true", "2.5"])
def test_any_other_niceness_is_one_config_error(value):
    # Refused when the override is read (a value of another type) or when the niceness is asked for.
    with pytest.raises(ConfigError, match="dashboard.niceness"):
        dashboard_niceness(load_config(overrides=[f"dashboard.niceness={value}"], env={}))


def test_a_child_started_with_the_lowered_priority_runs_that_much_nicer():
    own = os.nice(0)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.nice(0))"],
        preexec_fn=lowered_priority(5),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(child.stdout) == min(own + 5, 19)
    assert lowered_priority(0) is None  # 0 leaves the child as started


def test_the_dashboard_job_refuses_a_bad_niceness_in_one_line():
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "jobs" / "dashboard.py"), "--set", "dashboard.niceness=30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "dashboard.niceness must be a whole number from 0 to 19, got 30" in done.stderr
    assert "Traceback" not in done.stderr
