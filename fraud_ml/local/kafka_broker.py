"""A real single-node Apache Kafka broker (KRaft, combined broker+controller).

Runs ``kafka.Kafka`` from the Maven-resolved ``kafka_2.13`` jars in its own process
session, with data and logs under a git-ignored folder. ``start`` formats the
storage on first use (``kafka.tools.StorageTool format``), launches the broker and
waits until it answers metadata requests; ``stop`` terminates it.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException

from fraud_ml.config import Config
from fraud_ml.errors import KafkaUnavailableError
from fraud_ml.io.kafka import admin_client
from fraud_ml.local.jars import kafka_classpath

log = logging.getLogger(__name__)

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class LocalKafkaBroker:
    """Start, wait for and stop a KRaft broker on ``host:port``."""

    jars_dir: Path
    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    heap: str = "512m"
    start_timeout_s: float = 90.0
    # The broker this object started: until it has exec'd java, /proc shows the forking Python.
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_config(cls, cfg: Config) -> "LocalKafkaBroker":
        host, _, port = cfg.get("kafka.bootstrap_servers").split(",")[0].rpartition(":")
        return cls(
            jars_dir=Path(cfg.get("kafka.local.jars_dir")),
            data_dir=Path(cfg.get("kafka.local.data_dir")),
            port=int(port),
            controller_port=cfg.get("kafka.local.controller_port"),
            host=host or "127.0.0.1",
            heap=cfg.get("kafka.local.heap"),
            start_timeout_s=float(cfg.get("kafka.local.start_timeout_s")),
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def pid(self) -> int | None:
        """PID of a broker started from this data dir that is still alive.

        A pid file can outlive its broker (a reboot, a kill -9) and its number be reused:
        the process counts only if its command line is this broker's (``kafka.Kafka`` with
        this data dir's server.properties), so stop() never signals an unrelated process.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_broker_process(pid, self.data_dir / "server.properties") else None

    def write_config(self) -> Path:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str((self.data_dir / "data").resolve()),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": "10485760",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file.resolve()))
        return path

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={(self.data_dir / 'log4j2.properties').resolve()}",
            "-cp",
            kafka_classpath(self.jars_dir),
            *args,
        ]

    def format_storage(self, props: Path) -> None:
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={new_cluster_id()}",
                "-c",
                str(props),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise KafkaUnavailableError(
                f"formatting Kafka storage failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
            )

    def start(self, wait: bool = True) -> "LocalKafkaBroker":
        """Start the broker (no-op if ours is already running)."""
        if self.pid() is not None:
            log.info("Kafka already running (pid %s) on %s", self.pid(), self.bootstrap_servers)
            return self.wait_until_ready() if wait else self
        if port_open(self.host, self.port):
            raise KafkaUnavailableError(
                f"port {self.port} on {self.host} is taken by another process; "
                "stop it or set kafka.bootstrap_servers to another port"
            )
        props = self.write_config()
        self.format_storage(props)
        out = open(self.data_dir / "logs" / "kafka.out", "ab")
        proc = subprocess.Popen(
            self._java("kafka.Kafka", str(props.resolve())),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid_file.write_text(str(proc.pid))
        self._process = proc
        log.info("started Kafka (pid %d) on %s, data in %s", proc.pid, self.bootstrap_servers, self.data_dir)
        return self.wait_until_ready() if wait else self

    def wait_until_ready(self, timeout: float | None = None) -> "LocalKafkaBroker":
        """Block until the broker serves metadata; raise with its log tail if it dies or times out."""
        deadline = time.monotonic() + (timeout or self.start_timeout_s)
        admin = admin_client(self.bootstrap_servers)
        while time.monotonic() < deadline:
            exited = self._process.poll() is not None if self._process is not None else self.pid() is None
            if exited and not port_open(self.host, self.port):
                raise KafkaUnavailableError(f"Kafka exited during start-up: {self._log_tail()}")
            try:
                md = admin.list_topics(timeout=2)
                if md.brokers:
                    return self
            except KafkaException:
                pass
            time.sleep(0.5)
        raise KafkaUnavailableError(
            f"Kafka not ready on {self.bootstrap_servers} after {timeout or self.start_timeout_s:.0f}s: "
            f"{self._log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker's process group, then SIGKILL after ``timeout``."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
            _reap(pid)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        log.info("stopped Kafka (pid %d)", pid)

    def kill(self) -> None:
        """SIGKILL the broker's process group at once (what a crash does; the fault tests use it)."""
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            _reap(pid)
            self.pid_file.unlink(missing_ok=True)
            log.info("killed Kafka (pid %d)", pid)

    def _log_tail(self, lines: int = 5) -> str:
        for path in (self.data_dir / "logs" / "kafka.out", self.log_file):
            if path.exists():
                tail = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
                if tail:
                    return " | ".join(tail)[-600:]
        return "no log output"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 (may start with "-": pass it as --cluster-id=...)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def is_broker_process(pid: int, properties: Path) -> bool:
    """Whether ``pid`` runs ``kafka.Kafka`` with ``properties`` (read from /proc; False when it is gone)."""
    if not Path("/proc/self/cmdline").exists():  # no procfs (not Linux): the pid alone must do
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return b"kafka.Kafka" in args and str(properties.resolve()).encode() in args


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
