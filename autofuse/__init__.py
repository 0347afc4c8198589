"""autofuse: AutoML that searches many learners and fuses them into one strong model.

``autofuse.fit(X, y, time_limit=60)`` searches scikit-learn learners with Optuna over
cross-validation and fuses the best of them into one model (``combiner=``: Caruana's
greedy ensemble selection, stacking, averaging, pruning to a budget, or ``auto``);
``AutoFuseClassifier`` / ``AutoFuseRegressor`` do the same as scikit-learn estimators.
A run in a database server is shared: ``autofuse.worker`` joins it from other processes
and machines, ``autofuse.fuse`` fuses whatever they finished.
Plugins add learners, combiners and metrics through pluggy hooks (``autofuse.hookimpl``,
``autofuse.hookspecs``, ``autofuse.plugins``).
"""

from importlib.metadata import PackageNotFoundError, version

from autofuse._api import fit
from autofuse._distributed import fuse, worker
from autofuse.hookspecs import hookimpl
from autofuse._estimators import AutoFuseClassifier, AutoFuseRegressor
from autofuse._model import FusedModel, load

try:
    __version__ = version("autofuse")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["AutoFuseClassifier", "AutoFuseRegressor", "FusedModel", "__version__", "fit",
           "fuse", "hookimpl", "load", "worker"]
