"""MLflow tracking and registry setup from the config (sqlite + local artifacts by default)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from fraud_ml.config import Config
from fraud_ml.errors import ModelNotFoundError

log = logging.getLogger(__name__)


def setup_mlflow(cfg: Config, experiment: str | None = None) -> str:
    """Point MLflow at the configured store, create the experiment if needed; return its id."""
    uri = cfg.get("mlflow.tracking_uri")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri.startswith("sqlite:///"):
        db_path = Path(uri.removeprefix("sqlite:///"))
        db_path.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri  # inherited by Spark Python workers
    name = experiment or cfg.get("mlflow.experiment")
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = cfg.get("mlflow.artifact_location")
        if location and "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
            location = Path(location).resolve().as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location or None)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def champion_uri(cfg: Config) -> str:
    """``models:/<model_name>@<alias>``."""
    return f"models:/{cfg.get('mlflow.model_name')}@{cfg.get('mlflow.alias')}"


def resolve_alias(cfg: Config, alias: str | None = None) -> tuple[str, str]:
    """(version, pinned URI ``models:/name/version``) behind the alias; clear error if absent."""
    name, alias = cfg.get("mlflow.model_name"), alias or cfg.get("mlflow.alias")
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(
            f"no model '{name}' with alias '{alias}' in {mlflow.get_registry_uri()}: "
            f"train and register one first (make train) [{str(exc).splitlines()[0][:160]}]"
        ) from None
    return str(mv.version), f"models:/{name}/{mv.version}"
