"""Property-based fuzzing of every tool and resource through a real MCP client (hypothesis).

Arguments are generated from each tool's published input schema (types, enums, bounds, patterns),
mixed with values a scheduler knows (schedules, AgenTool inputs, ids of jobs that exist) and with
hostile ones: huge strings, deep nesting, wrong types, control characters, lone surrogates,
extreme numbers, unknown argument names. Resource URIs likewise. For every call:

- no internal error ("Internal error in", or the SDK's bare "Error executing tool X"), no
  traceback text and no error message longer than 5,000 characters in what the client gets;
- rejected means unchanged: a call answered with an error leaves the jobs, the run history and the
  queues (everything in the SQLite file, and what list_jobs shows) exactly as they were.

The scheduler is stopped while fuzzing, so no fire of a job the fuzzer scheduled changes the state
between two snapshots (run_now still runs: it is an answered call). `make test` makes about 1,000
calls (`MCP_SCHEDULER_FUZZ_CALLS`); the soak variant 10,000. The counts are the `fuzz` figure.

A second run (`fuzz_bounds`) gives schedule_job, update_job, preview_schedule, get_history and backfill_job
durations and times at and beyond the scheduler's bounds (tests/reliability/_durations.py): each is answered,
accepted or as an error in the arguments, never as an internal error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.server import SchedulerServer, build_server
from mcp_scheduler.settings import Settings
from tests.reliability._durations import LOG, bounds_calls
from tests.reliability._figures import Figures

T = TypeVar("T")
CALLS = int(os.environ.get("MCP_SCHEDULER_FUZZ_CALLS", "1000"))
SOAK_CALLS = int(os.environ.get("MCP_SCHEDULER_FUZZ_SOAK_CALLS", "10000"))
BOUNDS_CALLS = int(os.environ.get("MCP_SCHEDULER_FUZZ_BOUNDS_CALLS", "500"))
BOUNDS_SOAK_CALLS = int(os.environ.get("MCP_SCHEDULER_FUZZ_BOUNDS_SOAK_CALLS", "5000"))

# ---------------------------------------------------------------------- values


def nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


HUGE_STRINGS = ["x" * 1_000_000, "é" * 100_000, "0 9 * * *" * 20_000, "\x00" * 70_000]
DEEP = [nested(50), nested(150), nested(250), nested(400)]  # deeper: the client itself cannot serialise it
# (a 5,000-deep line reaches the server over stdio in tests/server/test_hardening.py)
EXTREME_NUMBERS = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 10**400, 1e11, 1e308, -1e308, float("nan"),
                   float("inf"), float("-inf"), -0.0, 5e-324, True, False]
NASTY_TEXT = ["", " ", "\t\n", "\x00", "a\x00b", "\x1b[31m", "\u202e", "\ud800", "a\udfffb", "\ufeff", "🙂" * 3,
              "../../etc/passwd", "'; DROP TABLE scheduler_jobs; --", "%s%n", "{job_id}", "!ref:storage_kv:k",
              "scheduler://jobs", "\r\n", "null", "None", "NaN", "0", "-0", "1e400"]

control_or_surrogate = st.text(
    alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Cf", "Zs", "Co"]), min_size=1, max_size=20
)
hostile: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(HUGE_STRINGS),
    st.sampled_from(DEEP),
    st.sampled_from(EXTREME_NUMBERS),
    st.sampled_from(NASTY_TEXT),
    control_or_surrogate,
    st.none(),
    st.lists(st.integers(), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.text(max_size=300),
)

JOB_IDS = ["j1", "j2", "j3", "nightly", "a.b:c@d-e_f", "J" * 128, "j1\n", " j1", "J" * 129]
SCHEDULES = {
    "cron": ["0 9 * * 1-5", "*/5 * * * *", "@daily", "0 0 31 2 *", "*/10 * * * * *", "61 * * * *", "0 9 * *",
             "MON-FRI", "0 9 * * 7", "@reboot"],
    "interval": ["30 seconds", "1h30m", "every 5 minutes", "PT15M", "0 seconds", "-5m", "1e9 days", "P1Y",
                 "0.000001 seconds", "999999999999 weeks"],
    "once": ["now", "in 10 minutes", "2099-12-25T09:00:00", "2000-01-01T00:00:00", "9999-12-31T23:59:59",
             "in 0 seconds", "0001-01-01T00:00:00+14:00", "tomorrow"],
}
AGENTOOLS = ["logging", "queue", "storage_kv", "scheduler", "nope", "LOGGING"]
INPUTS: list[Any] = [
    {"operation": "log", "level": "INFO", "message": "fuzz"},
    {"operation": "log", "level": "LOUD", "message": "fuzz"},
    {"operation": "enqueue", "queue_name": "fuzzq", "message": {"n": 1}},
    {"operation": "dequeue", "queue_name": "fuzzq"},
    {"operation": "set", "key": "k", "value": 1},
    {"operation": "get", "key": "k"},
    {"operation": "status"},
    {"operation": "schedule", "schedule_type": "once", "schedule": "now", "agentool_name": "logging",
     "input_data": {"operation": "log", "level": "INFO", "message": "inner"}},
    {"operation": "nope"},
    {},
]
KNOWN: dict[str, st.SearchStrategy[Any]] = {
    "job_id": st.sampled_from(JOB_IDS),
    "schedule_type": st.sampled_from(["cron", "interval", "once", "weekly", "CRON"]),
    "schedule": st.sampled_from([s for group in SCHEDULES.values() for s in group]),
    "agentool_name": st.sampled_from(AGENTOOLS),
    "input_data": st.sampled_from(INPUTS),
    "timezone": st.sampled_from(["UTC", "Europe/Berlin", "europe/berlin", "right/UTC", "posix/UTC", "Mars/Olympus",
                                 "localtime", "Etc/GMT+14", ""]),
    "result_queue": st.sampled_from(["results", "fuzzq", "", " ", "a b", "q/1"]),
    "error_queue": st.sampled_from(["errors", "fuzzq", "", "\n"]),
    "queue_name": st.sampled_from(["results", "errors", "fuzzq", "", "nope"]),
    "cursor": st.sampled_from(["0", "1", "20", "-1", "x", "99999999999999999999"]),
    "status": st.sampled_from(["success", "error", "missed", "exploded"]),
}

# ---------------------------------------------------------------------- schema -> strategy


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one property schema as pydantic publishes them (enough of JSON Schema for these tools)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(branch) for branch in schema["anyOf"]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 50), 50))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return st.floats(low, schema.get("maximum"), exclude_min="exclusiveMinimum" in schema, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "object":
        return st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3)
    if kind == "array":
        return st.lists(st.integers(), max_size=3)
    return st.none()


PAIRS = [  # (agentool_name, input_data) that fit, so that many calls are accepted and build up state
    ("logging", INPUTS[0]), ("queue", INPUTS[2]), ("queue", INPUTS[3]), ("storage_kv", INPUTS[4]),
    ("storage_kv", INPUTS[5]),
]
EXTRA_NAMES = st.one_of(st.sampled_from(["timezon", "jobid", "_meta", "", "x" * 10_000]), st.text(max_size=20))


def argument_strategy(tool: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for `tool`: a plausible call (known-good and schema-generated values, optional ones left
    out or not), then in half the cases one to three mutations: a hostile value, a schema-random value,
    a required argument left out, or an unknown argument."""
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        for name, schema in properties.items():
            if name in required or draw(st.integers(0, 3)) == 0:
                arguments[name] = draw(KNOWN.get(name, from_schema(schema)))
        if "agentool_name" in arguments and "input_data" in properties:
            arguments["agentool_name"], arguments["input_data"] = draw(st.sampled_from(PAIRS))
        if "schedule" in arguments and arguments.get("schedule_type") in SCHEDULES:
            arguments["schedule"] = draw(st.sampled_from(SCHEDULES[arguments["schedule_type"]]))
        mutations = draw(st.integers(0, 5)) - 2 if properties else 1
        for _ in range(max(0, mutations)):
            kind = draw(st.sampled_from(["hostile", "hostile", "schema", "drop", "extra", "inside"]))
            if kind == "inside" and isinstance(arguments.get("input_data"), dict):
                inner = dict(arguments["input_data"])  # a hostile value inside a plausible AgenTool input
                inner[draw(st.sampled_from([*inner, "message", "extra"]))] = draw(hostile)
                arguments["input_data"] = inner
                continue
            if kind == "extra" or not properties:
                extra = draw(EXTRA_NAMES)
                if extra not in properties:
                    arguments[extra] = draw(hostile)
                continue
            name = draw(st.sampled_from(sorted(properties)))
            if kind == "drop":
                arguments.pop(name, None)
            else:
                arguments[name] = draw(hostile if kind == "hostile" else from_schema(properties[name]))
        return arguments

    return build()


