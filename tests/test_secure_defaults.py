"""Services bind 127.0.0.1 unless configured: the Spark driver and UI, Streamlit, the embedded broker."""

from urllib.parse import urlparse

from fraud_ml.local.kafka_broker import LocalKafkaBroker
from fraud_ml.ops.dashboard import dashboard_command


def test_the_spark_ui_and_driver_listen_on_loopback_only(spark, listening):
    ui_port = urlparse(spark.sparkContext.uiWebUrl).port
    assert listening(ui_port) == {"127.0.0.1"}, f"Spark UI port {ui_port} listens on {listening(ui_port)}"
    driver_port = int(spark.sparkContext.getConf().get("spark.driver.port"))
    assert listening(driver_port) == {"127.0.0.1"}


def test_the_dashboard_binds_the_configured_address(base_config):
    command = dashboard_command(base_config, [])
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    other = dashboard_command(base_config.with_overrides(["dashboard.address=0.0.0.0"], env={}), [])
    assert other[other.index("--server.address") + 1] == "0.0.0.0"


def test_the_embedded_broker_listens_on_its_bootstrap_host(tmp_path):
    props = LocalKafkaBroker(tmp_path / "jars", tmp_path / "kafka", port=19092, controller_port=19093).write_config()
    lines = dict(line.split("=", 1) for line in props.read_text().splitlines())
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
