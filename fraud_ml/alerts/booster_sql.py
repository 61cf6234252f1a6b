"""The champion in the JVM: its XGBoost trees, prior shift and threshold as Spark SQL, no Python.

XGBoost sends a row left at a node when ``float32(x) < split`` (both float32) and a missing
value (NaN) the node's default way; a tree's output is its leaf value, the margin the sum of all
trees plus the base margin, the raw score ``sigmoid(margin)``. Two scorers compute the margin
(``alerts.scorer``):

* ``java``: ``io.fraudml.alerts.BoosterMargin`` (spark/udf, built by ``make jars``), a Spark SQL
  function holding the trees as arrays, registered in the session under a name derived from
  the model;
* ``sql``: each tree a nested ``CASE WHEN`` over float32 feature columns (NaN, which Spark orders
  above every number, makes ``x < split`` false as in XGBoost), leaf values summed in double.

Features are cast to FLOAT once, missing ones to NaN. The probability is then the pyfunc's
prior shift ``r p / (r p + 1 - p)`` and the decision ``probability >= threshold``
(fraud_ml.training.pyfunc_model). Parity with the pyfunc: tests/alerts/test_booster_sql.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraud_ml.alerts.jvm_functions import register_java_function
from fraud_ml.errors import ConfigError, ModelFormatError

SUPPORTED_OBJECTIVE = "binary:logistic"
SCORERS = ("java", "sql")
MARGIN_CLASS = "io.fraudml.alerts.BoosterMargin"
MARGIN_TEXT_HEADER = "booster-margin 1"  # BoosterMargin.MAGIC


@dataclass(frozen=True)
class Tree:
    """One regression tree in XGBoost's array form (node 0 is the root; -1 children mark a leaf)."""

    left: list[int]
    right: list[int]
    feature: list[int]
    split: list[float]  # the split condition of an inner node, the leaf value of a leaf
    default_left: list[bool]


@dataclass(frozen=True)
class CompiledChampion:
    """What scoring needs of a registered champion version, read from its booster and config."""

    version: str
    feature_names: list[str]
    trees: list[Tree]
    base_margin: float
    threshold: float
    prior_odds_ratio: float

    def feature_columns(self) -> dict[str, str]:
        """SQL of the float32 model inputs, by alias: ``_f<i>`` for feature i (null -> NaN)."""
        return {
            f"_f{i}": f"COALESCE(CAST(`{name}` AS FLOAT), CAST('NaN' AS FLOAT))"
            for i, name in enumerate(self.feature_names)
        }

    def tree_sql(self) -> list[str]:
        """SQL of each tree's leaf value over the ``_f<i>`` columns, in booster order."""
        return [_tree_sql(tree) for tree in self.trees]

    def margin_sql(self, leaves: str) -> str:
        """SQL of the margin: the base margin plus every element of the ``leaves`` array, summed pairwise."""
        terms = [_double(self.base_margin), *(f"{leaves}[{i}]" for i in range(len(self.trees)))]
        while len(terms) > 1:  # a balanced sum keeps the expression tree shallow (the parser recurses)
            terms = [f"({a} + {b})" if b is not None else a for a, b in zip(terms[::2], [*terms[1::2], None])]
        return terms[0]

    def margin_model_text(self) -> str:
        """The trees as ``BoosterMargin`` reads them: a header, then one line per tree of five
        comma-separated arrays (left, right, split feature, split condition or leaf value, default left)."""
        lines = [f"{MARGIN_TEXT_HEADER} {len(self.feature_names)} {len(self.trees)} {float(self.base_margin)!r}"]
        for tree in self.trees:
            fields = (tree.left, tree.right, tree.feature, [float(v) for v in tree.split], map(int, tree.default_left))
            lines.append(";".join(",".join(map(repr, values)) for values in fields))
        return "\n".join(lines)

    def probability_sql(self, raw_score: str) -> str:
        """SQL of the prior-shifted probability of a ``raw_score`` column (the pyfunc's ``prior_shift``)."""
        if self.prior_odds_ratio == 1.0:
            return raw_score
        r = _double(self.prior_odds_ratio)
        return f"LEAST(GREATEST({r} * {raw_score} / ({r} * {raw_score} + (1D - {raw_score})), 0D), 1D)"

    def decision_sql(self, probability: str) -> str:
        """SQL of the 0/1 decision: ``probability >= threshold``, as the pyfunc decides."""
        return f"CAST({probability} >= {_double(self.threshold)} AS INT)"


def check_scorer(scorer: str) -> None:
    """One ConfigError line unless ``scorer`` is one of :data:`SCORERS`."""
    if scorer not in SCORERS:
        raise ConfigError(f"alerts.scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")


def register_margin_function(spark, champion: CompiledChampion) -> str:
    """Register the champion's ``BoosterMargin`` in ``spark``'s session; return the function's name."""
    return register_java_function(spark, MARGIN_CLASS, "fraud_ml_margin", champion.margin_model_text(), "double")


