import pytest

from fraud_ml.config import load_config
from fraud_ml.errors import ConfigError
from fraud_ml.streaming.batch_scoring import kafka_source_options


def test_plaintext_default_for_both_clients():
    cfg = load_config(env={})
    assert cfg.kafka_client_options() == {"security.protocol": "PLAINTEXT"}
    assert kafka_source_options(cfg)["kafka.security.protocol"] == "PLAINTEXT"


def test_sasl_ssl_is_translated_for_each_client(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc-fraud")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", 'p"w\\d')
    env = {
        "FRAUD_ML__KAFKA__SECURITY__PROTOCOL": "SASL_SSL",
        "FRAUD_ML__KAFKA__SECURITY__SASL_MECHANISM": "SCRAM-SHA-512",
        "FRAUD_ML__KAFKA__SECURITY__SSL_CA_LOCATION": "/etc/kafka/ca.pem",
    }
    cfg = load_config(env=env)
    assert cfg.kafka_client_options() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc-fraud",
        "sasl.password": 'p"w\\d',
        "ssl.ca.location": "/etc/kafka/ca.pem",
    }
    spark_opts = kafka_source_options(cfg)
    assert spark_opts["kafka.security.protocol"] == "SASL_SSL"
    assert spark_opts["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert spark_opts["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="svc-fraud" password="p\\"w\\\\d";'
    )
    assert spark_opts["kafka.ssl.truststore.type"] == "PEM"
    assert spark_opts["kafka.ssl.truststore.location"] == "/etc/kafka/ca.pem"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["kafka.security.protocol=TLS"], "protocol must be one of"),
        (["kafka.security.protocol=SASL_PLAINTEXT", "kafka.security.sasl_mechanism=GSSAPI"], "sasl_mechanism must be"),
        (
            ["kafka.security.protocol=SASL_PLAINTEXT", "kafka.security.sasl_mechanism=PLAIN"],
            "sasl_username and sasl_password",
        ),
    ],
)
def test_inconsistent_security_is_a_config_error(overrides, message, monkeypatch):
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    cfg = load_config(overrides=overrides, env={})
    with pytest.raises(ConfigError, match=message):
        cfg.kafka_client_options()
