"""Ways to combine the models of a library into one prediction: the fusion contract and
the built-in combiners.

A combiner (``Combiner``) fits on a ``LibraryView`` of the model library and returns a
``Fusion`` that the fused model keeps and predicts through; a weighted blend is one kind
(``WeightedFusion``). Combiners reach a run through the ``autofuse_register_combiners``
hook, each described by a ``CombinerSpec``; the built-ins (``best``, ``average``,
``caruana``, ``stacking``, ``prune``, ``auto``) register through the same hook.
``CaruanaSelection`` is greedy ensemble selection on plain arrays.
"""

from autofuse.combiners._base import Combiner
from autofuse.combiners._caruana import CaruanaSelection
from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._spec import CombinerSpec
from autofuse.combiners._view import LibraryView

__all__ = ["CaruanaSelection", "Combiner", "CombinerSpec", "Fusion", "LibraryView",
           "WeightedFusion"]