URI_PARTS = st.one_of(st.sampled_from(JOB_IDS + ["fuzzq", "results", "%00", "..", "%2F", "a/b", ""]),
                      st.text(max_size=30), st.sampled_from(HUGE_STRINGS[:1]).map(lambda s: s[:100_000]))
uris = st.one_of(
    st.sampled_from(["scheduler://status", "scheduler://jobs", "scheduler://queues", "scheduler://agentools",
                     "scheduler://", "scheduler:///", "file:///etc/passwd", "http://127.0.0.1/", "scheduler://jobs/"]),
    URI_PARTS.map(lambda p: f"scheduler://jobs/{p}"),
    URI_PARTS.map(lambda p: f"scheduler://jobs/{p}/history"),
    URI_PARTS.map(lambda p: f"scheduler://queues/{p}"),
    URI_PARTS.map(lambda p: f"scheduler://{p}"),
)

# ---------------------------------------------------------------------- a server on a loop of its own


class Harness:
    """A server over a real SQLite file and an in-memory MCP client, on an event loop in a thread of its own.

    Hypothesis runs synchronous tests; each call goes to the loop and waits for its answer.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.runtime: SchedulerRuntime | None = None
        self.client: Client | None = None
        self.tools: list[Any] = []
        self._done: asyncio.Event | None = None
        self._holder: Future[None] | None = None

    def run(self, coroutine: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> None:
        self.thread.start()
        ready: Future[None] = Future()
        self._holder = asyncio.run_coroutine_threadsafe(self._hold(ready), self.loop)
        ready.result(60)

    async def _hold(self, ready: Future[None]) -> None:
        settings_ = Settings(database=str(self.database), timezone="UTC", discover_entry_points=False)
        self.runtime = SchedulerRuntime(settings_.service_config())
        server: SchedulerServer = build_server(self.runtime, settings_)
        self._done = asyncio.Event()
        try:
            async with Client(server) as client:
                self.client = client
                self.tools = (await client.list_tools()).tools
                await self.runtime.service.stop()  # no fires while fuzzing: only calls change the state
                ready.set_result(None)
                await self._done.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            await self.runtime.close()

    def stop(self) -> None:
        if self._done is not None:
            self.loop.call_soon_threadsafe(self._done.set)
        if self._holder is not None:
            self._holder.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    async def snapshot(self) -> tuple[Any, ...]:
        """Everything a call could change: the SQLite file's tables, and the jobs as list_jobs sees them."""
        assert self.runtime is not None
        service = self.runtime.service
        history = getattr(service, "_history", None)
        if history is not None:  # bookkeeping of earlier accepted calls is written in batches: settle it first
            await history.flush()
        seen = []
        for state in (None, "completed"):
            jobs, _ = service.list_jobs(state=state, offset=0, limit=1_000_000)
            seen += [j.model_dump(mode="json", exclude={"next_runs", "running"}) for j in jobs]
        return (repr(seen), self.tables())

    def tables(self) -> dict[str, str]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            digests = {}
            for name in names:
                rows = conn.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()
                digests[name] = hashlib.sha256(repr(rows).encode("utf-8", "backslashreplace")).hexdigest()
        conn.close()
        return digests


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    running = Harness(tmp_path / "fuzz.db")
    running.start()
    try:
        yield running
    finally:
        running.stop()


