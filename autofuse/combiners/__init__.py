"""Ways to combine the models of a library into one prediction.

``CaruanaSelection`` is the built-in (registered as ``"caruana"``); plugins add others
through the ``autofuse_register_combiners`` hook, each described by a ``CombinerSpec``.
"""

from autofuse.combiners._caruana import CaruanaSelection
from autofuse.combiners._spec import CombinerSpec

__all__ = ["CaruanaSelection", "CombinerSpec"]
