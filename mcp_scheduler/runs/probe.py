"""One check of a job's condition (`policy.when`): its http or mcp call, made as a run of the job would make it, and
whether its result holds.

The call goes through the runtime's injector acting as the job's owner (`owners.run_principal`), under the job's
stored address policy (`RunInfo.address_policy`, which http obeys on top of its process's) and with only the `!env:`
secrets the operator allows, revealed to this call alone; its result is judged by `holds` exactly as a run's result
by the job's success checks (`runs.checks.judged`). A call that raises or times out is no answer: `Observation.holds`
is None and `error` says why (secrets redacted).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from agentool_bridge import AgenToolInjector
from agentool_bridge.context import RunInfo, running
from agentool_bridge.errors import clip_text
from agentool_bridge.redaction import revealing
from agentool_bridge.secrets import Secrets, redact, resolve_env

from ..jobs import JobDefinition
from ..owners import run_principal
from ..policies import ConditionWhen
from ..principals import acting_as
from .checks import judged
from .delivery import Outcome, settled

__all__ = ["ERROR_CHARS", "Observation", "probe"]

ERROR_CHARS = 300
"""Most characters of a failed check's error that the observation keeps."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What one check saw: `holds` True or False, or None when the call failed (`error`); `result`: the call's
    result in JSON form (what `!trigger:result` gives a run the change starts)."""

    holds: bool | None
    result: Any = None
    error: str | None = None


async def probe(
    injector: AgenToolInjector, definition: JobDefinition, when: ConditionWhen, *, environ: Mapping[str, str],
    secret_names: Collection[str], within: float,
) -> Observation:
    """Make the check of `when` for the job `definition` (at most `within` seconds) and judge its result."""
    revealed: Secrets = {}
    try:
        input_data, revealed = resolve_env(when.input_data, environ, secret_names)
        info = RunInfo(definition.job_id, f"check-{secrets.token_hex(8)}", "condition", None, definition.job_name,
                       definition.address_policy)
        with running(info), injector.activate(), revealing(revealed), acting_as(run_principal(definition)):
            with anyio.fail_after(within):
                result = await injector.run(when.agentool_name, input_data)
    except TimeoutError:
        return Observation(None, error=f"the {when.agentool_name} check took longer than {within:g} s")
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
        return Observation(None, error=clip_text(str(redact(said, revealed)) if revealed else said, ERROR_CHARS))
    outcome = judged(settled(Outcome("success", result=result, revealed=revealed)), when.holds, when.agentool_name)
    return Observation(outcome.status == "success", outcome.result)
