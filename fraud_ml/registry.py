"""Registered model versions: download, check and load the champion pyfunc without unpickling.

Kept apart from fraud_ml.model so the streaming driver, which ships versions to the workers,
does not import XGBoost (and with it scikit-learn): about 90 MB of its memory.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from fraud_ml.errors import ModelFormatError

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
            f"pickles: {pickles or 'none'}): refusing to unpickle it; register a new version with `make train`")


def download_verified(model_uri: str) -> str:
    """Download a model version from the registry into a new folder and check it was logged from code."""
    import mlflow.artifacts

    model_dir = mlflow.artifacts.download_artifacts(artifact_uri=model_uri,
                                                    dst_path=f"{tempfile.mkdtemp(prefix='fraud-ml-')}/model")
    verify_model_dir(model_dir)
    return model_dir


def load_verified(model_uri: str) -> "mlflow.pyfunc.PyFuncModel":
    """The pyfunc of a registered version, loaded only after :func:`verify_model_dir` accepted it."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(download_verified(model_uri))
