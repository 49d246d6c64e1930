"""The one mapping module of a job's derived views: what clients see of a tracked `Job` (`JobInfo`, and the
`JobSummary` of a list) is built here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from agentool_bridge.errors import clip
from agentool_bridge.toolkits import AddressRules

from ..fire_times import next_fire_time
from ..jobs import Job
from ..models import AcceptedJob, CancelledJob, JobInfo, JobSummary
from ..policies import BUFFER_LIMIT, describe_policy
from .engine import EngineHandle

__all__ = ["JobViews", "accepted_job", "job_info", "job_summary"]


class JobViews:
    """Builds a job's `JobInfo`: its next run time (the engine's while it runs), the following ones on request,
    and its runs in progress in this process (`running`)."""

    def __init__(self, engine: EngineHandle, running: Mapping[str, int], runs_per_job: int) -> None:
        self._engine = engine
        self._running = running
        self._runs_per_job = runs_per_job
        # What the runner last saw of a job's condition (policy.when), told with the policy in words.
        self.condition_note: Callable[[str], str | None] | None = None

    def info(self, job: Job, previews: int = 0, warnings: Sequence[str] = ()) -> JobInfo:
        next_run = self._engine.next_run_time(job)
        following: list[datetime] = []
        if previews and next_run is not None:
            following = [next_run]
            policy = job.definition.policy
            while len(following) < previews:
                nxt = next_fire_time(job.definition.schedule, following[-1], following[-1], start_at=policy.start_at,
                                     end_at=policy.end_at)
                if nxt is None or nxt <= following[-1]:
                    break
                following.append(nxt)
        info = job_info(job, next_run, following, self._running.get(job.job_id, 0), runs_per_job=self._runs_per_job,
                        warnings=warnings)
        if self.condition_note is not None and (note := self.condition_note(job.job_id)) is not None:
            info.policy_description += f" ({note})"
        return info

    def cancelled(self, job: Job) -> JobInfo:
        """What is true of `job` once cancel removed it: state `cancelled`, no next run, no pending retry; its
        runs still in progress here (each stops and is recorded `cancelled`)."""
        return job_info(job, None, (), self._running.get(job.job_id, 0), runs_per_job=self._runs_per_job).model_copy(
            update={"state": "cancelled", "retry_at": None, "runs_remaining": None}
        )


def job_info(
    job: Job, next_run: datetime | None, next_runs: Sequence[datetime] = (), running: int = 0,
    *, runs_per_job: int = BUFFER_LIMIT, warnings: Sequence[str] = (),
) -> JobInfo:
    """What clients see of `job`, given its next fire time and a preview of the following ones;
    `runs_per_job` is the server's limit of runs of one job at once (what allow_all runs at most); `warnings`:
    what the checks of a schedule or an update found."""
    d = job.definition
    zone = d.schedule.zone
    return JobInfo(
        job_id=d.job_id,
        job_name=d.job_name,
        agentool_name=d.agentool_name,
        input_data=d.input_data,
        schedule_type=d.schedule.schedule_type,
        schedule=d.schedule.expression,
        timezone=d.schedule.timezone,
        description=d.schedule.description,
        state=job.state,
        next_run=None if next_run is None else next_run.astimezone(zone),
        next_runs=[t.astimezone(zone) for t in next_runs],
        max_instances=d.max_instances,
        misfire_grace_time=d.misfire_grace_time,
        coalesce=d.coalesce,
        timeout=d.timeout,
        result_queue=d.result_queue,
        error_queue=d.error_queue,
        created_at=d.created_at,
        last_run_at=job.last_run_at,
        last_status=job.last_status,
        running=running,
        policy=d.policy,
        policy_description=describe_policy(d.policy, coalesce=d.coalesce, max_instances=d.max_instances,
                                           runs_per_job=runs_per_job),
        success=d.success,
        pause_reason=job.pause_reason,
        runs_remaining=None if d.policy.max_runs is None else max(0, d.policy.max_runs - job.runs),
        retry_at=None if job.retry is None else job.retry.at.astimezone(zone),
        address_policy=_describe_rules(d.address_policy),
        warnings=list(warnings),
    )


_SHOWN_PATTERNS = 5


def _describe_rules(rules: AddressRules | None) -> str | None:
    """A job's stored address policy in words, when it limits anything (None when it does not)."""
    if rules is None or not rules.exposed:
        return None
    accepted = "accepted by a server that listens beyond loopback"
    if not rules.http_allow:
        return f"public addresses only ({accepted})"
    shown = ", ".join(clip(p, 80) for p in rules.http_allow[:_SHOWN_PATTERNS])
    more = len(rules.http_allow) - _SHOWN_PATTERNS
    shown += f" and {more} more" if more > 0 else ""
    return f"public addresses, and private or loopback ones matching {shown} ({accepted}, with --http-allow)"


def job_summary(job: JobInfo) -> JobSummary:
    """The summary of `job` (a job in a list; a `CancelledJob` once cancel removed it)."""
    kind, state = (CancelledJob, "cancelled") if job.state == "cancelled" else (JobSummary, job.state)
    return kind.model_validate({"job_id": job.job_id, "job_name": job.job_name, "description": job.description,
                                "state": state, "next_run": job.next_run, "last_status": job.last_status})


def accepted_job(job: JobInfo) -> AcceptedJob:
    """The answer of schedule_job, update_job, pause_job, resume_job and cancel_job about `job`: its summary (a
    `CancelledJob` once cancel removed it) and the warnings the change found."""
    kind = CancelledJob if job.state == "cancelled" else AcceptedJob
    return kind(job_id=job.job_id, job_name=job.job_name, description=job.description, state=job.state,
                next_run=job.next_run, last_status=job.last_status, warnings=job.warnings or None)
