"""scikit-learn-compatible MLP estimators that train on any GPU through wgpu.

``MLPClassifier`` and ``MLPRegressor`` take scikit-learn's parameters and drop into its
Pipelines, ``cross_val_score`` and searches; ``GridSearchCV`` and ``HalvingGridSearchCV``
train every fold x grid point of a shape as one stacked GPU job. ``adapter()`` names the
device this process trains on.
"""

from ._core import TrainingError, adapter
from ._estimators import MLPClassifier, MLPRegressor
from ._search import GridSearchCV, HalvingGridSearchCV

__all__ = ["MLPClassifier", "MLPRegressor", "GridSearchCV", "HalvingGridSearchCV", "TrainingError", "adapter"]
__version__ = "0.1.0"
