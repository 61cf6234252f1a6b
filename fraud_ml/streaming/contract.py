"""The message contract (``stream.message``): where each field the stream scores is in a producer's record.

Producers have their own field names, often put the entity id in the Kafka key and carry the
event time in the Kafka timestamp. A contract maps our names (``transaction_id``, ``Time``,
``V1``..``V28``, ``Amount``, ``event_time``, ``label``, ``source``) onto theirs, and says whether
the transaction id comes from a body field or the record's key, and the event time from a body
field or the record's timestamp. Named presets live in ``conf/`` (``stream.message.presets``);
keys set beside ``preset`` override the preset's. Quarantine reasons name the producer's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from fraud_ml.errors import ConfigError
from fraud_ml.schema import FEATURES, ID_COL, MESSAGE_EVENT_TIME, MESSAGE_LABEL, SOURCE_COL
from fraud_ml.streaming.avro import AvroSource

if TYPE_CHECKING:
    from fraud_ml.config import Config

OUR_FIELDS = (ID_COL, *FEATURES, MESSAGE_EVENT_TIME, MESSAGE_LABEL, SOURCE_COL)
FORMATS = ("json", "avro")
ID_FROM = ("field", "key")
EVENT_TIME_FROM = ("field", "kafka_timestamp")
KAFKA_KEY = "Kafka key"
KAFKA_TIMESTAMP = "Kafka timestamp"


@dataclass(frozen=True)
class MessageContract:
    """Where each of our fields is in a producer's record (validated on construction)."""

    fields: tuple[tuple[str, str], ...] = ()  # (our name, producer's name) where they differ
    transaction_id_from: str = "field"  # field | key
    event_time_from: str = "field"  # field | kafka_timestamp
    format: str = "json"  # json | avro (Confluent wire format)
    avro: AvroSource = field(default_factory=AvroSource)  # avro: where writer schemas come from

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"stream.message.format must be one of {FORMATS}, got '{self.format}'")
        if self.format == "avro" and not (self.avro.pinned or self.avro.registry_url):
            raise ConfigError(
                "stream.message.format is avro but neither stream.message.schema_registry_url nor "
                "stream.message.avro_schemas is set: the stream cannot know any writer schema"
            )
        if self.transaction_id_from not in ID_FROM:
            raise ConfigError(
                f"stream.message.transaction_id_from must be one of {ID_FROM}, got '{self.transaction_id_from}'"
            )
        if self.event_time_from not in EVENT_TIME_FROM:
            raise ConfigError(
                f"stream.message.event_time_from must be one of {EVENT_TIME_FROM}, got '{self.event_time_from}'"
            )
        unknown = [ours for ours, _ in self.fields if ours not in OUR_FIELDS]
        if unknown:
            raise ConfigError(f"stream.message.fields names unknown fields {unknown}; known: {', '.join(OUR_FIELDS)}")
        bad = [ours for ours, theirs in self.fields if not isinstance(theirs, str) or not theirs.strip()]
        if bad:
            raise ConfigError(f"stream.message.fields must map {bad} to non-empty field names")
        # msgspec, which reads the fast path, refuses these characters in a field name
        odd = [theirs for _, theirs in self.fields if any(c in '\\"' or ord(c) < 0x20 for c in theirs)]
        if odd:
            raise ConfigError(f"stream.message.fields: names {odd} hold a backslash, a quote or a control character")
        names = [self.name(ours) for ours in self.body_fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"stream.message.fields maps two of our fields onto the same producer field: {repeated}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "MessageContract":
        """From a preset or config mapping (``fields``, ``transaction_id_from``, ``event_time_from``)."""
        known = {"fields", "transaction_id_from", "event_time_from", "format", "avro"}
        extra = set(values) - known
        if extra:
            raise ConfigError(f"stream.message: unknown keys {sorted(extra)}; known: {sorted(known)}")
        fields = values.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise ConfigError("stream.message.fields must be a mapping from our field names to the producer's")
        return cls(
            fields=tuple(sorted((str(k), v) for k, v in fields.items() if v != k)),
            transaction_id_from=str(values.get("transaction_id_from", "field")),
            event_time_from=str(values.get("event_time_from", "field")),
            format=str(values.get("format", "json")),
            avro=AvroSource.from_mapping(values.get("avro") or {}),
        )

    @classmethod
    def from_config(cls, cfg: "Config") -> "MessageContract":
        """The preset named by ``stream.message.preset``, with the keys set beside it on top."""
        section = cfg.get("stream.message")
        presets = section.get("presets") or {}
        preset = section.get("preset")
        if preset not in presets:
            raise ConfigError(f"stream.message.preset '{preset}' is not one of the presets: {', '.join(presets)}")
        merged = presets[preset]
        if not isinstance(merged, Mapping) or not isinstance(merged.get("fields") or {}, Mapping):
            raise ConfigError(f"stream.message.presets.{preset} must be a mapping with a 'fields' mapping")
        merged = {**merged, "fields": {**(merged.get("fields") or {}), **(section.get("fields") or {})}}
        for key in ("transaction_id_from", "event_time_from"):
            if section.get(key) not in (None, ""):
                merged[key] = section[key]
        merged["format"] = section.get("format") or "json"
        if merged["format"] == "avro":  # the .avsc files are read only when they are used
            merged["avro"] = AvroSource(
                pinned_schemas(section.get("avro_schemas") or {}), str(section.get("schema_registry_url") or "")
            ).as_mapping()
        return cls.from_mapping(merged)

    @property
    def body_fields(self) -> tuple[str, ...]:
        """Our fields read from the message body (the id and event time may come from the record)."""
        skip = {ID_COL} if self.transaction_id_from == "key" else set()
        if self.event_time_from == "kafka_timestamp":
            skip.add(MESSAGE_EVENT_TIME)
        return tuple(f for f in OUR_FIELDS if f not in skip)

    def name(self, ours: str) -> str:
        """The producer's name of our field ``ours`` (what a quarantine reason shows)."""
        if ours == ID_COL and self.transaction_id_from == "key":
            return f"{ID_COL} ({KAFKA_KEY})"
        if ours == MESSAGE_EVENT_TIME and self.event_time_from == "kafka_timestamp":
            return f"{MESSAGE_EVENT_TIME} ({KAFKA_TIMESTAMP})"
        return dict(self.fields).get(ours, ours)

    def names(self, ours: tuple[str, ...] | list[str]) -> list[str]:
        return [self.name(o) for o in ours]

    def as_mapping(self) -> dict[str, Any]:
        """Plain values (shipped to the Python workers as JSON), read back by :meth:`from_mapping`."""
        return {
            "fields": dict(self.fields),
            "transaction_id_from": self.transaction_id_from,
            "event_time_from": self.event_time_from,
            "format": self.format,
            "avro": self.avro.as_mapping(),
        }


def pinned_schemas(files: Mapping[Any, Any]) -> tuple[tuple[int, str], ...]:
    """``stream.message.avro_schemas`` (schema id -> ``.avsc`` path) as (id, schema text) pairs, read here
    on the driver so the workers need no copy of the files."""
    out = []
    for schema_id, path in sorted(files.items(), key=lambda kv: str(kv[0])):
        try:
            number = int(schema_id)
        except (TypeError, ValueError):
            raise ConfigError(f"stream.message.avro_schemas: '{schema_id}' is not a schema id (an integer)") from None
        try:
            out.append((number, Path(str(path)).read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"stream.message.avro_schemas: cannot read schema {number} from {path}: {exc}") from None
    return tuple(out)


NATIVE = MessageContract()
