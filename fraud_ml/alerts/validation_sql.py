"""The quarantine rules of fraud_ml.streaming.messages as Spark SQL, for the alerts path.

Real-time mode runs no Python, so the alerts query validates messages with JVM expressions:
the value is checked for size and UTF-8, parsed once into a VARIANT (``try_parse_json``, the
last of repeated keys kept as the Python readers do), and each field is typed with
``schema_of_variant``, so ``"V1": "1.5"`` is a wrong type here as it is for the decoder, not a
number read from a string. The rules and their order are those of ``decode_messages``; the
reasons are the same texts. Where the two readers cannot agree on a reason the message is
refused by both (tests/alerts/test_validation_sql.py checks that the decision agrees on every
fuzzed message):

* nesting beyond the JSON reader's own limit (1,000 levels): ``invalid JSON`` here;
* an integer of more than 38 digits reads as an infinite double here, so in ``event_time`` or
  ``label`` it is a wrong type rather than out of range;
* an id or source with an escaped astral character (two U+FFFD here, one character there) at
  exactly its length limit.

Before parsing, the text is rewritten as Python's reader would read it (a byte order mark skipped,
surrogate escapes and ``NaN`` / ``Infinity`` values rewritten; below), and a value followed by
anything but white space is invalid, as in Python. One difference in the decision remains:
Python's ``json`` reads a value encoded in UTF-16 or UTF-32 (it detects the encoding); here only
UTF-8 is JSON, so such a message is ``invalid JSON``.

``event_time`` is bounded above by the record's Kafka timestamp (a real-time batch lasts
minutes, so its start is no "now"); the Delta stream bounds it by its micro-batch's start.

With ``fast_path`` (``alerts.fast_path``) a Java function (``io.fraudml.alerts.FastMessage``,
spark/udf) first reads each message in the plain form the producer writes and returns its fields
when it certainly passes every rule; only the messages it does not take (null) go through the
rules above, which alone name reasons. It never refuses, so the decisions are those of the rules.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fraud_ml.alerts.jvm_functions import register_java_function
from fraud_ml.schema import FEATURES, ID_COL, MESSAGE_EVENT_TIME, MESSAGE_LABEL, PCA_FEATURES, SOURCE_COL
from fraud_ml.streaming.messages import INVALID_JSON, REASON, ValidationLimits, event_time_ahead_reason

INTEGER_TYPES = "('TINYINT', 'SMALLINT', 'INT', 'BIGINT')"
NUMBER_TYPES = "('TINYINT', 'SMALLINT', 'INT', 'BIGINT', 'FLOAT', 'DOUBLE')"
TYPED_FIELDS = [*FEATURES, MESSAGE_EVENT_TIME, MESSAGE_LABEL, ID_COL, SOURCE_COL]
# Needed by try_parse_json to read a repeated key (last value wins) instead of refusing the message;
# validate() sets it on the frame's session.
SPARK_CONF = {"spark.sql.variant.allowDuplicateKeys": "true"}
FAST_PATH_CLASS = "io.fraudml.alerts.FastMessage"
FAST = "`_fast`"  # the fast path's struct column (null: the rules decide)
FAST_PATH_DDL = ", ".join(
    [f"{ID_COL} STRING", f"{SOURCE_COL} STRING", f"{MESSAGE_EVENT_TIME} BIGINT", f"{MESSAGE_LABEL} INT"]
    + [f"`{f}` DOUBLE" for f in FEATURES]
)


def _quote(text: str) -> str:
    """A SQL string literal (Spark's escapes: backslash and single quote)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _type(field: str) -> str:
    return f"`_t_{field}`"


def _is_number(t: str) -> str:
    return f"({t} IN {NUMBER_TYPES} OR {t} LIKE 'DECIMAL(%')"


def _is_integer(t: str) -> str:
    """A JSON integer: an integer type, or a whole DECIMAL beyond BIGINT (19+ digits). The VARIANT
    reader stores a number with a fraction part of zeros (``1.0``) as a short whole DECIMAL, and the
    decoder calls that a float: only an integer too long for BIGINT is read as DECIMAL(p, 0)."""
    return f"({t} IN {INTEGER_TYPES} OR {t} RLIKE '^DECIMAL\\\\((19|[23][0-9]),0\\\\)$')"


def _type_name(t: str) -> str:
    """The decoder's name of a JSON value's type (``_type_name`` in fraud_ml.streaming.messages)."""
    return (
        f"CASE WHEN {t} = 'BOOLEAN' THEN 'boolean' WHEN {t} = 'STRING' THEN 'string' "
        f"WHEN {t} LIKE 'ARRAY%' THEN 'array' WHEN {t} LIKE 'OBJECT%' THEN 'object' ELSE 'number' END"
    )


def _names(conditions: dict[str, str]) -> str:
    """``concat_ws(', ', ...)`` of the names whose condition holds, in order."""
    return "concat_ws(', ', " + ", ".join(f"CASE WHEN {c} THEN {_quote(n)} END" for n, c in conditions.items()) + ")"


def _too_deep(limits: ValidationLimits) -> str:
    """True when the JSON text nests deeper than the limit.

    Fewer brackets than the limit cannot nest deeper (the decoder's own shortcut); otherwise
    escape pairs, then strings, then every character but brackets are removed, and the limit's
    number of passes each strip every innermost ``{}`` / ``[]`` pair: brackets left over mean
    more levels. No pattern repeats a group: Java's regex engine recurses once per repetition
    of a group, so ``"(?:[^"\\]|\\.)*"`` overflows the task's stack on a long string.
    """
    depth = limits.max_nesting_depth
    stripped = "regexp_replace(`_text`, '\\\\\\\\.', '')"  # escape pairs (\" and \\ among them)
    stripped = f"regexp_replace({stripped}, '\"[^\"]*\"', '')"  # strings
    stripped = f"regexp_replace({stripped}, '[^\\\\[\\\\]{{}}]', '')"  # all but brackets
    for _ in range(depth):
        stripped = f"regexp_replace({stripped}, '\\\\{{\\\\}}|\\\\[\\\\]', '')"
    count = "(length(`_text`) - length(translate(`_text`, '{[', '')))"
    return f"({count} > {depth} AND length({stripped}) > 0)"


# A \uD800-\uDFFF escape (a surrogate, paired or not) that is an escape: after an even run of
# backslashes (at most 64 pairs: a repeated group costs Java's regex engine a stack frame each).
SURROGATE_ESCAPE = r"(?<!\\)((?:\\\\){0,64})\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
SURROGATE_GUARD = r"\\u[dD][89a-fA-F]"
REPLACEMENT_CHARACTER = r"$1\\uFFFD"
BOM_SKIPPED = "CASE WHEN startswith(`_text`, '\\uFEFF') THEN substr(`_text`, 2) ELSE `_text` END"


def _surrogates_replaced(text: str) -> str:
    """SQL of ``text`` with every surrogate escape read as U+FFFD.

    Spark's reader refuses a lone surrogate escape (``"\\ud800"``) where Python keeps the character
    (then refuses it in an id or source, ignores it elsewhere). U+FFFD keeps those outcomes; a
    paired escape becomes two U+FFFD instead of one astral character, which only an id or source
    exactly at its length limit can tell (refused both ways, by another rule).
    """
    replaced = f"regexp_replace({text}, {_quote(SURROGATE_ESCAPE)}, {_quote(REPLACEMENT_CHARACTER)})"
    return f"CASE WHEN {text} RLIKE {_quote(SURROGATE_GUARD)} THEN {replaced} ELSE {text} END"


# Python's JSON reader takes the tokens NaN, Infinity and -Infinity as numbers; Spark's refuses
# them. Where one stands as a value (after a colon, bracket or comma, before a comma, bracket or
# the end) it is rewritten as 1e999 / -1e999, which both read as an infinite number: the same
# outcome in every field (non-finite feature, wrong type elsewhere, ignored when unknown). Inside
# a string the rewrite can only touch an id or source that its pattern refuses anyway.
NON_FINITE_BEFORE = r"(?<=(?:^|[:\[,])\s{0,16})"
NON_FINITE_AFTER = r"(?=\s*(?:[,}\]]|$))"
NON_FINITE_GUARD = r"NaN|Infinity"


def _finite_tokens(text: str) -> str:
    """SQL of ``text`` with Python's non-finite JSON tokens rewritten as infinite numbers."""
    negative = f"regexp_replace({text}, {_quote(NON_FINITE_BEFORE + '-Infinity' + NON_FINITE_AFTER)}, '-1e999')"
    positive = (
        f"regexp_replace({negative}, {_quote(NON_FINITE_BEFORE + '(?:NaN|Infinity)' + NON_FINITE_AFTER)}, '1e999')"
    )
    return f"CASE WHEN {text} RLIKE {_quote(NON_FINITE_GUARD)} THEN {positive} ELSE {text} END"


def fast_path_text(limits: ValidationLimits) -> str:
    """``FastMessage``'s configuration: the limits and the field names, one ``key=value`` a line."""
    settings = {
        "max_message_bytes": limits.max_message_bytes,
        "max_id_length": limits.max_id_length,
        "max_source_length": limits.max_source_length,
        "id_pattern": limits.id_pattern,
        "source_pattern": limits.source_pattern,
        "max_time": repr(float(limits.max_time)),
        "max_amount": repr(float(limits.max_amount)),
        "max_abs_feature": repr(float(limits.max_abs_feature)),
        "min_event_time_ms": limits.min_event_time_ms,
        "max_event_time_ahead_ms": limits.max_event_time_ahead_ms,
        "features": ",".join(FEATURES),
        "bounded_features": ",".join(PCA_FEATURES),
        "time_feature": "Time",
        "amount_feature": "Amount",
        "id_field": ID_COL,
        "source_field": SOURCE_COL,
        "event_time_field": MESSAGE_EVENT_TIME,
        "label_field": MESSAGE_LABEL,
    }
    if any("\n" in str(v) for v in settings.values()):
        raise ValueError("a validation limit holds a line break")
    return "\n".join(f"{k}={v}" for k, v in settings.items())


def register_fast_path(spark, limits: ValidationLimits) -> str:
    """Register ``FastMessage`` for ``limits`` in ``spark``'s session; return the function's name."""
    return register_java_function(
        spark, FAST_PATH_CLASS, "fraud_ml_fast_message", fast_path_text(limits), FAST_PATH_DDL
    )


def _when_slow(sql: str) -> str:
    return f"CASE WHEN {FAST} IS NULL THEN {sql} END"


def _fast_or(field: str, cast: str | None, sql: str) -> str:
    taken = f"{FAST}.`{field}`" if cast is None else f"CAST({FAST}.`{field}` AS {cast})"
    return f"CASE WHEN {FAST} IS NOT NULL THEN {taken} ELSE {sql} END"


def fast_path_columns(stages: list[dict[str, str]]) -> list[dict[str, str]]:
    """:func:`parsed_columns`' ``stages`` behind the fast path: every helper computed only where
    ``_fast`` is null, the fields taken from ``_fast`` where it is not, and no reason there."""
    *helpers, fields, reason = stages
    helpers = [{alias: _when_slow(sql) for alias, sql in stage.items()} for stage in helpers]
    casts = {"_event_time": (MESSAGE_EVENT_TIME, "DECIMAL(38,0)"), "_label": (MESSAGE_LABEL, "DECIMAL(38,0)")}
    fields = {alias: _fast_or(*casts.get(alias, (alias, None)), sql) for alias, sql in fields.items()}
    return [*helpers, fields, {REASON: _when_slow(reason[REASON])}]


def parsed_columns(limits: ValidationLimits) -> list[dict[str, str]]:
    """The projections, in order, from a Kafka row (``value`` binary) to the fields and ``reason``.

    Each dict is one select (alias -> SQL) over the previous one's columns plus all earlier ones.
    """
    n = "`_bytes`"
    readable = f"({n} > 0 AND {n} <= {limits.max_message_bytes} AND `_utf8`)"
    stage_1 = {
        "_bytes": "coalesce(octet_length(value), 0)",
        "_utf8": "coalesce(is_valid_utf8(value), false)",
        "_text": "CAST(value AS STRING)",
    }
    # The text as Python's JSON reader sees it: a leading UTF-8 byte order mark skipped, surrogate
    # escapes and non-finite tokens rewritten (above).
    rewrites = [
        {"_no_bom": f"CASE WHEN {readable} THEN {BOM_SKIPPED} END"},
        {"_no_surrogates": _surrogates_replaced("`_no_bom`")},
        {"_json": _finite_tokens("`_no_surrogates`")},
    ]
    # try_parse_json reads the first value and ignores what follows; as an array's only element the
    # text must be one value and nothing else (json_array_length scans it without building it).
    stage_2b = {"_v": "CASE WHEN json_array_length(concat('[', `_json`, ']')) = 1 THEN try_parse_json(`_json`) END"}
    stage_3 = {"_t": "schema_of_variant(`_v`)"}
    stage_3 |= {f"_t_{f}": f"schema_of_variant(variant_get(`_v`, {_quote('$.' + f)}, 'variant'))" for f in TYPED_FIELDS}
    stage_4 = {f: f"try_variant_get(`_v`, {_quote('$.' + f)}, 'double')" for f in FEATURES}
    stage_4 |= {
        ID_COL: f"try_variant_get(`_v`, {_quote('$.' + ID_COL)}, 'string')",
        SOURCE_COL: f"try_variant_get(`_v`, {_quote('$.' + SOURCE_COL)}, 'string')",
        "_event_time": f"try_variant_get(`_v`, {_quote('$.' + MESSAGE_EVENT_TIME)}, 'decimal(38,0)')",
        "_label": f"try_variant_get(`_v`, {_quote('$.' + MESSAGE_LABEL)}, 'decimal(38,0)')",
    }
    return [stage_1, *rewrites, stage_2b, stage_3, stage_4, {REASON: reason_sql(limits)}]


def reason_sql(limits: ValidationLimits) -> str:
    """The first rule a message breaks, as the decoder words it; NULL for a valid message."""
    present = lambda f: f"({_type(f)} IS NOT NULL AND {_type(f)} <> 'VOID')"  # noqa: E731
    wrong = [
        f"CASE WHEN {present(f)} AND NOT {_is_number(_type(f))} "
        f"THEN concat({_quote(f + ' (')}, {_type_name(_type(f))}, ', expected number)') END"
        for f in FEATURES
    ]
    wrong += [
        f"CASE WHEN {present(f)} AND NOT {_is_integer(_type(f))} "
        f"THEN concat({_quote(f + ' (')}, {_type_name(_type(f))}, ', expected integer)') END"
        for f in (MESSAGE_EVENT_TIME, MESSAGE_LABEL)
    ]
    wrong += [
        f"CASE WHEN {present(f)} AND {_type(f)} <> 'STRING' "
        f"THEN concat({_quote(f + ' (')}, {_type_name(_type(f))}, ', expected string)') END"
        for f in (ID_COL, SOURCE_COL)
    ]
    id_pattern, source_pattern = (
        f"'\\\\A(?:' || {_quote(p)} || ')\\\\z'" for p in (limits.id_pattern, limits.source_pattern)
    )
    finite = lambda f: f"(NOT isnan(`{f}`) AND abs(`{f}`) < CAST('Infinity' AS DOUBLE))"  # noqa: E731
    earliest = datetime.fromtimestamp(limits.min_event_time_ms / 1000, timezone.utc)
    ahead = f"unix_millis(timestamp) + {limits.max_event_time_ahead_ms}"
    rules = [
        ("value IS NULL OR `_bytes` = 0", "'empty value'"),
        (
            f"`_bytes` > {limits.max_message_bytes}",
            f"concat('oversized message: ', `_bytes`, ' bytes > {limits.max_message_bytes}')",
        ),
        ("NOT `_utf8`", _quote(f"{INVALID_JSON}: not UTF-8")),
        ("`_v` IS NULL", _quote(INVALID_JSON)),
        ("`_t` NOT LIKE 'OBJECT%'", _quote(f"{INVALID_JSON}: not an object")),
        (_too_deep(limits), _quote(f"nesting too deep: more than {limits.max_nesting_depth} levels")),
        (
            "concat_ws('', " + ", ".join(wrong) + ") <> ''",
            "concat('wrong field type: ', concat_ws('; ', " + ", ".join(wrong) + "))",
        ),
        (f"`{ID_COL}` IS NULL OR `{ID_COL}` RLIKE '(?U)^\\\\s*$'", _quote(f"missing field: {ID_COL}")),
        (
            " OR ".join(f"`{f}` IS NULL" for f in FEATURES),
            f"concat('missing or null field: ', {_names({f: f'`{f}` IS NULL' for f in FEATURES})})",
        ),
        (
            f"length(`{ID_COL}`) > {limits.max_id_length}",
            _quote(f"invalid {ID_COL}: longer than {limits.max_id_length} characters"),
        ),
        (f"NOT `{ID_COL}` RLIKE {id_pattern}", _quote(f"invalid {ID_COL}: characters outside {limits.id_pattern}")),
        (
            f"length(`{SOURCE_COL}`) > {limits.max_source_length}",
            _quote(f"invalid {SOURCE_COL}: longer than {limits.max_source_length} characters"),
        ),
        (
            f"NOT `{SOURCE_COL}` RLIKE {source_pattern}",
            _quote(f"invalid {SOURCE_COL}: characters outside {limits.source_pattern}"),
        ),
        ("`_label` NOT IN (0, 1)", _quote(f"out of range: {MESSAGE_LABEL} must be 0 or 1")),
        (
            " OR ".join(f"NOT {finite(f)}" for f in FEATURES),
            f"concat('non-finite value in: ', {_names({f: f'NOT {finite(f)}' for f in FEATURES})})",
        ),
        ("`Amount` < 0", "'out of range: negative Amount'"),
        (f"`Amount` > {limits.max_amount!r}D", _quote(f"out of range: Amount > {limits.max_amount:g}")),
        ("`Time` < 0", "'out of range: negative Time'"),
        (f"`Time` > {limits.max_time!r}D", _quote(f"out of range: Time > {limits.max_time:g}")),
        (
            " OR ".join(f"abs(`{f}`) > {limits.max_abs_feature!r}D" for f in PCA_FEATURES),
            f"concat({_quote(f'out of range: |value| > {limits.max_abs_feature:g} in ')}, "
            f"{_names({f: f'abs(`{f}`) > {limits.max_abs_feature!r}D' for f in PCA_FEATURES})})",
        ),
        (
            f"`_event_time` < {limits.min_event_time_ms}",
            _quote(f"out of range: {MESSAGE_EVENT_TIME} before {earliest:%Y-%m-%d}"),
        ),
        (f"`_event_time` > {ahead}", _quote(event_time_ahead_reason(limits))),
    ]
    return "CASE " + " ".join(f"WHEN {condition} THEN {reason}" for condition, reason in rules) + " END"


def validate(frame, limits: ValidationLimits, fast_path: bool):
    """Kafka rows (``key``, ``value``, ``timestamp``, ...) plus ``reason`` (NULL = valid) and the fields.

    Adds ``transaction_id``, the features (double), ``event_time`` (bigint), ``label`` (int),
    ``source``; the helper columns are dropped. ``fast_path``: see the module's docstring.
    """
    from pyspark.sql import functions as F

    for key, value in SPARK_CONF.items():
        frame.sparkSession.conf.set(key, value)
    stages = parsed_columns(limits)
    if fast_path:
        name = register_fast_path(frame.sparkSession, limits)
        frame = frame.select("*", F.expr(f"{name}(value, unix_millis(timestamp))").alias(FAST.strip("`")))
        stages = fast_path_columns(stages)
    for stage in stages:
        frame = frame.select("*", *(F.expr(sql).alias(alias) for alias, sql in stage.items()))
    helpers = [c for c in frame.columns if c.startswith("_")]
    valid = F.col(REASON).isNull()
    return (
        frame.withColumn(MESSAGE_EVENT_TIME, F.when(valid, F.col("_event_time").cast("bigint")))
        .withColumn(MESSAGE_LABEL, F.when(valid, F.col("_label").cast("int")))
        .drop(*helpers)
    )
