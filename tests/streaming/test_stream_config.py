"""The scoring stream's driver heap comes from stream.driver_memory, not the batch jobs' setting."""

import pytest

from fraud_ml.config import load_config
from fraud_ml.errors import ConfigError
from fraud_ml.io.spark import memory_size
from fraud_ml.streaming.query import stream_config


def test_stream_driver_heap_is_its_own_setting():
    cfg = load_config(overrides=["spark.driver_memory=2g", "stream.driver_memory=768m"], env={})
    streamed = stream_config(cfg)
    assert streamed.get("spark.driver_memory") == "768m"
    assert cfg.get("spark.driver_memory") == "2g"  # the caller's config is left as it was
    assert streamed.get("kafka.topic") == cfg.get("kafka.topic")


def test_the_default_stream_heap_is_below_the_batch_jobs_heap():
    cfg = load_config(env={})
    assert (
        stream_config(cfg).get("spark.driver_memory")
        == cfg.get("stream.driver_memory")
        != cfg.get("spark.driver_memory")
    )


@pytest.mark.parametrize("value", ["[1, 2]", "lots", "0", "-1g", "1.5g", "768 m"])
def test_a_stream_heap_that_is_no_memory_size_is_one_config_error(value):
    cfg = load_config(overrides=[f"stream.driver_memory={value}"], env={})
    with pytest.raises(ConfigError, match="stream.driver_memory must be a memory size"):
        stream_config(cfg)


@pytest.mark.parametrize("value", ["768m", "2g", "1024", "512M"])
def test_memory_sizes_spark_takes_pass(value):
    assert memory_size(load_config(overrides=[f"spark.driver_memory={value}"], env={}), "spark.driver_memory") == value
