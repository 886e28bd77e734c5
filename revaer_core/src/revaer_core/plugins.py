"""Finding runtime-store plugins and loading the selected one.

Plugins advertise themselves in the ``revaer.runtime`` entry-point group; the
entry point's name is the backend's name. Only the selected backend's entry
point is imported, so a broken plugin that is not selected cannot stop
startup.

pluggy's ``load_setuptools_entrypoints(group, name)`` can load one entry point
by name too; Revaer has its own loader because it needs what that one does not
do: an entry point that names a class is instantiated (pluggy would register
the class itself, and its hooks would be unbound functions), a backend that is
not installed gets the ``pip install`` line that fixes it, and an import that
fails is reported with the distribution and version it came from.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
from collections.abc import Collection, Mapping

import attrs

from revaer_core.errors import ConfigError, PluginError
from revaer_core.hookspecs import NAMESPACES
from revaer_core.settings import RuntimeSettings
from revaer_core.store import RuntimeStore, new_plugin_manager
from revaer_core.storetypes import StoreRole

log = logging.getLogger(__name__)

GROUP = "revaer.runtime"

#: Distributions of the backends Revaer's own project publishes, for install hints.
KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "memory": "revaer-runtime-memory",
    "postgres": "revaer-runtime-pg",
}

#: Every hook name, in spec order: the order of :data:`NAMESPACES` and of each namespace's definitions.
HOOK_NAMES: tuple[str, ...] = tuple(
    name for namespace in NAMESPACES for name, member in vars(namespace).items() if inspect.isfunction(member)
)


@attrs.frozen
class InstalledPlugin:
    """An entry point of the ``revaer.runtime`` group, before or after loading it."""

    name: str
    distribution: str
    version: str
    value: str  #: ``module:attribute`` the entry point refers to
    hooks: tuple[str, ...] = ()  #: hooks it implements, once loaded
    error: str | None = None  #: why it failed to load, if it did


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


def _describe(ep: importlib.metadata.EntryPoint) -> InstalledPlugin:
    dist = ep.dist
    return InstalledPlugin(
        name=ep.name,
        distribution=dist.name if dist else "unknown",
        version=dist.version if dist else "unknown",
        value=ep.value,
    )


def implemented_hooks(plugin: object) -> tuple[str, ...]:
    """Names of the runtime hooks ``plugin`` implements, in spec order (:data:`HOOK_NAMES`).

    Asks pluggy (``get_hookcallers``) on a plugin manager of its own, so what
    is listed is exactly what registering the plugin makes callable.

    :raises pluggy.PluginValidationError: when an implementation does not fit its spec.
    """
    pm = new_plugin_manager()
    pm.register(plugin)
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    return tuple(name for name in HOOK_NAMES if name in implemented)


def instantiate(target: object) -> object:
    """The plugin object for an entry point's target: a class is instantiated, a module used as is."""
    return target() if isinstance(target, type) else target


def load_plugin(name: str) -> tuple[object, InstalledPlugin]:
    """Import the entry point named ``name`` and build its plugin object.

    :raises PluginError: when no such entry point is installed (naming the
        package to install) or when importing it fails (naming its distribution).
    """
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        installed = ", ".join(ep.name for ep in _entry_points()) or "none"
        dist = KNOWN_DISTRIBUTIONS.get(name)
        fix = f"pip install {dist}" if dist else f"install the package that provides the {GROUP!r} entry point {name!r}"
        raise PluginError(
            f"runtime backend {name!r} is not installed ({fix}, or set runtime.backend to one of: none, {installed})"
        )
    ep = matches[0]
    info = _describe(ep)
    try:
        plugin = instantiate(ep.load())
        hooks = implemented_hooks(plugin)
    except Exception as exc:
        raise PluginError(
            f"runtime backend {name!r} from {info.distribution} {info.version} failed to load: "
            f"{type(exc).__name__}: {exc} (reinstall it, or select another backend)"
        ) from exc
    return plugin, attrs.evolve(info, hooks=hooks)


def installed_plugins() -> list[InstalledPlugin]:
    """Every runtime plugin installed, each loaded to list its hooks; failures are reported, not raised."""
    found: list[InstalledPlugin] = []
    for ep in _entry_points():
        try:
            _, info = load_plugin(ep.name)
        except PluginError as exc:
            info = attrs.evolve(_describe(ep), error=str(exc.__cause__ or exc))
        found.append(info)
    return found


def check_backend_tables(settings: RuntimeSettings, installed: Collection[str] | None = None) -> None:
    """Refuse a ``[runtime.<name>]`` table that names no installed backend: it is almost always a typo.

    The settings loader cannot check this, as it must not look plugins up;
    here the entry-point names are at hand, and reading them imports nothing.
    A table for an installed backend that is not selected is fine (an operator
    keeps ``[runtime.postgres]`` while running ``memory`` for a while), and so
    is the configured backend's own table even when it is not installed: then
    :func:`load_plugin` says which package to install, which helps more. The
    table of one of Revaer's own backends that is not installed only warns:
    uninstalling a backend is a rollback and must not stop anything.

    :param installed: backend names to accept; default: the ``revaer.runtime`` entry points.
    :raises ConfigError: naming ``runtime.<name>``, the closest installed name, and the selected backend.
    """
    names = {ep.name for ep in _entry_points()} if installed is None else set(installed)
    known = names | {settings.backend}
    for table in sorted(set(settings.backend_options) - known):
        close = difflib.get_close_matches(table, sorted(known - {"none"}), n=1)
        dist = KNOWN_DISTRIBUTIONS.get(table)
        if dist and not close:
            # Revaer's own backend, uninstalled: the uninstall is a rollback, which must not fail
            log.warning("[runtime.%s] configures a backend that is not installed (%s); it is unused", table, dist)
            continue
        fix = f"did you mean [runtime.{close[0]}]?" if close else "rename it to the backend it configures, or remove it"
        raise ConfigError(
            f"runtime.{table}",
            f"no installed runtime backend is named {table!r}; {fix} "
            f"(installed: {', '.join(sorted(names)) or 'none'}; selected: {settings.selected_backend or 'none'})",
        )


def open_store(settings: RuntimeSettings, role: StoreRole = StoreRole.DAEMON) -> RuntimeStore:
    """The store the settings select: opened and configured, or the no-store facade.

    The ``[runtime.<name>]`` tables are checked first, even with persistence
    off, so a typo is found on the day it is made rather than on the day the
    store is switched back on; a table of one of Revaer's own backends that
    was uninstalled only warns, so that the uninstall stays a rollback.
    """
    check_backend_tables(settings)
    name = settings.selected_backend
    if name is None:
        log.info("runtime persistence is off: state lives in memory only")
        return RuntimeStore.none()
    plugin, _ = load_plugin(name)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = RuntimeStore.open(
        plugin, name=name, options=settings.options_for(name), data_dir=settings.data_dir, role=role
    )
    log.info("runtime store %r opened", name)
    return store
