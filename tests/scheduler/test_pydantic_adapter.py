"""The pydantic adapter (`_pydantic.py`): frozen models share one fields-set per combination of names, and the
compatibility check passes on the pinned pydantic and names what changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentool_bridge import versions
from mcp_scheduler import _pydantic
from mcp_scheduler.jobs import JobDefinition
from mcp_scheduler.policies import RunPolicy
from mcp_scheduler.schedules import IntervalSchedule, load_schedule, parse_schedule

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_the_installed_pydantic_is_one_the_adapter_knows() -> None:
    _pydantic.check_pydantic()


def test_a_pydantic_outside_the_supported_range_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "version", lambda name: "3.0.0")
    with pytest.raises(RuntimeError, match=r"pydantic 3\.0\.0 is installed.*>=2\.11,<3\.0"):
        _pydantic.check_pydantic()


def test_a_fields_set_that_pydantic_does_not_keep_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pydantic, "_shared", set)  # a set of its own per instance: what sharing is not
    with pytest.raises(RuntimeError, match=r"changed what the pydantic adapter relies on: __pydantic_fields_set__"):
        _pydantic.check_pydantic()


def test_frozen_models_share_one_set_and_still_dump_only_what_was_set() -> None:
    first, second = RunPolicy(max_attempts=3), RunPolicy.model_validate({"max_attempts": 5})
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.model_dump(exclude_unset=True) == {"max_attempts": 3}
    assert second.model_dump_json(exclude_unset=True) == '{"max_attempts":5}'

    hourly, daily = (parse_schedule("interval", every, "UTC", now=NOW) for every in ("1 hour", "1 day"))
    assert hourly.__pydantic_fields_set__ is daily.__pydantic_fields_set__
    stored = [load_schedule(schedule.model_dump(mode="json")) for schedule in (hourly, daily)]
    assert all(isinstance(schedule, IntervalSchedule) for schedule in stored)
    assert stored[0].__pydantic_fields_set__ is stored[1].__pydantic_fields_set__
    assert stored == [hourly, daily]


def test_a_copy_with_changes_leaves_the_shared_set_of_the_others_alone() -> None:
    first, second = RunPolicy(max_attempts=3), RunPolicy(max_attempts=4)
    changed = first.model_copy(update={"jitter": 5.0})
    assert changed.model_fields_set == {"max_attempts", "jitter"}
    assert first.model_fields_set == second.model_fields_set == {"max_attempts"}
    definition = JobDefinition.model_fields["policy"]
    assert definition.annotation is RunPolicy  # the job definition keeps its policy as this frozen model
