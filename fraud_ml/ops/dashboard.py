"""Running the dashboard: the ``streamlit run`` command of ``make dashboard`` and the demo, and a
server on a free loopback port for the soak and the browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fraud_ml.config import PROJECT_ROOT, Config
from fraud_ml.errors import ConfigError
from fraud_ml.local.browser import stop_process, wait_http
from fraud_ml.local.kafka_broker import free_port


def dashboard_niceness(cfg: Config) -> int:
    """``dashboard.niceness`` checked (a whole number 0-19): one ConfigError line otherwise."""
    value = cfg.get("dashboard.niceness")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 19:
        raise ConfigError(f"dashboard.niceness must be a whole number from 0 to 19, got {value!r}")
    return value


def lowered_priority(niceness: int):
    """A ``preexec_fn`` that adds ``niceness`` to the child's before it execs (``None`` for 0)."""
    if not niceness:
        return None
    return lambda: os.nice(niceness)


def dashboard_command(cfg: Config, config_args: list[str]) -> list[str]:
    """``streamlit run dashboard/app.py`` bound to ``dashboard.address`` and ``dashboard.port``."""
    return streamlit_command(str(cfg.get("dashboard.address")), int(cfg.get("dashboard.port")), config_args)


def streamlit_command(address: str, port: int, config_args: list[str], flags: tuple[str, ...] = ()) -> list[str]:
    """``streamlit run dashboard/app.py`` on ``address:port`` with extra Streamlit ``flags``; ``config_args``
    (``--conf`` / ``--set``) go to the app."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "dashboard" / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        *flags,
        "--",
        *config_args,
    ]


class StreamlitServer:
    """``streamlit run dashboard/app.py`` on a free port, as a context manager."""

    def __init__(
        self, env: dict[str, str], log_path: Path, app_args: list[str] | None = None, niceness: int = 0
    ) -> None:
        self.port = free_port()
        self.niceness = niceness
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = app_args or []
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "StreamlitServer":
        self._log = open(self.log_path, "wb")
        cmd = streamlit_command("127.0.0.1", self.port, self.args, flags=("--server.fileWatcherType", "none"))
        self.proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=lowered_priority(self.niceness),
        )
        wait_http(f"{self.url}_stcore/health", timeout=60, proc=self.proc)
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.proc)
        self._log.close()
