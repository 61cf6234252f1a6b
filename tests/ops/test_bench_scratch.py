"""The benchmarks' scratch folder: everything a run writes lives in it, and a temp one leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraud_ml.config import Config
from fraud_ml.io.kafka import check_reachable
from fraud_ml.ops.bench import scratch_broker, scratch_overrides, scratch_root, scratch_workdir


def _scratch_config(base_config: Config, workdir: str | None, *extra: str) -> Config:
    return base_config.with_overrides([*scratch_overrides(workdir, use_running_broker=False), *extra], env={})


def test_a_temp_scratch_folder_is_removed_after_a_successful_run(base_config: Config):
    cfg = _scratch_config(base_config, None)
    with scratch_workdir(None, cfg) as root:
        assert root == scratch_root(cfg) and root.is_dir()
        (root / "delta").mkdir()
        (root / "delta" / "table.parquet").write_bytes(b"x")
    assert not root.exists()


def test_a_failed_run_keeps_its_scratch_folder_for_inspection(base_config: Config):
    cfg = _scratch_config(base_config, None)
    with pytest.raises(RuntimeError, match="line failed"), scratch_workdir(None, cfg) as root:
        raise RuntimeError("line failed")
    assert root.is_dir()


def test_a_given_workdir_is_kept(base_config: Config, tmp_path: Path):
    cfg = _scratch_config(base_config, str(tmp_path / "work"))
    with scratch_workdir(str(tmp_path / "work"), cfg) as root:
        assert root == tmp_path / "work"
    assert root.is_dir()


def test_a_running_broker_is_used_as_it_is(base_config: Config, kafka_broker):
    cfg = base_config.with_overrides([f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}"], env={})
    with scratch_broker(cfg) as used:
        assert used is cfg


def test_an_embedded_broker_lives_in_the_scratch_folder_and_its_log_goes_with_it(base_config: Config, tmp_path: Path):
    cfg = _scratch_config(base_config, str(tmp_path / "work"))
    with scratch_broker(cfg) as used:
        check_reachable(used.get("kafka.bootstrap_servers"), used.kafka_client_options(), timeout=10)
        assert [p.name[:6] for p in (tmp_path / "work").iterdir() if p.name.startswith("kafka-")] == ["kafka-"]
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith("kafka-")]
