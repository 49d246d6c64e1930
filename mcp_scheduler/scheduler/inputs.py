"""Checks and parsing of requests' fields: the AgenTool input, the schedule's spacing, max_instances, the run
policy (its times and catch-up window), and the address policy a job accepted here stores."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from agentool_bridge import AgenToolError, AgenToolInjector, AgenToolInputError, AgenToolNotFoundError
from agentool_bridge.context import current_run
from agentool_bridge.errors import UnknownOperationError, clip, describe_errors
from agentool_bridge.redaction import revealing
from agentool_bridge.secrets import SecretNotAllowedError, SecretNotSetError, redact, resolve_env
from agentool_bridge.toolkits import AddressRules

from ..errors import InvalidJobInputError, InvalidScheduleError, UnknownJobKindError
from ..fire_times import next_fire_time
from ..jobs import JobDefinition
from ..policies import PolicyInput, RunPolicy, catchup_seconds
from ..schedules import Schedule, parse_time
from .config import ServiceConfig

__all__ = ["RequestChecks", "UPDATABLE", "first_fire", "policy_of", "preview_note"]


class RequestChecks:
    """The checks a job's fields pass before it is stored, with this process's settings."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        injector: AgenToolInjector,
        environ: Mapping[str, str],
        secret_names: Collection[str],
        address_rules: AddressRules,
    ) -> None:
        self.config = config
        self.injector = injector
        self.environ = environ
        self.secret_names = secret_names
        # What jobs accepted here store of this process's address policy (the http toolkit's settings).
        self.address_rules = address_rules

    async def check_job_input(self, agentool_name: str, input_data: dict[str, Any]) -> list[str]:
        """Check that the AgenTool exists, that every `!env:NAME` is a secret the operator allows and is set,
        and that `input_data` fits the AgenTool's schema and its own check (`!ref:` values, resolved only
        when the job runs, excepted); return the check's warnings (what may not work as meant)."""
        try:
            agentool = self.injector.get(agentool_name)
        except AgenToolNotFoundError as exc:
            raise UnknownJobKindError(agentool_name, exc.registered) from None
        try:
            resolved, revealed = resolve_env(input_data, self.environ, self.secret_names)
        except (SecretNotAllowedError, SecretNotSetError) as exc:
            raise InvalidJobInputError(f"input_data of job kind {agentool_name!r}: {exc}") from exc
        try:
            # The check sees the secrets' values: what it quotes of them (clip) comes out as the reference.
            with revealing(revealed):
                warnings = await self.injector.check(agentool.name, resolved)
            return [redact(warning, revealed) for warning in warnings]
        except AgenToolInputError as exc:
            real = [e for e in exc.errors if not _is_ref_error(e, input_data)]
            if real or not exc.errors:
                said = str(redact(exc.reason, revealed))
                said += "" if said.endswith((".", "?")) else "."
                if not isinstance(exc, UnknownOperationError):
                    said += f" Its operations: {', '.join(agentool.operations)}."
                raise InvalidJobInputError(
                    f"input_data does not fit job kind {agentool_name!r}: {said} list_agentools shows its input schema."
                ) from None
            return []
        except AgenToolError as exc:
            # An error quoting a secret must not carry it to the caller (or a log).
            if revealed and (text := str(exc)) != (clean := redact(text, revealed)):
                raise InvalidJobInputError(clean) from None
            raise

    def accepted_rules(self) -> AddressRules:
        """The address policy a job accepted now stores: this process's; no looser than the current run's
        when a job schedules or updates jobs."""
        run = current_run()
        if run is not None and run.address_policy is not None:
            return self.address_rules.strictest(run.address_policy)
        return self.address_rules

    def check_spacing(self, schedule: Schedule) -> None:
        """Refuse a schedule whose fires may come closer than `min_interval` (--min-interval)."""
        gap, least = schedule.shortest_gap(), self.config.min_interval
        if gap is None or gap >= least:
            return
        if schedule.schedule_type == "interval":
            what = f"The interval {clip(schedule.expression)} is {gap:g} s"
        else:
            what = f"Two fires of the cron schedule {clip(schedule.expression)} come {gap:g} s apart"
        raise InvalidScheduleError(
            f"{what}, shorter than the {least:g} s this server allows between two fires of a schedule "
            f"(--min-interval): give one at least {least:g} s apart, or ask the operator to lower --min-interval."
        )

    def check_instances(self, max_instances: int) -> None:
        """Refuse a max_instances above `max_runs_per_job` (--max-runs-per-job)."""
        most = self.config.max_runs_per_job
        if max_instances > most:
            raise InvalidJobInputError(
                f"max_instances {max_instances} is more than the {most} runs of one job this server lets go at "
                f"once (--max-runs-per-job): give max_instances {most} or less, or ask the operator to raise "
                "--max-runs-per-job."
            )


def policy_of(given: PolicyInput | None, base: RunPolicy, zone: str) -> RunPolicy:
    """`base` with the fields set in `given` (times read in `zone`, `catchup_window` made seconds)."""
    if given is None:
        return base
    fields = given.model_fields_set
    changes: dict[str, Any] = {name: getattr(given, name) for name in fields if name in RunPolicy.model_fields}
    for name in ("start_at", "end_at"):
        if name in fields and changes[name] is not None:
            changes[name] = parse_time(changes[name], f"policy.{name}", zone)
    if "catchup_window" in fields:
        changes["catchup_window"] = catchup_seconds(given.catchup_window)
    try:
        return RunPolicy.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        raise InvalidJobInputError(f"Invalid policy: {describe_errors(exc.errors())}") from None


UPDATABLE = (
    "schedule_type", "schedule", "timezone",  # parsed together into the schedule
    "policy",  # merged into the job's policy
    "job_name", "agentool_name", "input_data", "max_instances", "misfire_grace_time", "coalesce", "timeout",
    "result_queue", "error_queue", "success",
)


def preview_note(policy: RunPolicy, cut: bool) -> str | None:
    """How a policy shapes a preview's times, in words (None when it does not)."""
    parts: list[str] = []
    if policy.start_at is not None:
        parts.append(f"none before {policy.start_at.isoformat()}")
    if policy.end_at is not None:
        parts.append(f"none after {policy.end_at.isoformat()}")
    if policy.max_runs is not None:
        parts.append(f"at most {policy.max_runs} run{'s' if policy.max_runs > 1 else ''} in all")
    if cut and (policy.end_at is not None or policy.max_runs is not None):
        parts.append("no runs after these")
    if policy.jitter:
        parts.append(f"each run starts within {policy.jitter:g} s after the time shown (jitter; the same delay on "
                     "every replica, different per job and fire)")
    return "; ".join(parts) or None


def first_fire(definition: JobDefinition, now: datetime) -> datetime | None:
    """A job's first fire time from `now`, within its policy's bounds."""
    policy = definition.policy
    return next_fire_time(definition.schedule, None, now, start_at=policy.start_at, end_at=policy.end_at)


def _is_ref_error(error: dict[str, Any], data: dict[str, Any]) -> bool:
    value: Any = data
    for part in str(error.get("loc", "")).split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return isinstance(value, str) and value.startswith("!ref:")
