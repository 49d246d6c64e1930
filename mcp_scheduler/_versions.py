"""Version checks of the libraries that the adapters (`_engine.py`, `_pydantic.py`, `server/_sdk.py`) use beyond
their public API."""

from __future__ import annotations

from importlib.metadata import version

__all__ = ["require_version"]


def require_version(distribution: str, supported: tuple[tuple[int, int], tuple[int, int]], label: str) -> str:
    """The installed version of `distribution`; `RuntimeError` if it is outside [supported[0], supported[1]).

    `label` names the adapter in the message (and where the range is pinned).
    """
    installed = version(distribution)
    parts = tuple(int(p) for p in installed.split(".")[:2] if p.isdigit())
    low, high = supported
    if not low <= parts < high:
        raise RuntimeError(
            f"{distribution} {installed} is installed; {label} supports >={low[0]}.{low[1]},<{high[0]}.{high[1]} "
            "(pinned in pyproject.toml)."
        )
    return installed
