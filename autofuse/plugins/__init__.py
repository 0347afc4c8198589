"""Plugins: what is installed, and registering plugin objects by hand.

Installed plugins declare an entry point in the ``autofuse`` group and are loaded the first
time autofuse needs its learners, combiners or metrics (never at ``import autofuse``).
``AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD=1`` loads none of them; ``AUTOFUSE_PLUGINS=a,b`` loads
only those (entry-point or distribution names). In a notebook or a test,
``register(obj)`` adds any object with ``@autofuse.hookimpl`` functions and
``unregister`` removes it. See ``docs/plugins.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autofuse.plugins._host import (
    ALLOW_ENV,
    DISABLE_ENV,
    ENTRY_POINT_GROUP,
    HOST,
    PluginInfo,
    PluginWarning,
)

if TYPE_CHECKING:
    from autofuse.combiners import CombinerSpec
    from autofuse.learners import LearnerSpec
    from autofuse.metrics import MetricSpec

__all__ = ["ALLOW_ENV", "DISABLE_ENV", "ENTRY_POINT_GROUP", "PluginInfo", "PluginWarning",
           "combiners", "distributions_of", "learners", "list_plugins", "metrics", "register",
           "unregister"]


def register(plugin: Any, name: str | None = None) -> str:
    """Register ``plugin`` (a module, class or instance with ``@autofuse.hookimpl``
    functions) for this process; returns its name. What it registers is used by the next
    fit. Raises ``ValueError`` if it is already registered or implements a hook autofuse
    does not define."""
    return HOST.register(plugin, name)


def unregister(plugin: Any) -> None:
    """Remove a plugin registered with ``register`` or loaded from an entry point (the
    object or its name); the built-in plugin stays."""
    HOST.unregister(plugin)


def list_plugins() -> list[PluginInfo]:
    """Every plugin known to this process: the built-ins, installed ones (loaded, skipped
    or failed, with the reason) and registered ones, with what each registered."""
    return HOST.infos()


def distributions_of(learners: Any = (), combiners: Any = (), metrics: Any = ()
                     ) -> tuple[str, ...]:
    """The installed distributions (other than autofuse) that registered these names: what
    a saved model records the versions of."""
    registry = HOST.registry()
    owners = {registry.owner.get((kind, name))
              for kind, names in (("learners", learners), ("combiners", combiners),
                                  ("metrics", metrics)) for name in names}
    return tuple(sorted({i.distribution for i in HOST.infos() if i.name in owners
                         and i.distribution and i.distribution != "autofuse"}))


def learners() -> dict[str, LearnerSpec]:
    """Every registered learner, by name."""
    return dict(HOST.registry().learners)


def combiners() -> dict[str, CombinerSpec]:
    """Every registered combiner, by name."""
    return dict(HOST.registry().combiners)


def metrics() -> dict[str, MetricSpec]:
    """Every registered metric, by name."""
    return dict(HOST.registry().metrics)
