"""Ways to combine the models of a library into one prediction."""

from autofuse.combiners._caruana import CaruanaSelection

__all__ = ["CaruanaSelection"]
