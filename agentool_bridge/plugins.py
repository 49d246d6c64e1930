"""Find AgenTools that other packages ship: entry points and `module:factory` references.

A toolkit factory takes no arguments and registers its AgenTools with `register_agentool` or
`create_agentool`; loading it with an `injector` makes that injector active for the call, so the
AgenTools land in its registry.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from .errors import ToolkitLoadError
from .injector import AgenToolInjector, get_injector

__all__ = ["ENTRY_POINT_GROUP", "discover_toolkits", "load_toolkit"]

ENTRY_POINT_GROUP = "agentool_bridge.toolkits"
logger = logging.getLogger(__name__)


def _call_factory(label: str, factory: Any, injector: AgenToolInjector | None) -> Any:
    if not callable(factory):
        raise ToolkitLoadError(f"Toolkit {label!r} is not callable: it must be a zero-argument factory.")
    try:
        with (injector or get_injector()).activate():
            return factory()
    except Exception as exc:
        raise ToolkitLoadError(f"Toolkit factory {label!r} failed: {exc}") from exc


def load_toolkit(reference: str, *, injector: AgenToolInjector | None = None) -> Any:
    """Import `module:factory` (or `module.factory`) and call the factory; return what it returns.

    The factory registers into `injector` (default: the active one, see `get_injector`).
    """
    module_name, sep, attr = reference.partition(":")
    if not sep:
        module_name, _, attr = reference.rpartition(".")
    if not module_name or not attr:
        raise ToolkitLoadError(f"Toolkit reference {reference!r} must look like 'package.module:factory'.")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ToolkitLoadError(f"Cannot import toolkit module {module_name!r}: {exc}") from exc
    try:
        factory: Callable[[], Any] = getattr(module, attr)
    except AttributeError:
        raise ToolkitLoadError(f"Module {module_name!r} has no factory {attr!r}.") from None
    return _call_factory(reference, factory, injector)


def discover_toolkits(
    group: str = ENTRY_POINT_GROUP, *, strict: bool = False, injector: AgenToolInjector | None = None
) -> list[str]:
    """Call every factory registered under the entry-point group; return the entry-point names.

    Factories register into `injector` (default: the active one). A failing factory is logged
    and skipped, or raised as `ToolkitLoadError` when `strict`.
    """
    loaded: list[str] = []
    for ep in entry_points(group=group):
        try:
            _call_factory(ep.value, ep.load(), injector)
        except Exception as exc:
            if strict:
                if isinstance(exc, ToolkitLoadError):
                    raise
                raise ToolkitLoadError(f"Cannot load toolkit entry point {ep.name!r}: {exc}") from exc
            logger.warning("Skipping toolkit entry point %s: %s", ep.name, exc)
            continue
        loaded.append(ep.name)
    return loaded
