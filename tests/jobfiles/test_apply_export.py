"""`mcp-scheduler apply` and `export` on real SQLite files: a file of 20 jobs created, applied again without a change,
exported and applied back as a no-op, then updated and pruned; bad entries refused before anything changes."""

from __future__ import annotations

import io
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.cli.files import apply_file, export_jobs
from mcp_scheduler.errors import JobsFileError
from mcp_scheduler.jobfiles import stored_jobs
from mcp_scheduler.models import SchedulerInput
from mcp_scheduler.settings import Settings
from tests._cli import command


def job_entry(n: int) -> str:
    """The TOML of job n: a mix of cron and interval schedules, zones, policies, limits and queues."""
    lines = ["[[jobs]]", f'job_id = "job-{n:02d}"', 'agentool_name = "logging"']
    if n % 2:
        lines += ['schedule_type = "cron"', f'schedule = "{n} 9 * * 1-5"', 'timezone = "Europe/Berlin"']
    else:
        lines += ['schedule_type = "interval"', f'schedule = "{n + 5} minutes"']
    if n % 3 == 0:
        lines += [f'job_name = "Report {n}"', "timeout = 30", "max_instances = 2"]
    if n % 4 == 0:
        lines += ['result_queue = "inbox"', "coalesce = false"]
    lines += ["[jobs.input_data]", 'operation = "log"', f'message = "job {n}"']
    if n % 5 == 0:
        lines += ["[jobs.policy]", "max_attempts = 3", 'catchup_window = "2h"', 'overlap = "buffer_one"']
    return "\n".join(lines)


def jobs_toml(numbers: range | list[int], name: str = "team-jobs", edit: dict[int, str] | None = None) -> str:
    edit = edit or {}
    return f'name = "{name}"\n\n' + "\n\n".join(edit.get(n, job_entry(n)) for n in numbers) + "\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=str(tmp_path / "jobs.db"), timezone="UTC", discover_entry_points=False)


