"""The hooks through which learners, combiners and metrics reach autofuse.

A plugin is a module (or any object) with functions named after these hooks, marked with
``autofuse.hookimpl``; autofuse finds installed plugins through the ``autofuse``
entry-point group (see ``docs/plugins.md``)::

    import autofuse
    from autofuse.learners import LearnerSpec

    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(LearnerSpec("my_learner", ...))

Each hook is called once per plugin with a ``register`` callable that the host owns: it
checks what it is given, refuses a name that another plugin already registered (the
message names both plugins) and records which plugin registered what. Hooks return
nothing.

Room to grow: pluggy passes an implementation only the arguments it names, so a later
version of autofuse can give a hook more arguments (for example the run's settings)
without breaking plugins written against this one. Implementations must therefore name
their arguments exactly as the specifications below do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from autofuse.combiners import CombinerSpec
    from autofuse.learners import LearnerSpec
    from autofuse.metrics import MetricSpec

#: The project name pluggy uses for autofuse's hooks (and the entry-point group).
PROJECT = "autofuse"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plugin's hook implementations: ``@autofuse.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    """Register learners the search can tune.

    Call ``register(spec)`` once per ``autofuse.learners.LearnerSpec``. A learner's name
    must be unique among every installed plugin and the built-ins; the functions in the
    spec (``space``, ``build``) must be importable module-level functions, because trials
    run in worker processes that receive the spec by pickling.
    """


@hookspec
def autofuse_register_combiners(register: Callable[[CombinerSpec], None]) -> None:
    """Register ways to combine the model library into one prediction.

    Call ``register(spec)`` once per ``autofuse.combiners.CombinerSpec``; a run picks one
    with ``autofuse.fit(..., combiner=name)``.
    """


@hookspec
def autofuse_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register metrics a run can be judged by.

    Call ``register(spec)`` once per ``autofuse.metrics.MetricSpec``; a run uses one with
    ``autofuse.fit(..., metric=name)``.
    """
