"""Importing a library that scans every installed package's entry points for its own plugins, without the scan."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["own_entry_points"]


@contextmanager
def own_entry_points(distribution: str, group_prefix: str) -> Iterator[None]:
    """While inside, `importlib.metadata.entry_points(group=...)` of a group starting with `group_prefix` reads only
    the entry points of `distribution` (one file instead of every installed package's); other calls are unchanged.

    For imports of a library whose module body does the scan (`from importlib.metadata import entry_points` and a
    call at class level): a name bound inside keeps the narrowed function, so give the library only instances,
    never a plugin alias that another package would provide.
    """
    scan_all = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        group = params.get("group")
        if len(params) == 1 and isinstance(group, str) and group.startswith(group_prefix):
            try:
                return importlib.metadata.distribution(distribution).entry_points.select(group=group)
            except importlib.metadata.PackageNotFoundError:
                pass
        return scan_all(**params)

    importlib.metadata.entry_points = entry_points  # type: ignore[assignment]
    try:
        yield
    finally:
        importlib.metadata.entry_points = scan_all
