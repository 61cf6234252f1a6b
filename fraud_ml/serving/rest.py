"""REST scoring: MLflow's own scoring server (``/ping``, ``/invocations``) on the verified champion.

``make serve`` resolves ``models:/<mlflow.model_name>@<mlflow.alias>`` in the configured registry,
downloads that version and checks it was logged from code (fraud_ml.io.mlflow.download_verified:
nothing is unpickled), then runs MLflow's scoring server (uvicorn, ``mlflow.pyfunc.scoring_server``)
on it, bound to ``serve.host`` (127.0.0.1 unless configured). The version is pinned at start:
restart the server to pick up a new champion.

The server answers ``POST /invocations`` with ``{"predictions": [{"probability", "raw_score",
"decision", "reasons"}, ...]}``; a payload it cannot score gets a 4xx with ``error_code`` and
``message``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError

log = logging.getLogger(__name__)

APP = "mlflow.pyfunc.scoring_server.app:app"


@dataclass(frozen=True)
class ServeSettings:
    """Where and how the scoring server listens (``serve.*``)."""

    host: str
    port: int
    workers: int
    request_timeout_s: int
    start_timeout_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> "ServeSettings":
        settings = cls(
            host=str(cfg.get("serve.host")),
            port=int(cfg.get("serve.port")),
            workers=int(cfg.get("serve.workers")),
            request_timeout_s=int(cfg.get("serve.request_timeout_seconds")),
            start_timeout_s=float(cfg.get("serve.start_timeout_seconds")),
        )
        if not 0 < settings.port < 65536:
            raise ConfigError(f"serve.port must be a TCP port (1-65535), got {settings.port}")
        if settings.workers < 1:
            raise ConfigError(f"serve.workers must be at least 1, got {settings.workers}")
        return settings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def server_command(model_dir: str, settings: ServeSettings) -> tuple[list[str], dict[str, str]]:
    """argv and environment of MLflow's scoring server on a local model folder (as ``mlflow models
    serve --env-manager local`` builds them), run with this interpreter's uvicorn."""
    from mlflow.pyfunc import scoring_server

    _, env = scoring_server.get_cmd(
        model_dir, settings.port, settings.host, settings.request_timeout_s, settings.workers
    )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        APP,
    ]
    return argv, env


def champion_dir(cfg: Config) -> tuple[str, str]:
    """(version, local folder) of the champion behind the alias, downloaded and verified."""
    from fraud_ml.io.mlflow import download_verified, resolve_alias, setup_mlflow

    setup_mlflow(cfg)
    version, uri = resolve_alias(cfg)
    return version, download_verified(uri)


def ping(url: str) -> bool:
    """Whether a scoring server answers 200 on ``url``/ping."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_serving(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    """Return once ``url``/ping answers 200; RuntimeError if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the scoring server exited with {proc.returncode} before answering on {url}")
        if ping(url):
            return
        time.sleep(0.25)
    raise RuntimeError(f"the scoring server did not answer on {url}/ping within {timeout_s:g} s")


class RestServer:
    """The scoring server as a child process: ``with RestServer(cfg) as server: server.url``."""

    def __init__(self, cfg: Config, log_path: Path | None = None) -> None:
        self.cfg, self.log_path = cfg, log_path
        self.settings = ServeSettings.from_config(cfg)
        self.proc: subprocess.Popen | None = None
        self.version: str | None = None
        self._out = None

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self) -> "RestServer":
        self.version, model_dir = champion_dir(self.cfg)
        argv, env = server_command(model_dir, self.settings)
        self._out = open(self.log_path, "ab") if self.log_path else None  # closed in stop()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._out, stderr=subprocess.STDOUT if self._out else None)
        try:
            wait_until_serving(self.url, self.proc, self.settings.start_timeout_s)
        except RuntimeError:
            self.stop()
            raise
        log.info(
            "serving %s version %s on %s (POST /invocations, pid %d)",
            self.cfg.get("mlflow.model_name"),
            self.version,
            self.url,
            self.proc.pid,
        )
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> "RestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(cfg: Config) -> int:
    """Run the scoring server in the foreground until it exits (Ctrl-C / SIGTERM stop it)."""
    server = RestServer(cfg).start()
    # SIGTERM to this job stops the server too (it would otherwise outlive its parent)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.proc.terminate())
    try:
        code = server.proc.wait()
    except KeyboardInterrupt:
        server.stop()
        code = server.proc.returncode
    return 0 if code == -signal.SIGTERM else code  # stopped as asked; not exit status 241
