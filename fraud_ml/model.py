"""Where champion versions registered before the subpackages find their model class.

A version logged as models-from-code keeps the code file it was logged with, and the files
logged before the split import ``fraud_ml.model.ChampionModel``; new versions import it from
``fraud_ml.training.pyfunc_model``.
"""

from fraud_ml.training.pyfunc_model import ChampionModel

__all__ = ["ChampionModel"]
