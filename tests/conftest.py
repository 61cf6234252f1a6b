"""Shared fixtures: one SparkSession, one MLflow store and one Kafka broker per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fraud_ml.config import PROJECT_ROOT, Config, load_config

CHAMPION_DELTA = "champion_delta"  # the session champion's splits, under the session folder
SAMPLE_CSV = (PROJECT_ROOT.parent / "shared" / "data" / "creditcard_sample.csv").resolve()


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    """The real Kaggle sample (1,722 rows); the test is skipped, with the reason, where it is absent."""
    if not SAMPLE_CSV.is_file():
        pytest.skip(f"real Kaggle sample not found at {SAMPLE_CSV} (only present in the project's shared/ folder)")
    return SAMPLE_CSV


@pytest.fixture(scope="session")
def listening():
    """``listening(port)``: the addresses listening on ``port`` (a JVM's IPv4-mapped
    ``::ffff:127.0.0.1`` reads as 127.0.0.1)."""
    import psutil

    def _listening(port: int) -> set[str]:
        return {
            c.laddr.ip.removeprefix("::ffff:")
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }

    return _listening


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    """A scratch folder that lives for the whole test session."""
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def base_config(session_dir: Path) -> Config:
    """conf/local.yaml with every path moved into the session's scratch folder."""
    mlflow_dir = session_dir / "mlflow"
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    return load_config(
        overrides=[
            f"delta.root={session_dir / 'delta'}",
            f"mlflow.tracking_uri=sqlite:///{mlflow_dir / 'mlflow.db'}",
            f"mlflow.artifact_location={mlflow_dir / 'artifacts'}",
            f"stream.checkpoint_dir={session_dir / 'checkpoints'}",
            f"kafka.local.data_dir={session_dir / 'kafka'}",
            "spark.driver_memory=3g",
            "spark.shuffle_partitions=2",
        ],
        env={},
    )


@pytest.fixture
def make_config(base_config: Config, tmp_path: Path):
    """Factory: the session config with per-test Delta root/checkpoints plus overrides."""

    def _make(*overrides: str) -> Config:
        return base_config.with_overrides(
            [f"delta.root={tmp_path / 'delta'}", f"stream.checkpoint_dir={tmp_path / 'checkpoints'}", *overrides],
            env={},
        )

    return _make


@pytest.fixture(scope="session")
def spark(base_config: Config):
    """The one SparkSession of the test run (local[2], Delta + Kafka jars)."""
    from fraud_ml.io.spark import build_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = build_spark(base_config.with_overrides(["spark.master=local[2]"], env={}), app_name="fraud-ml-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def new_broker(base_config: Config):
    """``new_broker(data_dir)``: a real KRaft broker on free ports, not started."""
    from fraud_ml.local.kafka_broker import LocalKafkaBroker, free_port

    def _new(data_dir: Path) -> LocalKafkaBroker:
        return LocalKafkaBroker(
            jars_dir=Path(base_config.get("kafka.local.jars_dir")),
            data_dir=data_dir,
            port=free_port(),
            controller_port=free_port(),
            heap="384m",
        )

    return _new


@pytest.fixture(scope="session")
def kafka_broker(new_broker, session_dir: Path):
    """One real KRaft broker for the whole test session, on free ports."""
    broker = new_broker(session_dir / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def registered_champion(spark, base_config: Config, session_dir: Path):
    """A small XGBoost champion trained on synthetic rows and registered @champion (once per session),
    by the training experiment without the zoo and the search (what ``jobs/train.py --no-zoo --no-tune`` runs)."""
    from fraud_ml.training.experiment import run_experiment
    from fraud_ml.training.splits import prepare_splits

    cfg = base_config.with_overrides(
        [
            f"delta.root={session_dir / CHAMPION_DELTA}",
            "data.synthetic_rows=6000",
            "data.synthetic_fraud_rate=0.02",
            "train.xgboost.n_estimators=40",
        ],
        env={},
    )
    prepare_splits(spark, cfg)
    return run_experiment(spark, cfg, zoo=False, tune=False).champion


@pytest.fixture(scope="session")
def champion_delta_root(registered_champion, session_dir: Path) -> str:
    """Delta root holding the train/validation/test splits of the session champion."""
    return str(session_dir / CHAMPION_DELTA)


@pytest.fixture(scope="session")
def champion_test_split(champion_delta_root: str):
    """The session champion's test split as pandas (replay source of the streaming tests)."""
    from deltalake import DeltaTable

    return DeltaTable(f"{champion_delta_root}/test").to_pandas()


@pytest.fixture
def topic_config(kafka_broker, make_config):
    """``topic_config(topic, partitions, *overrides)``: a config on the session broker's new ``topic``."""
    from fraud_ml.io.kafka import create_topic

    def _make(topic: str, partitions: int, *overrides: str) -> Config:
        cfg = make_config(
            f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
            f"kafka.topic={topic}",
            f"kafka.partitions={partitions}",
            *overrides,
        )
        create_topic(kafka_broker.bootstrap_servers, topic, partitions)
        return cfg

    return _make
