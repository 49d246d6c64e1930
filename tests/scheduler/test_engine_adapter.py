"""The APScheduler adapter's compatibility check: it passes on the pinned version and names what changed."""

from __future__ import annotations

import pytest

from agentool_bridge import versions
from mcp_scheduler import _engine


def test_the_installed_apscheduler_is_one_the_engine_adapter_knows() -> None:
    _engine.check_apscheduler()


def test_an_apscheduler_outside_the_supported_range_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "version", lambda name: "4.0.0a6")
    with pytest.raises(RuntimeError, match=r"apscheduler 4\.0\.0a6 is installed.*>=3\.11,<3\.12"):
        _engine.check_apscheduler()


def test_a_restored_job_that_no_longer_calls_dispatch_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "_DISPATCH_REF", "mcp_scheduler._engine:check_apscheduler")
    with pytest.raises(RuntimeError, match="restored the job function"):
        _engine.check_apscheduler()


def test_a_job_built_without_an_attribute_apscheduler_restores_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _engine._build_job

    def without_name(*args: object) -> object:
        job = built(*args)  # type: ignore[arg-type]
        del job.name
        return job

    monkeypatch.setattr(_engine, "_build_job", without_name)
    with pytest.raises(RuntimeError, match="attributes the engine adapter does not set as it does: name"):
        _engine.check_apscheduler()
