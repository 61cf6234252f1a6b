"""One configuration source: ``conf/local.yaml`` (the base: every key, with the one-machine
defaults), small overlays such as ``conf/cluster.yaml``, and CLI and environment overrides.

An overlay names its base (``extends: local.yaml``, relative to the overlay) and holds only
the keys whose values differ. Precedence (last wins): the base, the overlay,
``FRAUD_ML__SECTION__KEY`` environment variables, then ``--set section.key=value``
arguments. Every overlay key and override must name a key of the base (free-form maps such as
``spark.conf`` accept new sub-keys) and keep its type, so a typo fails with one clear line.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from fraud_ml.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "conf" / "local.yaml"
ENV_PREFIX = "FRAUD_ML__"
# Maps whose keys are user-defined: overrides may add keys below these.
FREE_FORM_KEYS = (
    "spark.conf",
    "stream.source_options",
    "stream.librdkafka_options",
    "stream.table_properties",
    "stream.message.fields",
    "stream.message.presets",
    "stream.message.avro_schemas",
)
REQUIRED_KEYS = (
    "kafka.bootstrap_servers",
    "kafka.topic",
    "mlflow.tracking_uri",
    "mlflow.model_name",
    "delta.root",
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Config:
    """Read-only view of a nested configuration mapping with dotted-key access."""

    def __init__(self, data: Mapping[str, Any], source: str = "<dict>") -> None:
        self._data = copy.deepcopy(dict(data))
        self.source = source

    def get(self, key: str, default: Any = ...) -> Any:
        """Value at a dotted ``key``; raises ConfigError if missing and no default."""
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is not ...:
                    return default
                raise ConfigError(f"config key '{key}' is missing in {self.source}")
            node = node[part]
        return copy.deepcopy(node)

    __getitem__ = get

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def with_overrides(self, overrides: Iterable[str] = (), env: Mapping[str, str] | None = None) -> "Config":
        """A new Config with environment and ``key=value`` overrides applied."""
        data = copy.deepcopy(self._data)
        for key, raw in _env_overrides(env if env is not None else os.environ):
            _set_checked(data, key, raw, origin=f"environment variable {ENV_PREFIX}{key.upper().replace('.', '__')}")
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override '{item}' must look like section.key=value")
            key, raw = item.split("=", 1)
            _set_checked(data, key.strip(), raw, origin=f"--set {item}")
        return Config(data, self.source)

    # Helpers for values that many modules derive from the config.
    def table_path(self, table: str) -> str:
        """Location of a table of the catalog: ``<delta.root>/<delta.tables.<table>>``."""
        tables = self.get("delta.tables")
        if table not in tables:
            raise ConfigError(f"no table '{table}' in delta.tables of {self.source}; known: {', '.join(tables)}")
        return join_path(self.get("delta.root"), tables[table])

    def kafka_client_options(self) -> dict[str, str]:
        """``kafka.security`` as librdkafka properties (producer, admin client)."""
        from fraud_ml.io.kafka import librdkafka_options

        return librdkafka_options(self.get("kafka.security"))

    def kafka_java_options(self) -> dict[str, str]:
        """``kafka.security`` as Java client properties (the Spark Kafka source)."""
        from fraud_ml.io.kafka import java_client_options

        return java_client_options(self.get("kafka.security"))


def join_path(root: str, name: str) -> str:
    """Join a local path or URI root (``s3a://b/x``) with a child name."""
    if "://" in root:
        return root.rstrip("/") + "/" + name
    return str(Path(root) / name)


def load_config(
    path: str | os.PathLike | None = None, overrides: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> Config:
    """Load a YAML config (default ``conf/local.yaml``) and apply overrides."""
    path = Path(path or os.environ.get("FRAUD_ML_CONF") or DEFAULT_CONFIG_PATH)
    data = _read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is not None:
        base_path = path.parent / str(base_name)
        base = _read_yaml(base_path)
        if "extends" in base:
            raise ConfigError(f"{base_path} (the base of {path}) must not itself extend another file")
        data = _overlay(base, data, origin=str(path))
    data = _interpolate(data)
    cfg = Config(data, str(path)).with_overrides(overrides, env)
    for key in REQUIRED_KEYS:
        if cfg.get(key, None) in (None, ""):
            raise ConfigError(f"required config key '{key}' is missing or empty in {path}")
    return cfg


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _overlay(base: dict, overlay: Mapping, origin: str) -> dict:
    """``base`` with each leaf of ``overlay`` set, checked like an override (known key, same type)."""
    merged = copy.deepcopy(base)
    for key, value in _leaves(overlay):
        _assign(merged, key, value, value, origin=origin)
    return merged


def add_config_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the shared ``--conf`` and ``--set`` options to a job's parser."""
    parser.add_argument(
        "--conf", default=None, help=f"YAML config file (default {DEFAULT_CONFIG_PATH.relative_to(PROJECT_ROOT)})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set kafka.topic=tx (repeatable)",
    )
    return parser


def config_from_args(args: argparse.Namespace, extra: Iterable[str] = ()) -> Config:
    """Config from parsed ``--conf``/``--set`` plus job-specific overrides."""
    return load_config(args.conf, list(args.overrides) + list(extra))


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            key = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
            found.append((key, value))
    return sorted(found)


def _interpolate(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v) for v in node]
    if isinstance(node, str):
        return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), node)
    return node


def _set_checked(data: dict, key: str, raw: str, origin: str) -> None:
    """Set ``key`` from an override's text (parsed as YAML, kept as text where the key holds text)."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    _assign(data, key, value, raw, origin)


def _assign(data: dict, key: str, value: Any, raw: Any, origin: str) -> None:
    for free in FREE_FORM_KEYS:  # e.g. spark.conf.spark.executor.memory: the leaf name itself has dots
        if key.startswith(free + "."):
            section = data
            for part in free.split("."):
                section = section.setdefault(part, {}) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                raise ConfigError(f"config key '{free}' must be a mapping ({origin})")
            section[key[len(free) + 1 :]] = raw
            return
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            prefix = ".".join(parts[: depth + 1])
            raise ConfigError(f"unknown config section '{prefix}' ({origin}){_suggest(prefix, data)}")
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        raise ConfigError(f"unknown config key '{key}' ({origin}){_suggest(key, data)}")
    node[leaf] = _coerce(key, node[leaf], value, raw, origin)


def _leaves(node: Mapping, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted key, value) of each leaf of an overlay; a free-form map's entries are leaves."""
    for key, value in node.items():
        dotted = prefix + str(key)
        if isinstance(value, Mapping) and dotted in FREE_FORM_KEYS:
            yield from ((f"{dotted}.{k}", v) for k, v in value.items())
        elif isinstance(value, Mapping):  # an empty map changes nothing (it does not empty the base's)
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _coerce(key: str, current: Any, value: Any, raw: str, origin: str) -> Any:
    if current is None or isinstance(current, str):
        return str(raw) if not isinstance(value, (dict, list)) else value
    expected = type(current)
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, expected):
        return value
    raise ConfigError(f"config key '{key}' expects {expected.__name__}, got {raw!r} ({origin})")


def _suggest(key: str, data: dict) -> str:
    close = difflib.get_close_matches(key, list(_all_keys(data)), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _all_keys(node: Mapping, prefix: str = "") -> Iterable[str]:
    for k, v in node.items():
        full = f"{prefix}{k}"
        yield full
        if isinstance(v, Mapping):
            yield from _all_keys(v, full + ".")
