"""``make compose-test``: build the compose stack's images, start it, use it, check it, remove it.

1. The tools: a Docker engine (``dockerd``, started here when it is installed but not running) and
   the Compose v2 CLI plugin, built from its Go module when missing (it builds with the engine's
   BuildKit itself, so no buildx plugin is needed).
2. The images. Where the public images of ``docker-compose.yml`` cannot be pulled (no registry),
   stand-ins are built from what is reachable (``docker/local/README.md``): a Debian root file
   system made with ``debootstrap`` and imported, then Python, Kafka, PostgreSQL and MinIO on it.
   (``docker/local/compose.yaml``). Then ``docker compose build`` builds the app and MLflow images.
3. The run, on a project of its own with fresh secrets in a git-ignored env file: start the
   infrastructure, prepare data and train a champion on the stack (its MLflow: PostgreSQL +
   MinIO), start the stream, produce transactions through the stack's Kafka, wait until its stream
   has written exactly that many predictions to its Delta volume, load the champion back through
   the MLflow server, check the registry rows in PostgreSQL and the artifacts in MinIO, then
   ``down -v``. Every host-side request goes to a port published on 127.0.0.1.

A benchmark-like job (minutes to build, minutes to run), never part of ``make test``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.errors import FraudMLError

log = logging.getLogger(__name__)

COMPOSE_VERSION = "v2.29.7"  # the pin; passes `docker compose config -q` on our file
# The MinIO server's Go module (its community releases moved to source only; the proxy serves it).
MINIO_MODULE = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
PLUGINS_DIR = Path.home() / ".docker" / "cli-plugins"
LOCAL = "fraud-ml-local"
DEBIAN_IMAGE = f"{LOCAL}/debian:bookworm"
# The stand-ins: the .env key each replaces, its service in docker/local/compose.yaml and its tag.
STAND_INS = (
    ("PYTHON_IMAGE", "python", f"{LOCAL}/python:3.11-bookworm"),
    ("KAFKA_IMAGE", "kafka", f"{LOCAL}/kafka:4.1.1"),
    ("POSTGRES_IMAGE", "postgres", f"{LOCAL}/postgres:15"),
    ("MINIO_IMAGE", "minio", f"{LOCAL}/minio:source"),
)
STAND_INS_FILE = PROJECT_ROOT / "docker" / "local" / "compose.yaml"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")  # CA certificates added on this host
# Git-ignored: the root FS, the MinIO binary (docker/local/compose.yaml builds the MinIO stand-in from
# this folder, so it is fixed), the Go plugin build, dockerd's log and the run's env file.
WORKDIR = PROJECT_ROOT / "var" / "compose"
INFRA = ("kafka", "kafka-init", "postgres", "minio", "minio-init", "mlflow", "spark-master", "spark-worker")
ONE_SHOT = ("kafka-init", "minio-init", "secrets-check")  # ready once exited 0


class ComposeTestError(FraudMLError):
    """A step of the compose test failed; the message says which and how."""


@dataclass
class ComposeTestOptions:
    """What one ``make compose-test`` does."""

    project: str = "fraud-ml-test"
    transactions: int = 2_000
    training_rows: int = 20_000
    local_images: bool = True  # build the stand-ins (no registry); False: pull the public images
    keep: bool = False  # leave the stack up (and its volumes) for inspection
    timeout_s: float = 900.0  # per wait


def run(cmd: list[str], *, timeout: float | None = None, env: dict | None = None, capture: bool = False, **kw):
    """Run ``cmd`` (logged); raise ComposeTestError with its output's tail when it fails."""
    log.info("$ %s", " ".join(cmd))
    proc = subprocess.run(
        cmd,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        capture_output=capture,
        **kw,
    )
    if proc.returncode != 0:
        tail = ((proc.stderr or "") + (proc.stdout or ""))[-2000:] if capture else "see the output above"
        raise ComposeTestError(f"`{' '.join(cmd[:6])} ...` exited with {proc.returncode}: {tail}")
    return proc


