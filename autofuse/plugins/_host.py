"""The plugin host: one pluggy manager, guarded entry-point loading, and the registry.

Nothing here runs at ``import autofuse``: the first call that needs learners, combiners or
metrics (a fit, ``autofuse.plugins.list_plugins()``...) creates the manager, registers the
built-in plugin, loads the ``autofuse`` entry points once, and then asks every plugin's
hooks what it registers. A plugin that fails to import, to register with pluggy, or inside
its hook is reported in a ``PluginWarning`` naming it and the error, and left out; so is
each thing it registers under a name another plugin already took.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from autofuse import hookspecs

#: Entry-point group that installed plugins declare.
ENTRY_POINT_GROUP = "autofuse"
#: Set to 1 to load no installed plugin (only the built-ins and programmatic ones).
DISABLE_ENV = "AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated entry-point or distribution names: load only these installed plugins.
ALLOW_ENV = "AUTOFUSE_PLUGINS"
#: The built-in learners, combiners and metrics, registered through the same hooks.
BUILTIN = "autofuse.builtins"

KINDS = ("learners", "combiners", "metrics")


class PluginWarning(UserWarning):
    """A plugin could not be loaded, or something it registered was refused."""


@dataclass
class PluginInfo:
    """What one plugin is and what it registered."""

    name: str  # the entry point's name, "autofuse.builtins", or the programmatic name
    source: str  # "builtin", "entry point" or "registered"
    distribution: str | None = None
    version: str | None = None
    learners: list[str] = field(default_factory=list)
    combiners: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loaded: bool = True


@dataclass
class Registry:
    """Everything registered, by kind and name, with the plugin that registered it."""

    learners: dict[str, Any] = field(default_factory=dict)
    combiners: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)


def _spec_types() -> dict[str, type]:
    from autofuse.combiners import CombinerSpec
    from autofuse.learners import LearnerSpec
    from autofuse.metrics import MetricSpec

    return {"learners": LearnerSpec, "combiners": CombinerSpec, "metrics": MetricSpec}


def _allowed(env: str | None) -> set[str] | None:
    if env is None or not env.strip():
        return None
    return {part.strip() for part in env.split(",") if part.strip()}


class PluginHost:
    """The process's plugin manager and registry (``autofuse.plugins`` uses one)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pm: pluggy.PluginManager | None = None
        self._infos: dict[str, PluginInfo] = {}
        #: Errors from loading, by plugin name; each registry pass adds its own to these.
        self._load_errors: dict[str, list[str]] = {}
        self._registry: Registry | None = None

    # ------------------------------------------------------------- loading
    def manager(self) -> pluggy.PluginManager:
        with self._lock:
            if self._pm is None:
                pm = pluggy.PluginManager(hookspecs.PROJECT)
                pm.add_hookspecs(hookspecs)
                from autofuse import _builtins

                pm.register(_builtins, name=BUILTIN)
                self._infos[BUILTIN] = PluginInfo(BUILTIN, "builtin", "autofuse", _version())
                self._pm = pm
                if os.environ.get(DISABLE_ENV, "").strip() in ("", "0"):
                    self._load_entry_points(pm, _allowed(os.environ.get(ALLOW_ENV)))
            return self._pm

    def _load_entry_points(self, pm: pluggy.PluginManager, allowed: set[str] | None) -> None:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            info = PluginInfo(ep.name, "entry point", dist_name,
                              dist.version if dist is not None else None)
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                info.loaded = False
                self._load_error(info, f"not loaded: not in {ALLOW_ENV}")
                self._infos[ep.name] = info
                continue
            self._infos[ep.name] = info
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break autofuse
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
                continue
            try:
                if pm.is_registered(plugin):
                    raise ValueError(f"the same object is already registered as "
                                     f"{pm.get_name(plugin)!r}")
                pm.register(plugin, name=ep.name)
                _check_hooks(pm, plugin, ep.name)
            except Exception as exc:
                if pm.is_registered(plugin):
                    pm.unregister(plugin)
                self._fail(info, f"could not be registered: {type(exc).__name__}: {exc}")

    def _load_error(self, info: PluginInfo, message: str) -> None:
        self._load_errors.setdefault(info.name, []).append(message)
        info.errors.append(message)

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.loaded = False
        self._load_error(info, message)
        where = f" ({info.distribution} {info.version})" if info.distribution else ""
        warnings.warn(f"autofuse plugin {info.name!r}{where} skipped: {message}",
                      PluginWarning, stacklevel=4)

    # ------------------------------------------------------------- programmatic plugins
    def register(self, plugin: Any, name: str | None = None) -> str:
        with self._lock:
            pm = self.manager()
            name = pm.register(plugin, name=name)
            if name is None:  # pluggy returns None for a blocked name
                raise ValueError(f"plugin name {name!r} is blocked")
            try:
                _check_hooks(pm, plugin, name)
            except Exception:
                pm.unregister(plugin)
                raise
            self._infos[name] = PluginInfo(name, "registered")
            self._registry = None
            return name

    def unregister(self, plugin: Any) -> None:
        with self._lock:
            pm = self.manager()
            if isinstance(plugin, str):
                obj = pm.get_plugin(plugin)
                if obj is None:
                    raise ValueError(f"no plugin named {plugin!r} is registered; registered: "
                                     f"{', '.join(n for n, _ in pm.list_name_plugin())}")
                name = plugin
            else:
                name = pm.get_name(plugin)
                if name is None:
                    raise ValueError(f"{plugin!r} is not a registered plugin")
                obj = plugin
            if name == BUILTIN:
                raise ValueError("the built-in plugin cannot be unregistered")
            pm.unregister(obj)
            info = self._infos.get(name)
            if info is not None and info.source == "registered":
                del self._infos[name]
            elif info is not None:
                info.loaded = False
                self._load_error(info, "unregistered")
            self._registry = None

    # ------------------------------------------------------------- the registry
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = self._collect(self.manager())
            return self._registry

    def _collect(self, pm: pluggy.PluginManager) -> Registry:
        registry = Registry()
        types = _spec_types()
        for info in self._infos.values():
            for kind in KINDS:
                getattr(info, kind).clear()
            info.errors = list(self._load_errors.get(info.name, []))
        for kind in KINDS:
            caller = getattr(pm.hook, f"autofuse_register_{kind}")
            impls = sorted(caller.get_hookimpls(), key=lambda i: i.plugin_name != BUILTIN)
            for impl in impls:
                self._call(impl, kind, types[kind], registry)
        return registry

    def _call(self, impl: Any, kind: str, expected: type, registry: Registry) -> None:
        plugin = impl.plugin_name
        info = self._infos.setdefault(plugin, PluginInfo(plugin, "registered"))
        table: dict[str, Any] = getattr(registry, kind)
        pending: list[Any] = []

        def register(spec: Any) -> None:
            if not isinstance(spec, expected):
                raise TypeError(f"register() takes a {expected.__module__.split('._')[0]}."
                                f"{expected.__name__}, got {type(spec).__name__}")
            pending.append(spec)

        arguments = {"register": register}
        try:
            impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        except Exception as exc:
            message = f"hook autofuse_register_{kind} raised {type(exc).__name__}: {exc}"
            info.errors.append(message)
            warnings.warn(f"autofuse plugin {plugin!r}: {message}; nothing it registered "
                          f"there is used", PluginWarning, stacklevel=5)
            return
        for spec in pending:
            other = registry.owner.get((kind, spec.name))
            if other is not None:
                message = (f"refused {kind[:-1]} {spec.name!r}: the name is already "
                           f"registered by plugin {other!r}")
                info.errors.append(message)
                warnings.warn(f"autofuse plugin {plugin!r}: {message}", PluginWarning,
                              stacklevel=5)
                continue
            table[spec.name] = spec
            registry.owner[(kind, spec.name)] = plugin
            getattr(info, kind).append(spec.name)

    def infos(self) -> list[PluginInfo]:
        self.registry()
        return list(self._infos.values())


def _check_hooks(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Refuse a plugin that implements a hook autofuse does not define (a misspelt hook
    would otherwise do nothing, silently)."""
    unknown = sorted(caller.name for caller in pm.get_hookcallers(plugin) or []
                     if caller.spec is None)
    if unknown:
        known = ", ".join(h for h in dir(hookspecs) if h.startswith("autofuse_"))
        raise ValueError(f"plugin {name!r} implements unknown hook(s) {', '.join(unknown)}; "
                         f"autofuse's hooks are {known}")


def _version() -> str:
    from autofuse import __version__

    return __version__


HOST = PluginHost()
