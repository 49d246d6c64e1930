"""Version checks of the libraries that the adapters use beyond their public API: httpx2 and httpcore2 here
(`toolkits/http/_httpx.py`), APScheduler, pydantic and mcp in mcp_scheduler (`_engine.py`, `_pydantic.py`,
`server/_sdk.py`)."""

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
        wanted = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
        raise RuntimeError(
            f"{distribution} {installed} is installed; {label} supports {wanted} (pinned in pyproject.toml): "
            f"install a supported version (pip install '{distribution}{wanted}')."
        )
    return installed
