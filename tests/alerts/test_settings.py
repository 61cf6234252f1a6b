"""``alerts.*`` checked before anything starts."""

import pytest

from fraud_ml.alerts.query import AlertsSettings
from fraud_ml.config import load_config
from fraud_ml.errors import ConfigError


def test_the_defaults_are_valid():
    settings = AlertsSettings.from_config(load_config(env={}))
    assert settings.emit == "flagged" and settings.topic != settings.dead_letter_topic


@pytest.mark.parametrize(
    "override",
    [
        "alerts.emit=sometimes",
        "alerts.scorer=python",
        "alerts.fast_path=1",
        "alerts.topic=dead-letter",
        "alerts.topic=transactions",
        "alerts.dead_letter_topic=transactions",
        "alerts.warmup_rows=-1",
    ],
)
def test_bad_settings_fail_with_one_config_error(override):
    with pytest.raises(ConfigError):
        AlertsSettings.from_config(load_config(overrides=[override], env={}))


@pytest.mark.parametrize("override", ["stream.message.preset=seed", "stream.message.transaction_id_from=key"])
def test_a_contract_other_than_native_is_refused_at_start(override):
    with pytest.raises(ConfigError, match="native message contract only"):
        AlertsSettings.from_config(load_config(overrides=[override], env={}))
