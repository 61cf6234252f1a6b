"""The MLflow seam: tracking and registry setup from the config (sqlite + local artifacts by
default), the champion's alias, and registered versions downloaded, checked and loaded without
unpickling.

Kept apart from the pyfunc model (fraud_ml.training.pyfunc_model) so the streaming driver,
which ships versions to the workers, does not import XGBoost (and with it scikit-learn): about
90 MB of its memory.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from fraud_ml.config import Config
from fraud_ml.errors import ModelFormatError, ModelNotFoundError

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


CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"


def verify_model_dir(model_dir: str | Path) -> None:
    """Refuse a downloaded model version that is not the champion pyfunc logged from code.

    Loading must run only this project's code: a ``python_model.pkl`` (cloudpickle) or any other
    pickle, or another flavor's loader, is refused with one clear line instead of being unpickled.
    """
    import yaml

    model_dir = Path(model_dir)
    try:
        flavor = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))["flavors"]["python_function"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ModelFormatError(f"{model_dir} is not an MLflow pyfunc model ({exc})") from None
    pickles = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle"))
    if flavor.get("loader_module") != CODE_MODEL_LOADER or "python_model" in flavor or pickles:
        raise ModelFormatError(
            f"{model_dir} was not logged as the champion pyfunc from code (loader {flavor.get('loader_module')}, "
            f"pickles: {pickles or 'none'}): refusing to unpickle it; register a new version with `make train`"
        )


DOWNLOADS_PREFIX = "fraud-ml-models-"  # then the owner's pid: fraud-ml-models-<pid>-<random>


def sweep_orphaned_downloads(parent: Path) -> None:
    """Remove the download folders in ``parent`` whose owner process is gone (a job stopped by SIGTERM
    or SIGKILL runs no exit handler); a folder whose pid is alive, or was reused, is left alone."""
    import psutil

    for root in parent.glob(f"{DOWNLOADS_PREFIX}*-*"):
        pid = root.name[len(DOWNLOADS_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            try:
                shutil.rmtree(root)
            except FileNotFoundError:  # another starting process swept it first
                pass


@functools.cache
def _download_root() -> Path:
    """This process's folder of downloaded model versions, removed when the process exits: a stream
    keeps the archives it shipped to its executors, and a loaded pyfunc its files, until then. The
    folders of processes that died without exiting are swept first."""
    owner = os.getpid()  # a forked worker inherits the cache, never the removal
    sweep_orphaned_downloads(Path(tempfile.gettempdir()))
    root = Path(tempfile.mkdtemp(prefix=f"{DOWNLOADS_PREFIX}{owner}-"))

    def remove() -> None:
        if os.getpid() == owner and root.exists():
            shutil.rmtree(root)

    atexit.register(remove)
    return root


def download_verified(model_uri: str) -> str:
    """Download a model version from the registry into a new folder (removed at process exit) and check
    it was logged from code."""
    import mlflow.artifacts

    model_dir = mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=f"{tempfile.mkdtemp(dir=_download_root())}/model"
    )
    verify_model_dir(model_dir)
    return model_dir


def load_verified(model_uri: str) -> "mlflow.pyfunc.PyFuncModel":
    """The pyfunc of a registered version, loaded only after :func:`verify_model_dir` accepted it."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(download_verified(model_uri))
