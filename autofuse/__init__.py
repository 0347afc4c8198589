"""autofuse: AutoML that searches many learners and fuses them into one strong model.

The selection core is in place; the one-call ``fit`` API is being built. Today's public
entry point is :class:`autofuse.combiners.CaruanaSelection`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("autofuse")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