def score(frame, champion: CompiledChampion, scorer: str):
    """``frame`` plus ``raw_score``, ``probability`` and ``decision``, computed in the JVM by ``scorer``.

    ``frame`` holds the champion's feature columns (numbers; nulls read as missing). With
    ``sql`` the trees are the elements of one array column and the margin their sum in the next
    projection: code generation splits an array's elements into a method each, where one sum of
    300 nested ``CASE WHEN`` would be a single method over the JVM's 64 KB limit.
    """
    from pyspark.sql import functions as F

    check_scorer(scorer)
    inputs = [F.expr(sql).alias(alias) for alias, sql in champion.feature_columns().items()]
    with_inputs = frame.select("*", *inputs)
    if scorer == "java":
        name = register_margin_function(frame.sparkSession, champion)
        margin = F.expr(f"{name}(array({', '.join(f'`{c}`' for c in champion.feature_columns())}))")
        with_margin = with_inputs.withColumn("_margin", margin)
    else:
        leaves = F.expr("array(" + ", ".join(champion.tree_sql()) + ")").alias("_leaves")
        with_margin = with_inputs.select("*", leaves).withColumn("_margin", F.expr(champion.margin_sql("`_leaves`")))
    with_score = with_margin.withColumn("raw_score", 1.0 / (1.0 + F.exp(-F.col("_margin")))).drop(
        "_margin", "_leaves", *champion.feature_columns()
    )
    with_probability = with_score.withColumn("probability", F.expr(champion.probability_sql("raw_score")))
    return with_probability.withColumn("decision", F.expr(champion.decision_sql("probability")))


def compile_booster(booster_json: dict[str, Any], model_config: dict[str, Any], version: str) -> CompiledChampion:
    """A :class:`CompiledChampion` from XGBoost's JSON model and the pyfunc's ``model_config``.

    Refuses (ModelFormatError) what the expression cannot reproduce: another objective or
    booster, categorical splits, vector leaves, several trees per round.
    """
    from fraud_ml.training.pyfunc_model import valid_odds_ratio, valid_threshold

    try:
        learner = booster_json["learner"]
        objective = learner["objective"]["name"]
        gbm = learner["gradient_booster"]
        model = gbm["model"]
        params = learner["learner_model_param"]
    except (KeyError, TypeError) as exc:
        raise ModelFormatError(f"not an XGBoost JSON model (missing {exc})") from None
    if objective != SUPPORTED_OBJECTIVE or gbm.get("name") != "gbtree":
        raise ModelFormatError(
            f"the alerts path compiles {SUPPORTED_OBJECTIVE} gbtree boosters, got {objective} {gbm.get('name')}"
        )
    if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) > 1:
        raise ModelFormatError("the alerts path compiles single-output boosters only")
    trees = [_tree(raw) for raw in model["trees"]]
    if any(int(group) != 0 for group in model.get("tree_info", [])):
        raise ModelFormatError("the alerts path compiles one output group only")
    names = list(model_config["feature_names"])
    if learner.get("feature_names") and list(learner["feature_names"]) != names:
        raise ModelFormatError("the booster's feature names differ from the model config's")
    base_score = float(np.float32(str(params["base_score"]).strip("[]")))
    if not 0.0 < base_score < 1.0:
        raise ModelFormatError(f"base_score must lie strictly between 0 and 1, got {base_score}")
    return CompiledChampion(
        version=str(version),
        feature_names=names,
        trees=trees,
        base_margin=math.log(base_score / (1.0 - base_score)),
        threshold=valid_threshold(model_config.get("threshold")),
        prior_odds_ratio=valid_odds_ratio(model_config.get("prior_odds_ratio", 1.0)),
    )


def compile_model_dir(model_dir: str | Path, version: str) -> CompiledChampion:
    """Compile a downloaded, verified champion version (fraud_ml.io.mlflow.download_verified)."""
    import xgboost as xgb
    import yaml

    from fraud_ml.training.pyfunc_model import BOOSTER_ARTIFACT, BOOSTER_FILE

    model_dir = Path(model_dir)
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))["flavors"]["python_function"]
    booster_file = next(model_dir.rglob(BOOSTER_FILE), None)
    if booster_file is None:
        raise ModelFormatError(f"{model_dir} holds no {BOOSTER_ARTIFACT} ({BOOSTER_FILE})")
    booster = xgb.Booster()
    booster.load_model(str(booster_file))
    # MLflow keeps a models-from-code version's model_config as the pyfunc flavor's "config".
    return compile_booster(json.loads(booster.save_raw("json")), flavor.get("config") or {}, version)


def _tree(raw: dict[str, Any]) -> Tree:
    if raw.get("categories_nodes"):
        raise ModelFormatError("the alerts path does not compile categorical splits")
    if int(raw.get("tree_param", {}).get("size_leaf_vector", "1")) > 1:
        raise ModelFormatError("the alerts path does not compile vector leaves")
    return Tree(
        left=[int(v) for v in raw["left_children"]],
        right=[int(v) for v in raw["right_children"]],
        feature=[int(v) for v in raw["split_indices"]],
        split=[float(v) for v in raw["split_conditions"]],
        default_left=[bool(v) for v in raw["default_left"]],
    )


def _tree_sql(tree: Tree) -> str:
    """The nested CASE WHEN of one tree (iterative: no recursion limit on deep trees)."""
    done: dict[int, str] = {}
    stack = [0]
    while stack:
        node = stack[-1]
        left, right = tree.left[node], tree.right[node]
        if left == -1:
            done[node] = _double(tree.split[node])
            stack.pop()
        elif left in done and right in done:
            x, split = f"_f{tree.feature[node]}", _float(tree.split[node])
            goes_left = f"({x} < {split} OR isnan({x}))" if tree.default_left[node] else f"{x} < {split}"
            done[node] = f"CASE WHEN {goes_left} THEN {done.pop(left)} ELSE {done.pop(right)} END"
            stack.pop()
        else:
            stack.extend(child for child in (right, left) if child not in done)
    return done[0]


def _float(value: float) -> str:
    """A FLOAT literal holding exactly ``float32(value)`` (the shortest repr round-trips)."""
    return f"{np.float32(value)!r}".removeprefix("np.float32(").removesuffix(")") + "F"


def _double(value: float) -> str:
    """A DOUBLE literal holding exactly ``value``."""
    return f"{float(value)!r}D"