# ---------------------------------------------------------------------- the properties

BAD_SIGNS = ("Internal error in", "Traceback (most recent call last)", 'File "/')


class Tally(Counter[str]):
    """Counts of the fuzz run, and the first few problems of each kind."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def problem(self, kind: str, text: str) -> None:
        self[kind] += 1
        if len(self.problems) < 20:
            self.problems.append(f"{kind}: {text[:500]}")


MAX_ERROR_TEXT = 5000


def check_text(tally: Tally, where: str, text: str, *, error: bool = True) -> None:
    if error and len(text) > MAX_ERROR_TEXT:
        tally.problem("huge_echoes", f"{where}: a {len(text)}-character error: {text[:200]}")
    # (run records may carry the traceback of a failed AgenTool run: that is history, not a leak)
    if error and any(sign in text for sign in BAD_SIGNS):
        tally.problem("internal_errors" if "Internal error" in text else "tracebacks", f"{where}: {text}")


def describe(arguments: Any) -> str:
    text = repr(arguments)
    return text if len(text) < 300 else text[:300] + "..."


def fuzz(harness: Harness, tally: Tally, calls: int) -> None:
    # One strategy per tool, built once (built for each example, they took a third of the run).
    per_tool = [st.tuples(st.just(tool.name), argument_strategy(tool)) for tool in harness.tools]
    call = st.one_of(st.sampled_from(per_tool).flatmap(lambda strategy: strategy), st.tuples(st.just("resource"), uris))

    @settings(max_examples=calls, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(call)
    def one(step: tuple[str, Any]) -> None:
        name, arguments = step
        client = harness.client
        assert client is not None
        before = harness.run(harness.snapshot())
        rejected = True
        try:
            if name == "resource":
                tally["resource_reads"] += 1
                try:
                    result = harness.run(client.read_resource(arguments))
                    rejected = False
                    check_text(tally, f"read {describe(arguments)}", repr(result)[:100_000], error=False)
                except MCPError as exc:
                    check_text(tally, f"read {describe(arguments)}", str(exc))
            else:
                tally["tool_calls"] += 1
                result = harness.run(client.call_tool(name, arguments))
                text = " ".join(getattr(block, "text", "") for block in result.content)
                check_text(tally, f"{name}({describe(arguments)})", text, error=result.is_error)
                if result.is_error:
                    if text.strip() == f"Error executing tool {name}":
                        tally.problem("internal_errors", f"{name}({describe(arguments)}): bare SDK error")
                    # A run that ran and failed is an answer (it is in the history), not a rejection.
                    rejected = "Failed to run job kind" not in text
                    tally["rejected" if rejected else "failed_runs"] += 1
                else:
                    rejected = False
                    tally["accepted"] += 1
        except MCPError as exc:  # a protocol-level error answer (e.g. arguments the SDK refuses outright)
            tally["protocol_errors"] += 1
            check_text(tally, f"{name}({describe(arguments)})", str(exc))
        except ValueError as exc:
            if "serialization depth" not in str(exc):
                raise
            tally["unsendable"] += 1  # the client itself cannot serialise the request: it never left
            return
        except Exception as exc:  # no answer at all, or the client failed: a crash
            tally.problem("crashes", f"{name}({describe(arguments)}): {type(exc).__name__}: {exc}")
            return
        if rejected:
            after = harness.run(harness.snapshot())
            if after != before:
                tally.problem("state_changes", f"{name}({describe(arguments)}) was refused but changed the state")

    one()
    # and the server still answers
    status = harness.run(harness.client.call_tool("scheduler_status", {}))  # type: ignore[union-attr]
    if status.is_error:
        tally.problem("crashes", "scheduler_status failed after the fuzz run")


def run_and_report(harness: Harness, figures: Figures, calls: int, name: str) -> None:
    tally = Tally()
    try:
        fuzz(harness, tally, calls)
    finally:
        figures.add(name, calls=tally["tool_calls"] + tally["resource_reads"], tool_calls=tally["tool_calls"],
                    resource_reads=tally["resource_reads"], accepted=tally["accepted"], rejected=tally["rejected"],
                    failed_runs=tally["failed_runs"], protocol_errors=tally["protocol_errors"],
                    unsendable=tally["unsendable"], crashes=tally["crashes"], internal_errors=tally["internal_errors"],
                    traceback_leaks=tally["tracebacks"],
                    huge_echoes=tally["huge_echoes"], state_changes_from_rejected_calls=tally["state_changes"])
    assert not tally.problems, "\n".join(tally.problems)
    assert tally["accepted"] > 0 and tally["rejected"] > 0  # both sides of the properties were exercised


def test_fuzzed_calls_never_crash_leak_or_change_state_when_rejected(harness: Harness, figures: Figures) -> None:
    run_and_report(harness, figures, CALLS, "fuzz")


@pytest.mark.soak
def test_fuzzed_calls_soak(harness: Harness, figures: Figures) -> None:
    run_and_report(harness, figures, SOAK_CALLS, "fuzz_soak")



# ---------------------------------------------------------------------- durations and times at every bound

BOUNDS_JOBS = {"every-minute": ("cron", "* * * * *"), "hourly": ("interval", "1h"), "yearly": ("cron", "0 0 1 1 *")}


def fuzz_bounds(harness: Harness, tally: Tally, calls: int) -> None:
    client = harness.client
    assert client is not None
    for job_id, (kind, expression) in BOUNDS_JOBS.items():  # what backfill_job ranges run over
        created = harness.run(client.call_tool("schedule_job", {
            "job_id": job_id, "schedule_type": kind, "schedule": expression, "agentool_name": "logging",
            "input_data": LOG}))
        assert not created.is_error, created

    @settings(max_examples=calls, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(bounds_calls(sorted(BOUNDS_JOBS)))
    def one(step: tuple[str, dict[str, Any]]) -> None:
        name, arguments = step
        tally["tool_calls"] += 1
        try:
            result = harness.run(client.call_tool(name, arguments))
        except MCPError as exc:
            tally["protocol_errors"] += 1
            check_text(tally, f"{name}({describe(arguments)})", str(exc))
            return
        text = " ".join(getattr(block, "text", "") for block in result.content)
        check_text(tally, f"{name}({describe(arguments)})", text, error=result.is_error)
        if result.is_error and text.strip() == f"Error executing tool {name}":
            tally.problem("internal_errors", f"{name}({describe(arguments)}): bare SDK error")
        tally["rejected" if result.is_error else "accepted"] += 1

    one()


def run_bounds_and_report(harness: Harness, figures: Figures, calls: int, name: str) -> None:
    tally = Tally()
    try:
        fuzz_bounds(harness, tally, calls)
    finally:
        figures.add(name, tool_calls=tally["tool_calls"], accepted=tally["accepted"], rejected=tally["rejected"],
                    protocol_errors=tally["protocol_errors"], internal_errors=tally["internal_errors"],
                    traceback_leaks=tally["tracebacks"])
    assert not tally.problems, "\n".join(tally.problems)
    assert tally["accepted"] > 0 and tally["rejected"] > 0


def test_durations_and_times_at_every_bound_are_answered_never_an_internal_error(
    harness: Harness, figures: Figures
) -> None:
    run_bounds_and_report(harness, figures, BOUNDS_CALLS, "fuzz_bounds")


@pytest.mark.soak
def test_durations_and_times_at_every_bound_soak(harness: Harness, figures: Figures) -> None:
    run_bounds_and_report(harness, figures, BOUNDS_SOAK_CALLS, "fuzz_bounds_soak")
