"""Jobs fail with one clear line, not a Java stack trace, on the common mistakes."""

import subprocess
import sys

import pytest

from fraud_ml.config import PROJECT_ROOT


def run_job(*args, timeout=240):
    proc = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_mistyped_config_key():
    code, err = run_job("jobs/produce.py", "--set", "kafka.topik=x")
    assert code == 2 and err[-1].startswith("error: unknown config key 'kafka.topik'")
    assert "did you mean 'kafka.topic'" in err[-1]


def test_wrong_type_in_env(monkeypatch):
    monkeypatch.setenv("FRAUD_ML__KAFKA__PARTITIONS", "four")
    code, err = run_job("jobs/kafka_local.py", "status")
    assert code == 2 and "expects int" in err[-1]


def test_unreachable_broker(tmp_path):
    code, err = run_job(
        "jobs/stream_score.py", "--set", "kafka.bootstrap_servers=127.0.0.1:1", "--set", f"delta.root={tmp_path}"
    )
    assert code == 2 and "Kafka broker unreachable at 127.0.0.1:1" in err[-1]
    assert not any(line.lstrip().startswith("at org.apache") for line in err)


def test_wrong_input_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    code, err = run_job("jobs/prepare_data.py", "--input", str(bad), "--set", f"delta.root={tmp_path / 'd'}")
    assert code == 2 and "does not have the Kaggle creditcard columns" in err[-1]
    assert not any("Traceback" in line for line in err)


@pytest.mark.integration
def test_missing_model_alias(kafka_broker, tmp_path):
    code, err = run_job(
        "jobs/stream_score.py",
        "--set",
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        "--set",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'empty.db'}",
        "--set",
        f"delta.root={tmp_path}",
        "--set",
        "kafka.topic=no-model",
    )
    assert code == 2 and "no model 'fraud-xgboost' with alias 'champion'" in err[-1]


def test_alerts_job_refuses_a_bad_emit_setting():
    code, err = run_job("jobs/alerts.py", "--set", "alerts.emit=some")
    assert code == 2 and err[-1] == "error: alerts.emit must be one of flagged, all, got 'some'"


def test_alerts_job_with_an_unreachable_broker():
    code, err = run_job("jobs/alerts.py", "--set", "kafka.bootstrap_servers=127.0.0.1:1")
    assert code == 2 and "Kafka broker unreachable at 127.0.0.1:1" in err[-1]


@pytest.mark.integration
def test_alerts_job_without_a_champion(kafka_broker, tmp_path):
    code, err = run_job(
        "jobs/alerts.py",
        "--set",
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        "--set",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'empty.db'}",
        "--set",
        "kafka.topic=alerts-no-model",
    )
    assert code == 2 and "no model 'fraud-xgboost' with alias 'champion'" in err[-1]


def test_serve_without_a_champion_says_so(tmp_path):
    code, err = run_job(
        "jobs/serve.py",
        "--set",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'empty.db'}",
        "--set",
        f"mlflow.artifact_location={tmp_path / 'artifacts'}",
    )
    assert code == 2 and "no model 'fraud-xgboost' with alias 'champion'" in err[-1]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("serve.port=70000", "error: serve.port must be a TCP port (1-65535), got 70000"),
        ("serve.workers=0", "error: serve.workers must be at least 1, got 0"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(setting, message):
    code, err = run_job("jobs/serve.py", "--set", setting)
    assert code == 2 and err[-1] == message


TERMINATED_JOB = """
import time
from fraud_ml.cli import interrupt_on_sigterm
interrupt_on_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
finally:
    print("cleaned up", flush=True)
"""


def test_a_terminated_job_runs_its_cleanup():
    proc = subprocess.Popen([sys.executable, "-c", TERMINATED_JOB], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.split() == ["interrupted", "cleaned", "up"]
