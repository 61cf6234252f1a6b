"""Static checks of the deployment stack: docker-compose.yml, .env.example, docker/, conf/cluster.yaml.

No Docker engine is needed (nor available in CI): the compose file is parsed with
PyYAML, interpolated with .env.example the way `docker compose` does, and checked
for the things that only fail at `docker compose up` time otherwise: missing
services or dependencies, healthchecks, the one network, named volumes, variables
missing from .env.example, secret literals, and host names / ports that disagree
with conf/cluster.yaml. `docker compose config` runs too when a compose CLI exists.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from fraud_ml.config import PROJECT_ROOT, load_config

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
CLUSTER_CONF = PROJECT_ROOT / "conf" / "cluster.yaml"
LOCAL_CONF = PROJECT_ROOT / "conf" / "local.yaml"

REQUIRED_SERVICES = (
    "kafka",
    "spark-master",
    "spark-worker",
    "mlflow",
    "postgres",
    "minio",
    "stream",
    "alerts",
    "dashboard",
)
SHARED_VOLUME = "fraud-data"  # Delta tables + checkpoints
SPARK_PROCESSES = ("spark-worker", "stream", "alerts", "jobs")  # run Spark executors or drivers
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE|JAAS", re.I)
# ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?msg}, ${VAR?msg}; $$ escapes a literal $ for the container.
_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_BARE_REF = re.compile(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


# ----------------------------------------------------------------------------- helpers
def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}: line without '=': {line!r}"
        key, value = line.split("=", 1)
        env[key.strip()] = value.strip().strip("'\"")
    return env


def interpolate(node, env: dict[str, str]):
    """Substitute variables like `docker compose` does (enough for the forms used here)."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise AssertionError(f"required variable {name} is not set ({arg})")
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value if value is not None else ""

    return _REF.sub(sub, node).replace("$$", "$")


def compose_refs(text: str) -> set[str]:
    """Variables the compose file reads from the environment / .env (not $$-escaped ones)."""
    return {m.group(1) for m in _REF.finditer(text)} | {m.group(1) for m in _BARE_REF.finditer(text)}


