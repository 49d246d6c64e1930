"""Errors of `mcp-scheduler install` and `mcp-scheduler service`: each says what to do instead."""

from __future__ import annotations

from ..errors import SchedulerError

__all__ = ["ConfigFileError", "InstallError"]


class InstallError(SchedulerError, RuntimeError):
    """A client configuration or a user service could not be set up as asked; nothing was half written."""


class ConfigFileError(InstallError, ValueError):
    """A client's configuration file cannot be merged into safely (not JSON, not an object): left untouched."""
