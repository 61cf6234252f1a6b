"""Running the dashboard: the ``streamlit run`` command of ``make dashboard`` and the demo, and a
server on a free loopback port for the soak and the browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fraud_ml.config import PROJECT_ROOT, Config
from fraud_ml.local.browser import stop_process, wait_http
from fraud_ml.local.kafka_broker import free_port


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

    def __init__(self, env: dict[str, str], log_path: Path, app_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = app_args or []
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "StreamlitServer":
        self._log = open(self.log_path, "wb")
        cmd = streamlit_command("127.0.0.1", self.port, self.args, flags=("--server.fileWatcherType", "none"))
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}_stcore/health", timeout=60, proc=self.proc)
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.proc)
        self._log.close()
