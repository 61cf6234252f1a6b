"""The champion pyfunc as MLflow "models from code": logging copies this file, loading runs it.

No ``python_model.pkl`` is written or unpickled: a registered version holds this code, the
XGBoost booster in its own UBJSON format and the threshold in ``model_config``.
"""

from mlflow.models import set_model

from fraud_ml.training.pyfunc_model import ChampionModel

set_model(ChampionModel())
