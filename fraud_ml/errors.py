"""Errors a user can act on. Jobs print their message as one line and exit non-zero."""


class FraudMLError(Exception):
    """Base class for errors that carry a user-facing message."""


class ConfigError(FraudMLError):
    """A config file, key or value is missing or wrong."""


class DataSchemaError(FraudMLError):
    """Input data does not have the Kaggle creditcard schema."""


class JarsError(FraudMLError):
    """JVM artifacts could not be resolved or are missing."""


class KafkaUnavailableError(FraudMLError):
    """The Kafka broker cannot be reached or did not start."""


class ModelNotFoundError(FraudMLError):
    """The registered model or alias does not exist."""


class ModelFormatError(FraudMLError):
    """A model version is not the champion pyfunc as this project logs it (from code, valid threshold)."""


class StreamConflictError(FraudMLError):
    """Another live streaming query writes the same tables under the same ``stream.app_id``."""


class StreamStateError(FraudMLError):
    """The tables and the checkpoint disagree in a way that would skip or duplicate data."""