async def apply(settings: Settings, path: Path, **flags: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await apply_file(settings, path, out=out, err=err, **flags)
    return code, out.getvalue(), err.getvalue()


async def export(settings: Settings, *job_ids: str) -> str:
    out = io.StringIO()
    assert await export_jobs(settings, list(job_ids), out=out, err=io.StringIO()) == 0
    return out.getvalue()


def plan_lines(out: str) -> dict[str, str]:
    """The plan printed by apply: job_id -> its line."""
    return {line.split()[1]: line for line in out.splitlines()}


async def test_a_file_of_20_jobs_round_trips_through_apply_and_export_with_a_dry_run_an_update_and_a_prune(
    settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(jobs_toml(range(1, 21)))

    code, out, err = await apply(settings, path, dry_run=True)
    assert code == 0 and "20 create; nothing was changed" in err
    assert [line.split()[0] for line in out.splitlines()] == ["create"] * 20
    assert not os.path.exists(settings.database or "")  # noqa: ASYNC240  # a dry run creates no store

    code, out, err = await apply(settings, path)
    assert code == 0 and "Applied" in err and "20 create" in err
    stored = await stored_jobs(settings.database or "")
    assert sorted(stored) == [f"job-{n:02d}" for n in range(1, 21)]
    assert {job.definition.managed_by for job in stored.values()} == {"team-jobs"}
    assert stored["job-05"].definition.policy.max_attempts == 3
    assert stored["job-05"].definition.policy.catchup_window == 7200
    assert stored["job-03"].definition.schedule.timezone == "Europe/Berlin"
    assert stored["job-04"].definition.schedule.timezone == "UTC"
    assert stored["job-12"].definition.result_queue == "inbox" and stored["job-12"].definition.timeout == 30

    code, out, err = await apply(settings, path)
    assert code == 0 and "nothing to change (20 unchanged)" in err
    assert {k: v.definition for k, v in (await stored_jobs(settings.database or "")).items()} == {
        k: v.definition for k, v in stored.items()}

    exported = await export(settings)
    document = tomllib.loads(exported)
    assert document["name"] == "team-jobs" and len(document["jobs"]) == 20
    again = tmp_path / "exported.toml"
    again.write_text(exported)
    code, out, err = await apply(settings, again, dry_run=True)
    assert "20 unchanged" in err and set(line.split()[0] for line in out.splitlines()) == {"unchanged"}
    assert await export(settings) == exported

    # An update of two jobs, three jobs left out of the file, and a job of someone else's in the store.
    runtime = SchedulerRuntime(settings.service_config())
    async with runtime:
        await runtime.service.schedule(SchedulerInput(
            operation="schedule", job_id="mine", schedule_type="interval", schedule="1 hour", agentool_name="logging",
            input_data={"operation": "log", "message": "mine"}))
    changed = {
        2: job_entry(2).replace('schedule = "7 minutes"', 'schedule = "1 hour"'),
        7: job_entry(7).replace('message = "job 7"', 'message = "job seven"'),
    }
    path.write_text(jobs_toml([n for n in range(1, 21) if n not in (18, 19, 20)], edit=changed))

    code, out, err = await apply(settings, path, dry_run=True)
    lines = plan_lines(out)
    assert "schedule: \"7 minutes\" -> \"1 hour\"" in lines["job-02"]
    assert 'input_data: {"message": "job 7", "operation": "log"} -> {"message": "job seven"' in lines["job-07"]
    assert "job-18" not in lines  # no prune without --prune
    code, out, err = await apply(settings, path, dry_run=True, prune=True)
    lines = plan_lines(out)
    assert [lines[f"job-{n}"].split()[0] for n in (18, 19, 20)] == ["prune"] * 3
    assert "mine" not in lines and "2 update, 15 unchanged, 3 prune" in err

    code, out, err = await apply(settings, path, prune=True)
    assert code == 0
    after = await stored_jobs(settings.database or "")
    assert sorted(after) == sorted([f"job-{n:02d}" for n in range(1, 18)] + ["mine"])
    assert after["job-02"].definition.schedule.expression == "1 hour"
    assert after["job-07"].definition.input_data["message"] == "job seven"
    assert after["job-01"].definition == stored["job-01"].definition  # untouched
    assert after["mine"].definition.managed_by is None
    code, out, err = await apply(settings, path, prune=True)
    assert "nothing to change (17 unchanged)" in err


async def test_applying_a_file_adopts_the_jobs_it_names_with_the_same_fields_and_never_takes_another_files_jobs(
    settings: Settings, tmp_path: Path,
) -> None:
    first = tmp_path / "first.toml"
    first.write_text(jobs_toml([1, 2], name="first"))
    await apply(settings, first)
    exported = tmp_path / "exported.toml"
    exported.write_text((await export(settings, "job-01")).replace('name = "first"', 'name = "second"'))

    with pytest.raises(JobsFileError, match=r"job 1 \('job-01'\) is managed by another jobs file, 'first'"):
        await apply(settings, exported)

    unnamed = tmp_path / "unnamed.toml"
    unnamed.write_text((await export(settings, "job-02")).replace('name = "first"\n', ""))
    await apply(settings, first, prune=True)  # still first's: nothing pruned
    path = tmp_path / "other.toml"
    path.write_text(jobs_toml([3]).replace('name = "team-jobs"\n', ""))
    await apply(settings, path)
    code, out, err = await apply(settings, path)
    assert "1 unchanged" in err
    assert (await stored_jobs(settings.database or ""))["job-03"].definition.managed_by == str(path.resolve())


@pytest.mark.parametrize(("entry", "said"), [
    ('max_instances = 0', r"jobs\.toml: job 2 \('job-02'\): field\.max_instances: Input should be greater than"),
    ('colour = "blue"', r"jobs\.toml: job 2 \('job-02'\): unknown field\(s\) colour; an entry takes schedule_type"),
    ('if_exists = "replace"', r"job 2 \('job-02'\): unknown field\(s\) if_exists"),
    ('timezone = "Europe/Berln"', r"job 2 \('job-02'\): .*Europe/Berlin"),
])
async def test_a_bad_entry_is_refused_naming_the_file_the_entry_and_the_field(
    settings: Settings, tmp_path: Path, entry: str, said: str,
) -> None:
    path = tmp_path / "jobs.toml"
    bad = job_entry(2).replace("[jobs.input_data]", f"{entry}\n[jobs.input_data]")
    path.write_text(jobs_toml([1, 2], edit={2: bad}))

    with pytest.raises(JobsFileError, match=said):
        await apply(settings, path)
    assert not os.path.exists(settings.database or "")  # noqa: ASYNC240


async def test_a_schedule_or_input_that_the_scheduler_refuses_stops_the_apply_before_any_job_changes(
    settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(jobs_toml([1]))
    await apply(settings, path)
    bad_cron = job_entry(3).replace('schedule = "3 9 * * 1-5"', 'schedule = "61 9 * * *"')
    path.write_text(jobs_toml([1, 2, 3], edit={3: bad_cron}))
    with pytest.raises(JobsFileError, match=r"jobs\.toml: job 3 \('job-03'\): .*61"):
        await apply(settings, path)
    bad_input = job_entry(3).replace('operation = "log"', 'operation = "shout"')
    path.write_text(jobs_toml([1, 2, 3], edit={3: bad_input}))
    with pytest.raises(JobsFileError, match=r"job 3 \('job-03'\): input_data does not fit job kind 'logging'"):
        await apply(settings, path)
    assert sorted(await stored_jobs(settings.database or "")) == ["job-01"]


async def test_yaml_and_json_files_hold_the_same_jobs_and_toml_export_refuses_a_null(
    settings: Settings, tmp_path: Path,
) -> None:
    pytest.importorskip("yaml")
    entry = {"job_id": "y", "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
             "input_data": {"operation": "log", "message": "hi"}, "misfire_grace_time": None}
    (tmp_path / "jobs.yaml").write_text(f"name: y\njobs:\n  - {json.dumps(entry)}\n")
    await apply(settings, tmp_path / "jobs.yaml")
    assert (await stored_jobs(settings.database or ""))["y"].definition.misfire_grace_time is None
    with pytest.raises(JobsFileError, match="job 'y': misfire_grace_time is null, which TOML cannot hold"):
        await export(settings)
    out = io.StringIO()
    await export_jobs(settings, [], fmt="json", out=out)
    (tmp_path / "jobs.json").write_text(out.getvalue())
    code, _, err = await apply(settings, tmp_path / "jobs.json")
    assert "1 unchanged" in err


def test_the_cli_applies_exports_and_tells_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(jobs_toml([1, 2]))
    db = str(tmp_path / "s.db")

    dry = command(tmp_path, "apply", str(path), "--db", db, "--timezone", "UTC", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == ["create", "job-01", "create", "job-02"]
    done = command(tmp_path, "apply", str(path), "--db", db, "--timezone", "UTC")
    assert done.returncode == 0 and "Applied" in done.stderr, done.stderr
    exported = command(tmp_path, "export", "--db", db)
    assert tomllib.loads(exported.stdout)["name"] == "team-jobs"

    path.write_text("name = 'x'\n[[jobs]]\njob_id = 'job-01'\n")
    bad = command(tmp_path, "apply", str(path), "--db", db)
    assert bad.returncode == 1
    assert bad.stderr.startswith("mcp-scheduler apply: ") and "job 1 ('job-01')" in bad.stderr
    assert "Traceback" not in bad.stderr
