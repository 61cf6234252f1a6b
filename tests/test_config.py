import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_ml.config import DEFAULT_CONFIG_PATH, REQUIRED_KEYS, load_config
from fraud_ml.errors import ConfigError


def test_default_config_has_the_documented_keys():
    cfg = load_config(env={})
    for key in REQUIRED_KEYS:
        assert cfg.get(key) not in (None, "")
    assert cfg.table_path("predictions").endswith("var/delta/predictions")


def test_cluster_config_has_every_local_key():
    local = load_config(env={}).as_dict()
    cluster = load_config(DEFAULT_CONFIG_PATH.parent / "cluster.yaml", env={}).as_dict()

    def keys(node, prefix=""):
        for k, v in node.items():
            yield prefix + k
            if isinstance(v, dict) and prefix + k not in ("spark.conf", "stream.source_options"):
                yield from keys(v, prefix + k + ".")

    assert set(keys(local)) <= set(keys(cluster))


def test_overlay_replaces_only_its_keys_and_checks_them(tmp_path):
    base = load_config(env={})
    (tmp_path / "local.yaml").write_text((DEFAULT_CONFIG_PATH).read_text(encoding="utf-8"), encoding="utf-8")
    overlay = tmp_path / "site.yaml"
    overlay.write_text(
        "extends: local.yaml\nkafka:\n  partitions: 12\nspark:\n  conf:\n    spark.executor.cores: 3\n",
        encoding="utf-8",
    )
    cfg = load_config(overlay, env={})
    assert cfg.get("kafka.partitions") == 12
    assert cfg.get("kafka.topic") == base.get("kafka.topic")
    assert cfg.get("spark.conf") == {**base.get("spark.conf"), "spark.executor.cores": 3}  # free-form map: merged
    overlay.write_text("extends: local.yaml\nkafka:\n  partitons: 12\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config key 'kafka.partitons'.*kafka.partitions"):
        load_config(overlay, env={})
    overlay.write_text("extends: local.yaml\nkafka:\n  partitions: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="kafka.partitions' expects int"):
        load_config(overlay, env={})
    overlay.write_text("extends: missing.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(overlay, env={})


def test_every_table_resolves_through_the_catalog():
    cfg = load_config(env={})
    assert cfg.table_path("smote").endswith("var/delta/train_smote")
    assert cfg.table_path("composed_stream").endswith("var/delta/stream_composed")
    with pytest.raises(ConfigError, match="no table 'stream_composed' in delta.tables.*composed_stream"):
        cfg.table_path("stream_composed")


def test_cli_override_keeps_type():
    cfg = load_config(
        overrides=["kafka.partitions=8", "stream.validation.max_abs_feature=50", "kafka.topic=tx-1"], env={}
    )
    assert cfg.get("kafka.partitions") == 8
    assert cfg.get("stream.validation.max_abs_feature") == 50.0 and isinstance(
        cfg.get("stream.validation.max_abs_feature"), float
    )
    assert cfg.get("kafka.topic") == "tx-1"


def test_env_override_and_cli_precedence():
    env = {"FRAUD_ML__KAFKA__TOPIC": "from-env", "FRAUD_ML__KAFKA__PARTITIONS": "3"}
    assert load_config(env=env).get("kafka.topic") == "from-env"
    assert load_config(env=env).get("kafka.partitions") == 3
    assert load_config(overrides=["kafka.topic=from-cli"], env=env).get("kafka.topic") == "from-cli"


@pytest.mark.parametrize(
    "override, message",
    [
        ("kafka.topc=x", "did you mean 'kafka.topic'"),
        ("kafka.partitions=many", "expects int"),
        ("stream.fail_on_data_loss=maybe", "expects bool"),
        ("nosuch.key=1", "unknown config section"),
        ("novalue", "must look like"),
    ],
)
def test_bad_overrides_fail_with_one_clear_message(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override], env={})


def test_free_form_sections_accept_new_keys():
    cfg = load_config(overrides=["spark.conf.spark.executor.memory=2g"], env={})
    assert cfg.get("spark.conf")["spark.executor.memory"] == "2g"
    with pytest.raises(ConfigError, match="unknown config section 'kafka.security.sasl'"):
        load_config(overrides=["kafka.security.sasl.mechanism=PLAIN"], env={})


def test_env_interpolation_and_required_keys(tmp_path, monkeypatch):
    conf = tmp_path / "c.yaml"
    conf.write_text(DEFAULT_CONFIG_PATH.read_text().replace("topic: transactions", "topic: ${TOPIC_NAME:-fallback}"))
    assert load_config(conf, env={}).get("kafka.topic") == "fallback"
    monkeypatch.setenv("TOPIC_NAME", "secret-topic")
    assert load_config(conf, env={}).get("kafka.topic") == "secret-topic"
    conf.write_text(DEFAULT_CONFIG_PATH.read_text().replace("model_name: fraud-xgboost", "model_name: ''"))
    with pytest.raises(ConfigError, match="mlflow.model_name"):
        load_config(conf, env={})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
_overlay_keys = st.sampled_from(
    ["kafka", "partitions", "topic", "spark", "conf", "drift", "window", "x", "delta", "tables"]
)
_overlays = st.recursive(_yaml_scalars, lambda inner: st.dictionaries(_overlay_keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overlay=st.dictionaries(_overlay_keys, _overlays, max_size=4))
def test_any_overlay_loads_or_fails_with_one_config_error(tmp_path, overlay):
    (tmp_path / "local.yaml").write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"extends": "local.yaml", **overlay}), encoding="utf-8")
    try:
        cfg = load_config(path, env={})
    except ConfigError:
        return
    base = load_config(env={})
    assert set(cfg.get("kafka")) >= set(base.get("kafka")) or "kafka" in overlay  # nothing silently emptied


def test_an_empty_map_in_an_overlay_changes_nothing(tmp_path):
    (tmp_path / "local.yaml").write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "site.yaml").write_text("extends: local.yaml\ndrift: {}\nspark:\n  conf: {}\n", encoding="utf-8")
    cfg, base = load_config(tmp_path / "site.yaml", env={}), load_config(env={})
    assert cfg.get("drift") == base.get("drift") and cfg.get("spark.conf") == base.get("spark.conf")