def as_list(command) -> list[str]:
    if command is None:
        return []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def arg_after(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def mounts(service: dict) -> list[dict]:
    """Volumes of a service in long form: {type, source, target, read_only}."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append(
                {
                    "type": vol.get("type", "volume"),
                    "source": vol.get("source"),
                    "target": vol["target"],
                    "read_only": bool(vol.get("read_only", False)),
                }
            )
            continue
        parts = vol.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        out.append(
            {
                "type": kind,
                "source": source,
                "target": target,
                "read_only": len(parts) > 2 and "ro" in parts[2].split(","),
            }
        )
    return out


def depends(service: dict) -> dict[str, str]:
    dep = service.get("depends_on") or {}
    if isinstance(dep, list):
        return {name: "service_started" for name in dep}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in dep.items()}


def is_one_shot(service: dict) -> bool:
    return str(service.get("restart", "no")) == "no"


def key_types(node, prefix: str = "") -> dict[str, str]:
    """Every dotted key of a config mapping with its value type (free-form maps: the map only)."""
    out = {}
    for key, value in node.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full not in ("spark.conf", "stream.source_options"):
            out.update(key_types(value, full + "."))
        else:
            out[full] = type(value).__name__
    return out


def memory_mb(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kmgt]?)b?", str(value).strip().lower())
    assert m, f"not a Spark memory size: {value!r}"
    return int(m.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024, "": 1 / (1024 * 1024)}[m.group(2)]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def compose_text() -> str:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    assert ENV_EXAMPLE.is_file(), ".env.example is missing"
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def raw(compose_text) -> dict:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services in docker-compose.yml"
    return data


@pytest.fixture(scope="module")
def compose(raw, env_example) -> dict:
    """The compose model after interpolation with .env.example (as `docker compose --env-file` would)."""
    return interpolate(raw, env_example)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def cluster_cfg():
    """conf/cluster.yaml as the jobs load it (no FRAUD_ML__* overrides from this process)."""
    return load_config(CLUSTER_CONF, env={})


# ----------------------------------------------------------------------------- structure
def test_required_services_exist(services):
    missing = [s for s in REQUIRED_SERVICES if s not in services]
    assert not missing, f"docker-compose.yml lacks services: {missing}"


def test_every_service_has_image_or_build(services):
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"{name}: neither image nor build"


def test_depends_on_targets_exist_and_conditions_hold(services):
    for name, svc in services.items():
        for target, condition in depends(svc).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            assert target != name
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target} healthy, but it has no healthcheck"
                )
            elif condition == "service_completed_successfully":
                assert is_one_shot(services[target]), f"{name} waits for {target} to complete, but it restarts"
            else:
                assert condition == "service_started", f"{name}: unknown depends_on condition {condition!r}"


def test_depends_on_has_no_cycle(services):
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "active", f"dependency cycle: {' -> '.join(path + [node])}"
        state[node] = "active"
        for target in depends(services[node]):
            visit(target, path + [node])
        state[node] = "done"

    for name in services:
        visit(name, [])


def test_long_running_services_have_healthchecks(services):
    for name, svc in services.items():
        if is_one_shot(svc):
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} runs continuously but has no healthcheck"
        assert check.get("interval") and check.get("retries"), f"{name}: healthcheck needs interval and retries"
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name}: no restart policy"
    for name in REQUIRED_SERVICES:
        assert not is_one_shot(services[name]), f"{name} must be a long-running service"


def test_one_network_connects_every_service(compose, services):
    networks = compose.get("networks") or {}
    assert len(networks) == 1, f"expected exactly one network, found {list(networks)}"
    (net,) = networks
    for name, svc in services.items():
        assert svc.get("network_mode") is None, f"{name}: network_mode would leave {net}"
        svc_nets = svc.get("networks")
        svc_nets = list(svc_nets) if isinstance(svc_nets, (list, dict)) else []
        assert svc_nets == [net], f"{name} is on {svc_nets}, expected only {net}"


def test_named_volumes_declared_and_used(compose, services):
    declared = set((compose.get("volumes") or {}).keys())
    used = set()
    for name, svc in services.items():
        for m in mounts(svc):
            if m["type"] == "volume":
                assert m["source"], f"{name}: anonymous volume at {m['target']}; use a named volume"
                assert m["source"] in declared, f"{name} uses volume {m['source']!r} not declared at top level"
                used.add(m["source"])
            elif m["type"] == "bind":
                src = (PROJECT_ROOT / m["source"]).resolve()
                assert src.exists(), f"{name} bind-mounts {m['source']}, which does not exist"
                assert m["read_only"], f"{name}: bind mount {m['source']} should be read-only"
    assert declared == used, f"declared but unused volumes: {declared - used}"
    for volume in ("kafka-data", "postgres-data", "minio-data", SHARED_VOLUME):
        assert volume in declared, f"named volume {volume} is missing"


def test_stateful_services_keep_data_on_their_volumes(services):
    def target(service: str, volume: str) -> str:
        found = [m["target"] for m in mounts(services[service]) if m["source"] == volume]
        assert found, f"{service} does not mount {volume}"
        return found[0]

    assert target("kafka", "kafka-data") == env_of(services["kafka"])["KAFKA_LOG_DIRS"]
    assert target("postgres", "postgres-data") == "/var/lib/postgresql/data"
    minio_cmd = as_list(services["minio"]["command"])
    assert target("minio", "minio-data") == minio_cmd[minio_cmd.index("server") + 1]


# ----------------------------------------------------------------------------- variables and secrets
def test_every_variable_is_defined_in_env_example(compose_text, env_example):
    refs = compose_refs(compose_text)
    missing = sorted(refs - set(env_example))
    assert not missing, f"variables used in docker-compose.yml but not defined in .env.example: {missing}"
    unused = sorted(set(env_example) - refs)
    assert not unused, f".env.example defines variables docker-compose.yml never uses: {unused}"


def test_secrets_come_only_from_the_environment(raw, compose_text, env_example):
    for name, svc in raw["services"].items():
        for key, value in env_of(svc).items():
            if SECRET_NAME.search(key):
                assert _REF.findall(value) and _REF.sub("", value) == "", (
                    f"{name}: {key}={value!r} must be only a ${{VAR:?...}} reference to .env"
                )
    # Credentials inside URIs (scheme://user:password@host) must be references too.
    for m in re.finditer(r"://([^/\s:@]+):([^@\s]+)@", compose_text):
        assert _REF.fullmatch(m.group(2)), f"literal password in a URI: {m.group(0)!r}"
    for key, value in env_example.items():
        if SECRET_NAME.search(key) and value:
            assert value.startswith("change-me"), f".env.example: {key} must be a change-me placeholder"
            assert value not in compose_text, f"the value of {key} is written into docker-compose.yml"
            assert value not in CLUSTER_CONF.read_text(encoding="utf-8"), f"the value of {key} is in conf/cluster.yaml"
    # A password variable without `:?` would silently start postgres/minio with an empty secret.
    for var in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        uses = [m for m in _REF.finditer(compose_text) if m.group(1) == var]
        assert uses and all(m.group(2) == ":?" for m in uses), f"{var} must always be required (${{{var}:?...}})"


def test_compose_refuses_to_start_without_secrets(raw, env_example):
    env = {k: v for k, v in env_example.items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolate(raw, env)


def test_published_ports_bind_loopback_unless_configured(raw, env_example):
    for name, svc in raw["services"].items():
        for port in svc.get("ports") or []:
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name} publishes {port} on every interface"
    env = {k: v for k, v in env_example.items() if k != "BIND_ADDRESS"}
    published = [p for svc in interpolate(raw, env)["services"].values() for p in svc.get("ports") or []]
    assert published and all(p.startswith("127.0.0.1:") for p in published), published


@pytest.mark.parametrize(
    "postgres, minio, ok",
    [
        ("change-me-postgres-password", "a-real-minio-secret", False),
        ("a-real-postgres-secret", "change-me-minio-password", False),
        ("a-real-postgres-secret", "short", False),
        ("a-real-postgres-secret", "a-real-minio-secret", True),
    ],
)
def test_the_stack_refuses_placeholder_secrets(raw, postgres, minio, ok):
    check = raw["services"]["secrets-check"]
    script = PROJECT_ROOT / "docker" / "init" / "check-secrets.sh"
    assert f"./{script.relative_to(PROJECT_ROOT)}:/init/check-secrets.sh:ro" in check["volumes"]
    for name in ("postgres", "minio"):  # every service holding a secret waits for the check
        assert raw["services"][name]["depends_on"]["secrets-check"] == {"condition": "service_completed_successfully"}
    proc = subprocess.run(
        ["/bin/sh", str(script)],
        env={"POSTGRES_PASSWORD": postgres, "MINIO_ROOT_PASSWORD": minio},
        capture_output=True,
        text=True,
    )
    assert (proc.returncode == 0) == ok, proc.stderr
    if not ok:
        assert proc.stderr.startswith("error: ")


def test_dotenv_is_git_ignored():
    proc = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT)
    assert proc.returncode == 0, ".env (the real secrets) is not in .gitignore"


# ----------------------------------------------------------------------------- consistency with conf/cluster.yaml
def test_cluster_yaml_is_a_small_overlay_of_local_yaml():
    base = yaml.safe_load(LOCAL_CONF.read_text(encoding="utf-8"))
    overlay = yaml.safe_load(CLUSTER_CONF.read_text(encoding="utf-8"))
    assert overlay.pop("extends") == "local.yaml"
    local, cluster = key_types(base), key_types(overlay)
    assert sorted(set(cluster) - set(local)) == [], "conf/cluster.yaml has keys conf/local.yaml does not"
    wrong = {k: (local[k], cluster[k]) for k in cluster if local[k] != cluster[k]}
    assert not wrong, f"value types differ (local, cluster): {wrong}"

    def value(node, key):
        for part in key.split("."):
            node = node[part]
        return node

    same = [
        k for k in cluster if k not in ("spark.conf", "stream.source_options") and value(base, k) == value(overlay, k)
    ]
    assert not same, f"conf/cluster.yaml repeats values of conf/local.yaml (keep only what differs): {same}"


def test_kafka_bootstrap_matches_internal_listener(services, cluster_cfg):
    host, port = cluster_cfg.get("kafka.bootstrap_servers").split(":")
    assert host in services, f"kafka.bootstrap_servers host {host!r} is not a service"
    env = env_of(services[host])
    advertised = dict(reversed(entry.split("://", 1)) for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert f"{host}:{port}" in advertised, f"{host}:{port} is not an advertised listener: {advertised}"
    listener = advertised[f"{host}:{port}"]
    listeners = dict(entry.split("://", 1) for entry in env["KAFKA_LISTENERS"].split(","))
    assert listeners[listener].endswith(f":{port}"), f"listener {listener} does not bind port {port}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == listener
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols[listener] == cluster_cfg.get("kafka.security.protocol")
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert (
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        == f"{env['KAFKA_NODE_ID']}@{host}:{listeners[controller].rsplit(':', 1)[1]}"
    )
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    # Host clients: the advertised HOST listener must be the published port.
    published = {
        str(p["published"]) if isinstance(p, dict) else p.rsplit(":", 2)[-2]: p for p in services[host].get("ports", [])
    }
    host_listener = [a for a, name in advertised.items() if a.startswith("localhost:")]
    assert host_listener and host_listener[0].split(":")[1] in published


def test_kafka_image_matches_the_pom(services):
    pom = (PROJECT_ROOT / "spark" / "pom.xml").read_text(encoding="utf-8")
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert services["kafka"]["image"] == f"apache/kafka:{version}"
    assert services["kafka-init"]["image"] == services["kafka"]["image"]


def test_topic_init_matches_config(services, cluster_cfg):
    env = env_of(services["kafka-init"])
    assert env["KAFKA_BOOTSTRAP"] == cluster_cfg.get("kafka.bootstrap_servers")
    assert env["KAFKA_TOPIC"] == cluster_cfg.get("kafka.topic")
    assert int(env["KAFKA_PARTITIONS"]) == cluster_cfg.get("kafka.partitions")
    assert int(env["KAFKA_REPLICATION_FACTOR"]) == cluster_cfg.get("kafka.replication_factor")
    assert env_of(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for svc in ("stream", "alerts", "jobs"):
        assert depends(services[svc]).get("kafka-init") == "service_completed_successfully"


def test_mlflow_uri_matches_the_server(services, cluster_cfg, env_example):
    uri = urlsplit(cluster_cfg.get("mlflow.tracking_uri"))
    assert uri.scheme == "http" and uri.hostname in services, f"tracking_uri {uri.geturl()} is not a service"
    svc = services[uri.hostname]
    argv = as_list(svc["command"])
    assert arg_after(argv, "--host") == "0.0.0.0"
    assert int(arg_after(argv, "--port")) == uri.port
    assert "--serve-artifacts" in argv, "clients rely on the server's artifact proxy (no S3 credentials)"
    assert f"localhost:{uri.port}/health" in " ".join(as_list(svc["healthcheck"]["test"]))
    allowed = env_of(svc)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert f"{uri.hostname}:{uri.port}" in allowed, "MLflow 3 rejects Host headers it does not allow"
    assert cluster_cfg.get("mlflow.artifact_location") == "", "experiments must use the server's proxied root"
    # Backend store: the postgres service and the credentials it was created with.
    env = env_of(svc)
    backend = urlsplit(env["MLFLOW_BACKEND_STORE_URI"])
    pg = env_of(services["postgres"])
    assert backend.scheme.startswith("postgresql") and backend.hostname == "postgres" and backend.port == 5432
    assert (backend.username, backend.password, backend.path.lstrip("/")) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    # Artifact store: MinIO's API port and the bucket minio-init creates.
    endpoint = urlsplit(env["MLFLOW_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio"
    minio_argv = as_list(services["minio"]["command"])
    assert arg_after(minio_argv, "--address") == f":{endpoint.port}"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == f"s3://{env_example['MLFLOW_BUCKET']}/artifacts"
    assert env_of(services["minio-init"])["MLFLOW_BUCKET"] == env_example["MLFLOW_BUCKET"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        env_of(services["minio"])["MINIO_ROOT_USER"],
        env_of(services["minio"])["MINIO_ROOT_PASSWORD"],
    )


def test_spark_master_url_matches_the_cluster(services, cluster_cfg):
    url = urlsplit(cluster_cfg.get("spark.master"))
    assert url.scheme == "spark" and url.hostname in services
    master = as_list(services[url.hostname]["command"])
    assert "org.apache.spark.deploy.master.Master" in master
    assert arg_after(master, "--host") == url.hostname and int(arg_after(master, "--port")) == url.port
    webui = arg_after(master, "--webui-port")
    assert f"localhost:{webui}/" in " ".join(as_list(services[url.hostname]["healthcheck"]["test"]))
    worker = as_list(services["spark-worker"]["command"])
    assert "org.apache.spark.deploy.worker.Worker" in worker
    assert cluster_cfg.get("spark.master") in worker
    assert depends(services["spark-worker"]).get(url.hostname) == "service_healthy"


def test_executors_fit_in_a_worker(services, cluster_cfg):
    worker = as_list(services["spark-worker"]["command"])
    cores, memory = int(arg_after(worker, "--cores")), arg_after(worker, "--memory")
    assert cores >= 1
    executor = (cluster_cfg.get("spark.conf") or {}).get("spark.executor.memory", "1g")
    assert memory_mb(executor) <= memory_mb(memory), f"spark.executor.memory {executor} > worker memory {memory}"


def test_shared_storage_for_delta_and_checkpoints(services, cluster_cfg):
    paths = {
        "delta.root": cluster_cfg.get("delta.root"),
        "stream.checkpoint_dir": cluster_cfg.get("stream.checkpoint_dir"),
        "alerts.checkpoint_dir": cluster_cfg.get("alerts.checkpoint_dir"),
    }
    for key, path in paths.items():
        assert "://" not in path, f"{key}={path}: the app image ships no s3a/hadoop-aws jars; use the shared volume"
        assert PurePosixPath(path).is_absolute(), f"{key} must be absolute to mean the same path in every container"
    for name in [*SPARK_PROCESSES, "dashboard"]:
        shared = [m for m in mounts(services[name]) if m["source"] == SHARED_VOLUME]
        assert len(shared) == 1, f"{name} does not mount the shared volume {SHARED_VOLUME}"
        for key, path in paths.items():
            assert PurePosixPath(path).is_relative_to(shared[0]["target"]), (
                f"{key}={path} is not on {name}'s {SHARED_VOLUME}"
            )
        assert shared[0]["read_only"] == (name == "dashboard"), (
            f"{name}: only the dashboard mounts {SHARED_VOLUME} read-only"
        )


def test_app_services_run_the_jobs_with_cluster_conf(services, cluster_cfg):
    image = services["stream"]["image"]
    for name in ("spark-master", "spark-worker", "stream", "alerts", "dashboard", "jobs"):
        svc = services[name]
        assert svc["image"] == image and svc["build"]["dockerfile"] == "docker/app.Dockerfile", (
            f"{name}: not the app image"
        )
        assert env_of(svc).get("FRAUD_ML_CONF") == "/app/conf/cluster.yaml"
    for name in ("stream", "alerts", "jobs"):
        argv = as_list(services[name]["command"])
        assert argv[0] == "python" and argv[1].startswith("jobs/")
        assert arg_after(argv, "--conf") == "conf/cluster.yaml"
    assert as_list(services["stream"]["command"])[1] == "jobs/stream_score.py"
    assert as_list(services["alerts"]["command"])[1] == "jobs/alerts.py"
    dash = as_list(services["dashboard"]["command"])
    assert dash[:2] == ["streamlit", "run"] and arg_after(dash, "--conf") == "conf/cluster.yaml"
    port = cluster_cfg.get("dashboard.port")
    assert int(arg_after(dash, "--server.port")) == port
    assert any(
        str(p).endswith(f":{port}") or (isinstance(p, dict) and int(p["target"]) == port)
        for p in services["dashboard"]["ports"]
    )
    assert f"localhost:{port}/" in " ".join(as_list(services["dashboard"]["healthcheck"]["test"]))


def test_scripts_the_stack_runs_exist(services):
    missing = []
    for name in ("stream", "jobs", "dashboard"):
        argv = as_list(services[name]["command"])
        script = argv[2] if argv[:2] == ["streamlit", "run"] else argv[1]
        if not (PROJECT_ROOT / script).is_file():
            missing.append(f"{name}: {script}")
    for job in ("prepare_data.py", "train.py", "produce.py", "stream_score.py"):
        if not (PROJECT_ROOT / "jobs" / job).is_file():
            missing.append(f"docs/cluster.md: jobs/{job}")
    assert not missing, f"the stack runs scripts that do not exist: {missing}"


# ----------------------------------------------------------------------------- images
def test_dockerfiles_exist_and_build_what_the_stack_needs(services):
    for name, svc in services.items():
        build = svc.get("build")
        if not build:
            continue
        context = PROJECT_ROOT / (build["context"] if isinstance(build, dict) else build)
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert context.is_dir(), f"{name}: build context {context} missing"
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"

    app = (PROJECT_ROOT / "docker" / "app.Dockerfile").read_text(encoding="utf-8")
    setup = configparser.ConfigParser()
    setup.read(PROJECT_ROOT / "setup.cfg")
    py = re.search(r">=(\d+\.\d+)", setup["options"]["python_requires"]).group(1)
    assert re.search(rf"python:{re.escape(py)}-slim-bookworm", app), f"app image must use Python {py} on bookworm"
    assert "openjdk-17-jre-headless" in app
    assert 'pip install -e ".[${EXTRAS}]"' in app
    extras = re.search(r"ARG EXTRAS=(\S+)", app).group(1).split(",")
    assert "dashboard" in extras and set(extras) <= set(setup["options.extras_require"]), extras
    assert "python -m fraud_ml.local.jars resolve" in app, "jars must be resolved at build time"
    assert "openjdk-17-jdk-headless" in app and "COPY spark/udf ./spark/udf" in app, "spark/udf is built in the image"
    assert "WORKDIR /app" in app and "COPY --from=build /app/var/jars /app/var/jars" in app
    cfg = load_config(CLUSTER_CONF, env={})
    assert cfg.get("spark.jars_dir") == "var/jars/spark", "spark.jars_dir must point at the jars baked into /app"
    python = re.search(r"PYSPARK_PYTHON=(\S+)", app).group(1)
    for name in ("spark-worker", "stream"):
        assert env_of(services[name])["PYSPARK_PYTHON"] == python, f"{name}: executors need the image's venv python"
    assert "USER app" in app, "the app image must not run as root"
    ignore = (PROJECT_ROOT / "docker" / "app.Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**" in ignore, "the app image's build context must be an allow-list"
    for needed in ("fraud_ml/", "jobs/", "conf/", "dashboard/", "spark/", "setup.cfg", "pyproject.toml"):
        assert f"!{needed}" in ignore, f"{needed} is not sent to the app image build"

    mlflow_df = (PROJECT_ROOT / "docker" / "mlflow.Dockerfile").read_text(encoding="utf-8")
    pin = re.search(r"mlflow==([\d.]+)", setup["options"]["install_requires"]).group(1)
    assert f'"mlflow=={pin}"' in mlflow_df, "server and client MLflow versions must match"
    assert "psycopg[binary]" in mlflow_df and "boto3" in mlflow_df


# ----------------------------------------------------------------------------- the real compose CLI, when present
def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        out = subprocess.run(["docker-compose", "version"], capture_output=True, text=True)
        if out.returncode == 0 and re.search(r"v?2\.\d+", out.stdout):
            return ["docker-compose"]
    return None


def test_docker_compose_config_validates():
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "no Docker Compose v2 CLI here (`docker compose` / `docker-compose` v2): "
            "the file was only checked by the parser-based tests"
        )
    base = [*cli, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "--profile", "jobs"]
    proc = subprocess.run([*base, "config", "-q"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    names = subprocess.run(
        [*base, "config", "--services"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert set(REQUIRED_SERVICES) <= set(names)


# ----------------------------------------------------------------------------- the app image's entrypoint
def _entrypoint(*args: str, **env: str) -> list[str]:
    script = PROJECT_ROOT / "docker" / "entrypoint.sh"
    full = {"PATH": "/usr/bin:/bin", "SPARK_HOME": "/opt/spark", "FRAUD_ML_ENTRYPOINT_DRY_RUN": "1", **env}
    proc = subprocess.run(["bash", str(script), *args], env=full, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_entrypoint_passes_commands_through_and_speaks_spark_on_kubernetes():
    app = (PROJECT_ROOT / "docker" / "app.Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["/usr/local/bin/fraud-ml-entrypoint"]' in app
    assert "COPY docker/entrypoint.sh /usr/local/bin/fraud-ml-entrypoint" in app
    assert "!docker/entrypoint.sh" in (PROJECT_ROOT / "docker" / "app.Dockerfile.dockerignore").read_text()
    jars = re.search(r"FRAUD_ML_JARS_DIR=(\S+)", app).group(1)

    assert _entrypoint("python", "jobs/stream_score.py", "--conf", "conf/cluster.yaml") == [
        "python",
        "jobs/stream_score.py",
        "--conf",
        "conf/cluster.yaml",
    ]

    executor = _entrypoint(
        "executor",
        FRAUD_ML_JARS_DIR=jars,
        SPARK_EXECUTOR_MEMORY="2g",
        SPARK_DRIVER_URL="spark://d:7078",
        SPARK_EXECUTOR_ID="3",
        SPARK_EXECUTOR_CORES="2",
        SPARK_APPLICATION_ID="spark-1",
        SPARK_EXECUTOR_POD_IP="10.0.0.7",
        SPARK_EXECUTOR_POD_NAME="pod-3",
        SPARK_JAVA_OPT_1="-Db=2",
        SPARK_JAVA_OPT_0="-Da=1",
        SPARK_JAVA_OPT_10="-Dz=10",
    )
    assert "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend" in executor
    assert executor[1:4] == ["-Da=1", "-Db=2", "-Dz=10"], "SPARK_JAVA_OPT_n must keep their numeric order"
    classpath = executor[executor.index("-cp") + 1].split(":")
    assert classpath == ["/opt/spark/jars/*", f"{jars}/*"]
    assert executor[executor.index("--executor-id") + 1] == "3" and "-Xmx2g" in executor

    driver = _entrypoint(
        "driver",
        "--properties-file",
        "/opt/spark/conf/spark.properties",
        "local:///app/jobs/stream_score.py",
        FRAUD_ML_JARS_DIR=jars,
        SPARK_DRIVER_BIND_ADDRESS="10.0.0.5",
    )
    assert driver[0] == "/opt/spark/bin/spark-submit"
    assert f"spark.driver.extraClassPath={jars}/*" in driver and "spark.driver.bindAddress=10.0.0.5" in driver
    assert driver[driver.index("--deploy-mode") + 1] == "client"
    assert driver[-1] == "local:///app/jobs/stream_score.py"


# ----------------------------------------------------------------------------- stand-ins for the public images
def test_every_stand_in_replaces_an_image_variable_of_the_stack(compose_text, env_example):
    from fraud_ml.ops.compose import DEBIAN_IMAGE, STAND_INS, STAND_INS_FILE, WORKDIR

    stand_ins = yaml.safe_load(STAND_INS_FILE.read_text(encoding="utf-8"))["services"]
    assert set(stand_ins) == {service for _, service, _ in STAND_INS}
    minio_context = (STAND_INS_FILE.parent / stand_ins["minio"]["build"]["context"]).resolve()
    assert minio_context == WORKDIR.resolve(), "the MinIO stand-in builds from the folder its binary is built into"
    for key, service, tag in STAND_INS:
        assert key in env_example and "${" + key + "}" in compose_text, f"{key} is not an image of the stack"
        build = stand_ins[service]["build"]
        assert stand_ins[service]["image"] == tag and build["args"]["DEBIAN_IMAGE"] == DEBIAN_IMAGE
        dockerfile = (STAND_INS_FILE.parent / build["context"] / build["dockerfile"]).resolve()
        assert "ARG DEBIAN_IMAGE=debian:bookworm-slim" in dockerfile.read_text(encoding="utf-8"), dockerfile
    for dockerfile in ("docker/app.Dockerfile", "docker/mlflow.Dockerfile"):
        assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in (PROJECT_ROOT / dockerfile).read_text()


def test_the_test_env_file_keeps_every_key_and_replaces_the_given_ones():
    from fraud_ml.ops.compose import ComposeTestError, env_file_text, fresh_secrets

    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    new = fresh_secrets()
    text = env_file_text(example, {**new, "KAFKA_IMAGE": "fraud-ml-local/kafka:4.1.1"})
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert set(env) == set(parse_env_file(ENV_EXAMPLE))
    assert env["KAFKA_IMAGE"] == "fraud-ml-local/kafka:4.1.1" and env["POSTGRES_PASSWORD"] == new["POSTGRES_PASSWORD"]
    assert not any(v.startswith("change-me") for v in env.values()), "the test stack must not run on placeholders"
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", new["POSTGRES_PASSWORD"]), "must need no percent-encoding in a URI"
    with pytest.raises(ComposeTestError, match="NOPE"):
        env_file_text(example, {"NOPE": "1"})


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_kafka_stand_in_reads_the_stacks_kafka_environment_as_apache_kafka_does(services):
    env = {k: v for k, v in env_of(services["kafka"]).items()}
    proc = subprocess.run(
        ["bash", str(PROJECT_ROOT / "docker" / "local" / "kafka" / "run.sh")],
        env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.returncode == 0, proc.stderr
    props = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert props["node.id"] == "1" and props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == env["KAFKA_LOG_DIRS"] and props["controller.quorum.voters"] == "1@kafka:9093"
    assert props["listener.security.protocol.map"] == env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert len(props) == len([k for k in env if k.startswith("KAFKA_")]), "each KAFKA_ variable is one property"
    assert "cluster.id" not in props, "CLUSTER_ID formats the storage; it is not a broker property"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_the_minio_stand_in_has_only_the_mc_command_the_healthcheck_runs(services):
    assert services["minio"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    proc = subprocess.run(["sh", str(PROJECT_ROOT / "docker" / "local" / "minio" / "mc"), "ls"], capture_output=True)
    assert proc.returncode == 64 and b"only 'mc ready local'" in proc.stderr