# ----------------------------------------------------------------------------- 1. tools
def ensure_engine(timeout_s: float = 60.0) -> None:
    """A running Docker engine: start the installed ``dockerd`` (as root) when none answers."""
    if shutil.which("docker") is None:
        raise ComposeTestError("no docker CLI: install Debian's docker.io (apt-get install docker.io)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        raise ComposeTestError("no Docker engine answers and dockerd cannot be started here (needs docker.io and root)")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    log.info("starting dockerd (log: %s)", WORKDIR / "dockerd.log")
    subprocess.Popen(
        ["dockerd"], stdout=open(WORKDIR / "dockerd.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + timeout_s
    while subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise ComposeTestError(f"dockerd did not answer within {timeout_s:.0f} s; see {WORKDIR / 'dockerd.log'}")
        time.sleep(1)


def ensure_plugin(name: str, module: str) -> None:
    """The ``docker <name>`` CLI plugin, built with ``go install <module>`` when ``docker <name> version`` fails."""
    if subprocess.run(["docker", name, "version"], capture_output=True).returncode == 0:
        return
    if shutil.which("go") is None:
        raise ComposeTestError(f"`docker {name}` is missing and there is no Go toolchain to build {module}")
    gobin = WORKDIR / "gobin"
    log.info("building docker %s from %s (a few minutes)", name, module)
    run(["go", "install", module], env={"GOBIN": str(gobin), "CGO_ENABLED": "0"})
    PLUGINS_DIR.mkdir(parents=True, exist_ok=True)
    built = gobin / Path(module.split("@")[0]).name
    shutil.copy2(built, PLUGINS_DIR / f"docker-{name}")
    run(["docker", name, "version"])


def ensure_tools() -> None:
    ensure_engine()
    ensure_plugin("compose", f"github.com/docker/compose/v2/cmd@{COMPOSE_VERSION}")


# ----------------------------------------------------------------------------- 2. images
def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def build_debian_base(workdir: Path) -> None:
    """``fraud-ml-local/debian:bookworm``: debootstrap's minbase of bookworm, imported as an image."""
    if image_exists(DEBIAN_IMAGE):
        return
    if shutil.which("debootstrap") is None:
        raise ComposeTestError("debootstrap is missing: apt-get install debootstrap")
    rootfs = workdir / "rootfs"
    if not (rootfs / "etc" / "debian_version").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"])
    sources = "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\n"
    (rootfs / "etc" / "apt" / "sources.list").write_text(
        sources + "deb http://deb.debian.org/debian-security bookworm-security main\n"
    )
    # Trust what the host trusts: a host behind a TLS-inspecting proxy adds its CA here, and builds
    # that download (apt, pip, Maven) fail without it ("PKIX path building failed" from Maven).
    extra = sorted(HOST_CA_DIR.glob("*.crt"))
    if extra:
        target = rootfs / HOST_CA_DIR.relative_to("/")
        target.mkdir(parents=True, exist_ok=True)
        for cert in extra:
            shutil.copy2(cert, target / cert.name)
        run(["chroot", str(rootfs), "update-ca-certificates"])
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run(["docker", "import", "-", DEBIAN_IMAGE], stdin=tar.stdout)
    if tar.wait() != 0:  # a truncated archive would import as an incomplete base image
        run(["docker", "image", "rm", DEBIAN_IMAGE])
        raise ComposeTestError(f"tar of {rootfs} exited with {tar.returncode}; the base image was removed")


def build_minio_binary(workdir: Path) -> None:
    """``var/compose/bin/minio`` from its Go module, and the ``mc ready local`` shim beside it."""
    binary = workdir / "bin" / "minio"
    if not binary.exists():
        if shutil.which("go") is None:
            raise ComposeTestError("building the MinIO stand-in needs the Go toolchain")
        log.info("building MinIO from %s (ten minutes or so on two cores)", MINIO_MODULE)
        run(["go", "install", MINIO_MODULE], env={"GOBIN": str(binary.parent), "CGO_ENABLED": "0"})
    shutil.copy2(PROJECT_ROOT / "docker" / "local" / "minio" / "mc", workdir / "mc")


def build_stand_ins(workdir: Path) -> dict[str, str]:
    """Build the stand-in images that are missing; their tags by the .env key they replace."""
    build_debian_base(workdir)
    build_minio_binary(workdir)
    missing = [service for _, service, tag in STAND_INS if not image_exists(tag)]
    if missing:
        run(["docker", "compose", "-f", str(STAND_INS_FILE), "build", *missing])
    return {key: tag for key, _, tag in STAND_INS}


# ----------------------------------------------------------------------------- 3. the run
def env_file_text(example: str, overrides: dict[str, str]) -> str:
    """``.env.example`` with each ``KEY=`` line in ``overrides`` replaced; every key must exist there."""
    lines, seen = [], set()
    for line in example.splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.lstrip().startswith("#") else None
        if key in overrides:
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    unknown = set(overrides) - seen
    if unknown:
        raise ComposeTestError(f".env.example defines no {sorted(unknown)}")
    return "\n".join(lines) + "\n"


def fresh_secrets() -> dict[str, str]:
    """Random passwords (URL-safe, so they need no percent-encoding in the PostgreSQL URI)."""
    return {"POSTGRES_PASSWORD": secrets.token_urlsafe(18), "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(18)}


class Stack:
    """``docker compose`` on one project and env file."""

    def __init__(self, project: str, env_file: Path) -> None:
        self.base = ["docker", "compose", "-p", project, "--env-file", str(env_file), "-f", "docker-compose.yml"]
        self.env = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and line[0] != "#"
        )

    def __call__(self, *args: str, capture: bool = False, timeout: float | None = None):
        return run([*self.base, *args], capture=capture, timeout=timeout, cwd=PROJECT_ROOT)

    def job(self, *command: str, timeout: float | None = None, capture: bool = False):
        """A one-shot ``jobs`` container (the app image, on the stack's network and /data volume)."""
        return self("run", "--rm", "-T", "jobs", *command, capture=capture, timeout=timeout)

    def states(self) -> dict[str, dict]:
        proc = subprocess.run(
            [*self.base, "ps", "-a", "--format", "json"], capture_output=True, text=True, cwd=PROJECT_ROOT
        )
        if proc.returncode != 0:
            raise ComposeTestError(f"docker compose ps failed: {proc.stderr[-500:]}")
        out = proc.stdout.strip()
        rows = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line]
        return {row["Service"]: row for row in rows}

    def wait_ready(self, services: tuple[str, ...], timeout_s: float) -> None:
        """Until each service is healthy (with a healthcheck), running (without) or exited 0 (one-shot)."""
        deadline, pending = time.monotonic() + timeout_s, set(services)
        while pending:
            states = self.states()
            for name in list(pending):
                row = states.get(name)
                if row is None:
                    continue
                state, health, code = row.get("State"), row.get("Health") or "", row.get("ExitCode", 0)
                if state == "exited" and code not in (0, None):
                    logs = self("logs", "--tail", "40", name, capture=True).stdout
                    raise ComposeTestError(f"{name} exited with {code}:\n{logs}")
                done = state == "exited" and code == 0
                if done or (state == "running" and health in ("", "healthy") and name not in ONE_SHOT):
                    log.info("%s: %s %s", name, state, health)
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise ComposeTestError(f"not ready after {timeout_s:.0f} s: {sorted(pending)}")
            if pending:
                time.sleep(5)


# The stream's tables, read inside a jobs container (the Delta volume is not on the host).
COUNT_ROWS = """
import json
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
out = {}
for name in ("predictions", "quarantine"):
    try:
        out[name] = DeltaTable(f"/data/delta/{name}").count()
    except TableNotFoundError:
        out[name] = 0
print(json.dumps(out))
"""


def delta_counts(stack: Stack) -> dict[str, int]:
    out = stack.job("python", "-c", COUNT_ROWS, capture=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def champion_check(stack: Stack, cfg) -> dict:
    """The champion loaded back through the stack's MLflow server (artifacts proxied from MinIO)."""
    import mlflow
    import pandas as pd

    from fraud_ml.training.data import SyntheticCreditCardGenerator

    # The server offers presigned MinIO URLs for downloads (MLflow 3's multipart download); they name
    # minio:9000, which only the stack's network resolves. A client on the host streams through
    # the server instead (docs/cluster.md).
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = "false"
    uri = f"http://127.0.0.1:{stack.env['MLFLOW_HOST_PORT']}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    name, alias = cfg.get("mlflow.model_name"), cfg.get("mlflow.alias")
    version = client.get_model_version_by_alias(name, alias)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    rows = SyntheticCreditCardGenerator(n_rows=50, seed=7).generate().drop(columns=["Class"])
    scored = pd.DataFrame(model.predict(rows))
    return {"model": name, "version": version.version, "source": version.source, "scored_rows": len(scored)}


def run_compose_test(cfg, options: ComposeTestOptions) -> dict:
    """Build, start, use, check and remove the stack; the figures of the run."""
    workdir = WORKDIR
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    ensure_tools()
    timings["tools_s"] = time.monotonic() - t0
    t = time.monotonic()
    images = build_stand_ins(workdir) if options.local_images else {}
    timings["stand_in_images_s"] = time.monotonic() - t
    env_file = workdir / "test.env"
    example = (PROJECT_ROOT / ".env.example").read_text()
    env_file.write_text(env_file_text(example, {**images, **fresh_secrets()}))
    env_file.chmod(0o600)
    stack = Stack(options.project, env_file)
    stack("config", "-q")
    t = time.monotonic()
    stack("build")
    timings["compose_build_s"] = time.monotonic() - t
    result: dict = {"mode": "compose-test", "images": images, "timings": timings}
    try:
        t = time.monotonic()
        stack("up", "-d", *INFRA)
        stack.wait_ready(INFRA, options.timeout_s)
        timings["infrastructure_up_s"] = time.monotonic() - t
        t = time.monotonic()
        stack.job("python", "jobs/prepare_data.py", "--conf", "conf/cluster.yaml", "--rows", str(options.training_rows))
        stack.job(
            "python", "jobs/train.py", "--conf", "conf/cluster.yaml", "--no-zoo", "--no-tune",
            "--set", "train.threshold.cv_folds=0",
        )  # fmt: skip
        timings["prepare_and_train_s"] = time.monotonic() - t
        t = time.monotonic()
        stack("up", "-d")  # the rest of the stack: stream, alerts, dashboard
        stack.wait_ready(("stream", "alerts", "dashboard"), options.timeout_s)
        timings["stream_up_s"] = time.monotonic() - t
        before = delta_counts(stack)
        t = time.monotonic()
        stack.job(
            "python", "jobs/produce.py", "--conf", "conf/cluster.yaml",
            "--transactions", str(options.transactions), "--rate", "0", "--quiet",
        )  # fmt: skip
        expected = before["predictions"] + options.transactions
        deadline = time.monotonic() + options.timeout_s
        while (counts := delta_counts(stack))["predictions"] < expected and time.monotonic() < deadline:
            time.sleep(10)
        timings["produce_to_delta_s"] = time.monotonic() - t
        time.sleep(20)  # a late duplicate write would show now
        counts = delta_counts(stack)
        result["produced"] = options.transactions
        result["predictions"] = counts["predictions"] - before["predictions"]
        result["quarantine"] = counts["quarantine"] - before["quarantine"]
        result["champion"] = champion_check(stack, cfg)
        user, db = stack.env["POSTGRES_USER"], stack.env["POSTGRES_DB"]
        query = "select count(*) from model_versions"
        psql = stack("exec", "-T", "postgres", "psql", "-U", user, "-d", db, "-tAc", query, capture=True)
        result["postgres_model_versions"] = int(psql.stdout.strip())
        result["minio_objects"] = int(
            stack("exec", "-T", "mlflow", "python", "-c", MINIO_COUNT, capture=True).stdout.strip().splitlines()[-1]
        )
        result["ok"] = (
            result["predictions"] == options.transactions
            and result["quarantine"] == 0
            and result["postgres_model_versions"] >= 1
            and result["minio_objects"] >= 1
            and result["champion"]["scored_rows"] == 50
        )
    finally:
        result["states"] = {k: f"{v.get('State')} {v.get('Health') or ''}".strip() for k, v in stack.states().items()}
        if not options.keep:
            stack("down", "-v", "--remove-orphans")
    timings["total_s"] = time.monotonic() - t0
    return result


MINIO_COUNT = """
import os, boto3
s3 = boto3.client("s3", endpoint_url="http://minio:9000", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
bucket = os.environ["MLFLOW_ARTIFACTS_DESTINATION"].removeprefix("s3://").split("/")[0]
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
print(sum(len(p.get("Contents", [])) for p in pages))
"""
