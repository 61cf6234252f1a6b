"""The alerts job's warm-up messages take the path real transactions take: valid, and on the fast path."""

import time

import pytest

from fraud_ml.alerts.query import warmup_messages
from fraud_ml.alerts.validation_sql import register_fast_path, validate
from fraud_ml.config import load_config
from fraud_ml.streaming.messages import REASON, ValidationLimits

LIMITS = ValidationLimits.from_config(load_config(env={}))


@pytest.mark.parametrize("fast_path", [False, True], ids=["rules", "fast-path"])
def test_every_warm_up_message_is_valid(spark, fast_path):
    rows = warmup_messages(spark, 300, int(time.time() * 1000))
    reasons = validate(rows, LIMITS, fast_path).select(REASON).toPandas()[REASON]
    assert len(reasons) == 300 and reasons.isna().all(), reasons.dropna().unique()[:5]


def test_the_fast_path_takes_every_warm_up_message(spark):
    name = register_fast_path(spark, LIMITS)
    rows = warmup_messages(spark, 300, int(time.time() * 1000))
    taken = rows.selectExpr(f"{name}(value, unix_millis(timestamp)) IS NOT NULL AS taken").toPandas()["taken"]
    assert taken.all()
