"""Hostile job arguments against every job kind, through a real stdio server (hypothesis).

The server runs as an operator would start it: `--secret ALLOWED_SECRET`, a `--log-dir`, three
harmless programs allowed for `shell`, HOME pointing at a fake home directory. Its environment also
holds values a job must never reach: `FORBIDDEN_SECRET` (set, but not allowed) and the server's own
`MCP_SCHEDULER_AUTH_TOKEN` (listed with `--secret` as well, which must not help).

Each example runs one job (ad hoc `run_now`, or a `once` job fired by the scheduler) of a kind drawn
from all of them, with arguments drawn from hostile paths (the fake home's dotfiles, /tmp, `..`, a
symlink planted in the log directory), environment names (loader and interpreter variables),
`!env:` references, URL encodings of metadata addresses, and the reserved `inbox` queue. Then:

- no tool answer, resource, log line of the server, or byte of its database holds a secret value
  (allowed or not) in any form: raw, URL-encoded, JSON-escaped, or a 12-character prefix;
- nothing outside the scheduler's own data changed: the fake home, a sentinel directory and the
  server's working directory are byte for byte as before, and no file named after the run's marker
  appeared under /tmp.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sys
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.reliability._figures import Figures
from tests.toolkits._http_server import LocalServer, serve_http

T = TypeVar("T")
EXAMPLES = int(os.environ.get("MCP_SCHEDULER_HOSTILE_EXAMPLES", "150"))
SOAK_EXAMPLES = int(os.environ.get("MCP_SCHEDULER_HOSTILE_SOAK_EXAMPLES", "1500"))
WAIT = 30.0

MARKER = f"pwn{secrets.token_hex(4)}"
ALLOWED = f"alw/{secrets.token_urlsafe(18)}+x=y&z"
FORBIDDEN = f"fbd/{secrets.token_urlsafe(18)}+x=y&z"
OWN_TOKEN = f"tok/{secrets.token_urlsafe(18)}+x=y&z"
SECRET_VALUES = {"ALLOWED_SECRET": ALLOWED, "FORBIDDEN_SECRET": FORBIDDEN, "MCP_SCHEDULER_AUTH_TOKEN": OWN_TOKEN}


def forms(value: str) -> list[str]:
    """Every way a secret value could show up in text: raw, encoded, escaped, or cut short."""
    escaped = json.dumps(value)[1:-1]
    return sorted({value, quote(value, safe=""), quote(value), quote_plus(value), escaped,
                   json.dumps(escaped)[1:-1], value[:12]})


SECRET_FORMS = {name: forms(value) for name, value in SECRET_VALUES.items()}


def leak_context(text: str) -> str:
    """Where in `text` the first leak is, for the failure message."""
    for variants in SECRET_FORMS.values():
        for variant in variants:
            at = text.find(variant)
            if at >= 0:
                return text[max(0, at - 1500) : at + 100]
    return ""


def leaks(text: str) -> list[str]:
    """The secrets (by name) that `text` reveals in any form."""
    return [name for name, variants in SECRET_FORMS.items() if any(v in text for v in variants)]


# ---------------------------------------------------------------------- hostile values


class Places:
    """The directories of one test: a fake home, a sentinel, the log dir, the server's cwd and database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.sentinel = root / "sentinel"
        self.logs = root / "logs"
        self.cwd = root / "cwd"
        self.data = root / "data"
        for folder in (self.home / ".ssh", self.sentinel, self.logs, self.cwd, self.data):
            folder.mkdir(parents=True, exist_ok=True)
        (self.home / ".bashrc").write_text("# the user's shell start-up file\n")
        (self.home / ".profile").write_text("# profile\n")
        (self.home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA user@host\n")
        (self.sentinel / "keep.txt").write_text("2026-12-04T09:00:00.000+00:00 INFO [agentool] a log-shaped line\n")
        # a symlink planted in the log directory, pointing at the user's start-up file
        (self.logs / "link.log").symlink_to(self.home / ".bashrc")

    def watched(self) -> dict[str, tuple[int, str, int]]:
        """path -> (size, sha256, mode) of everything outside the scheduler's own data (and the planted link)."""
        seen: dict[str, tuple[int, str, int]] = {}
        paths = [p for folder in (self.home, self.sentinel, self.cwd) for p in folder.rglob("*")]
        paths += [p for p in self.root.iterdir() if p.name != "server.stderr"]
        paths.append(self.logs / "link.log")
        for path in sorted(paths):
            stat = path.lstat()
            regular = path.is_file() and not path.is_symlink()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if regular else ""
            seen[str(path)] = (stat.st_size if regular else 0, digest, stat.st_mode)
        return seen


def hostile_values(places: Places, http: LocalServer) -> dict[str, list[Any]]:
    home, sentinel, logs = places.home, places.sentinel, places.logs
    refs = ["!env:ALLOWED_SECRET", "!env:FORBIDDEN_SECRET", "!env:MCP_SCHEDULER_AUTH_TOKEN", "!env:HOME",
            "!env:PATH", "!env:NOT_SET_ANYWHERE", "!env:", "!env:A B"]
    paths = ["~/.bashrc", f"{home}/.bashrc", f"{home}/.ssh/authorized_keys", f"{sentinel}/keep.txt",
             f"{sentinel}/new.log", f"/tmp/{MARKER}", f"../../../../../tmp/{MARKER}", f"..%2f..%2f{MARKER}",
             f"{logs}/../{MARKER}.log", "/etc/passwd", "/proc/self/environ", "agent.log", "link.log",
             ".hidden.log", "sub/dir.log", f"{MARKER}.log", "~", "/", "."]
    texts = [*refs, "hello", f"; id > /tmp/{MARKER} #", f"$(touch {sentinel}/{MARKER})", "`id`", "%s%n",
             f"\n2026-12-04T09:00:00Z INFO [x] forged line {MARKER}"]
    env_names = ["BASH_ENV", "BASH_FUNC_echo%%", "LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "HOME", "ENV",
                 "GIT_CONFIG_COUNT", "PYTHONWARNINGS", "PYTHONSTARTUP", "PERL5OPT", "BROWSER", "NODE_OPTIONS",
                 "FORBIDDEN_SECRET", "ALLOWED_SECRET", "MCP_SCHEDULER_AUTH_TOKEN", "LANG", "TZ", "bash_env"]
    base = http.url
    urls = [f"{base}/echo", f"{base}/status/500", f"{base}/echo?t=x", "!env:ALLOWED_SECRET",
            f"{base}/redirect?to=http://169.254.169.254/latest/meta-data/",
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://0xa9fea9fe/",
            "http://2852039166/", "http://169.254.169.254.nip.io/", "file:///etc/passwd",
            "http://metadata.google.internal/computeMetadata/v1/", "http://[fd00:ec2::254]/",
            f"http://127.0.0.1:{http.port}%2f@169.254.169.254/"]
    return {"refs": refs, "paths": paths, "texts": texts, "env_names": env_names, "urls": urls}


def job_inputs(values: dict[str, list[Any]]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(agentool_name, input_data) for every job kind, filled with hostile values."""
    text = st.sampled_from(values["texts"])
    path = st.sampled_from(values["paths"])
    url = st.sampled_from(values["urls"])
    env_name = st.sampled_from(values["env_names"])

    logging_ = st.one_of(
        st.builds(lambda o, p: {"operation": "configure", "output": o, "file_path": p},
                  st.sampled_from(["file", "both"]), path),
        st.builds(lambda p: {"operation": "get_logs", "file_path": p}, path),
        st.builds(lambda m, d: {"operation": "log", "message": m, "data": {"k": d}}, text, text),
    )
    shell = st.builds(
        lambda prog, args, env, cwd: {"operation": "run", "argv": [prog, *args], "env": env,
                                      **({"cwd": cwd} if cwd else {})},
        st.sampled_from(["echo", "printenv", "true", "/bin/sh", "bash", "setsid", "../bin/echo"]),
        st.lists(st.one_of(text, path), max_size=3),
        st.dictionaries(env_name, text, max_size=2),
        st.one_of(st.none(), path),
    )
    # Half of the requests are ones that run: the echo endpoint sends the allowed secret back (query, header).
    fine = st.sampled_from(["!env:ALLOWED_SECRET", "hello"])
    http = st.builds(
        lambda u, q, h, cap: {"operation": "request", "url": u, "query": {"q": q}, "headers": {"X-T": h},
                              **({"max_response_bytes": cap} if cap else {})},
        st.one_of(st.just(values["urls"][0]), url), st.one_of(fine, text), st.one_of(fine, text),
        st.sampled_from([None, 5, 150]),
    )
    notify = st.one_of(
        st.builds(lambda m, t: {"operation": "inbox", "message": m, "title": t}, text, text),
        st.builds(lambda u, m, t, h: {"operation": "webhook", "url": u, "message": m, "title": t,
                                      "headers": {"Authorization": h}}, url, text, text, text),
    )
    queue = st.one_of(
        st.builds(lambda q, m: {"operation": "enqueue", "queue_name": q, "message": {"v": m, "source": "scheduler"}},
                  st.sampled_from(["inbox", "q1"]), text),
        st.builds(lambda q: {"operation": "clear", "queue_name": q}, st.sampled_from(["inbox", "q1"])),
        st.builds(lambda q: {"operation": "peek", "queue_name": q, "count": 5}, st.sampled_from(["inbox", "q1"])),
    )
    kv = st.one_of(
        st.builds(lambda k, v: {"operation": "set", "key": k, "value": v},
                  st.sampled_from(["k", "!env:ALLOWED_SECRET"]), text),
        st.builds(lambda k: {"operation": "get", "key": k}, st.sampled_from(["k", "!env:ALLOWED_SECRET"])),
    )
    mcp = st.builds(lambda s, p: {"operation": "call_tool", "server": s, "tool": "read", "arguments": {"path": p}},
                    st.sampled_from(["files", "../x", "!env:ALLOWED_SECRET"]), path)
    agent = st.builds(lambda p: {"operation": "run", "prompt": p, "model": "test"}, text)
    return st.one_of(
        st.tuples(st.just("logging"), logging_), st.tuples(st.just("shell"), shell),
        st.tuples(st.just("http"), http), st.tuples(st.just("notify"), notify),
        st.tuples(st.just("queue"), queue), st.tuples(st.just("storage_kv"), kv),
        st.tuples(st.just("mcp"), mcp), st.tuples(st.just("agent"), agent),
    )


# ---------------------------------------------------------------------- a stdio server on a loop of its own


class Harness:
    """The server as a real subprocess over stdio, its stderr in a file, driven from a loop thread."""

    def __init__(self, places: Places) -> None:
        self.places = places
        self.stderr_path = places.root / "server.stderr"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hostile-loop", daemon=True)
        self.client: Client | None = None
        self._done: asyncio.Event | None = None
        self._holder: Future[None] | None = None
        self.answers: list[str] = []

    def run(self, coroutine: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def parameters(self) -> StdioServerParameters:
        places = self.places
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(places.home),
            "LANG": "C.UTF-8",
            **SECRET_VALUES,
        }
        args = ["-m", "mcp_scheduler", "--db", str(places.data / "s.db"), "--timezone", "UTC",
                "--secret", "ALLOWED_SECRET", "--secret", "MCP_SCHEDULER_AUTH_TOKEN", "--log-dir", str(places.logs),
                "--allow-shell", "echo", "--allow-shell", "printenv", "--allow-shell", "true",
                "--log-level", "DEBUG"]
        return StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(places.cwd))

    def start(self) -> None:
        self.thread.start()
        ready: Future[None] = Future()
        self._holder = asyncio.run_coroutine_threadsafe(self._hold(ready), self.loop)
        ready.result(60)

    async def _hold(self, ready: Future[None]) -> None:
        self._done = asyncio.Event()
        try:
            with self.stderr_path.open("w") as errlog:
                async with Client(stdio_client(self.parameters(), errlog=errlog)) as client:
                    self.client = client
                    ready.set_result(None)
                    await self._done.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    def stop(self) -> None:
        if self._done is not None:
            self.loop.call_soon_threadsafe(self._done.set)
        if self._holder is not None:
            self._holder.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        return (await self.call_checked(tool, arguments))[0]

    async def call_checked(self, tool: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """The answer's text (content and structured content) and whether it was an error."""
        assert self.client is not None
        result = await self.client.call_tool(tool, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        text += json.dumps(result.structured_content or {})
        self.answers.append(text)
        return text, bool(result.is_error)

    async def structured(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool's structured answer (recorded with the other answers)."""
        assert self.client is not None
        result = await self.client.call_tool(tool, arguments)
        content = result.structured_content or {}
        self.answers.append(" ".join(getattr(block, "text", "") for block in result.content) + json.dumps(content))
        return content

    async def read_everything(self) -> list[str]:
        """What a client can read back: every tool that reads, every resource."""
        assert self.client is not None
        texts = [await self.call("get_history", {"limit": 100}), await self.call("read_inbox", {"count": 100})]
        job_ids: list[str] = []
        for state in ("scheduled", "paused", "completed"):
            page = await self.structured("list_jobs", {"limit": 100, "state": state})
            job_ids += [job["job_id"] for job in page.get("jobs", [])]
        for job_id in job_ids:
            texts.append(await self.call("get_job", {"job_id": job_id}))
            texts.append(await self.call("get_history", {"job_id": job_id, "limit": 100}))
        resources = await self.client.list_resources()
        uris = [str(r.uri) for r in resources.resources]
        uris += [f"scheduler://jobs/{job_id}" for job_id in job_ids]
        uris += [f"scheduler://jobs/{job_id}/history" for job_id in job_ids]
        queues = await self.client.read_resource("scheduler://queues")
        listing = json.loads(" ".join(getattr(c, "text", "") for c in queues.contents) or "{}")
        names = [q.get("queue_name") for q in listing.get("queues", [])] if isinstance(listing, dict) else []
        for name in {*names, "q1", "results", "errors"} - {None}:
            texts.append(await self.call("read_queue", {"queue_name": name, "mode": "peek", "count": 50}))
            uris.append(f"scheduler://queues/{name}")
        for uri in uris:
            read = await self.client.read_resource(uri)
            texts.append(" ".join(getattr(c, "text", "") for c in read.contents))
        return texts

    async def settle(self) -> None:
        """Wait until no run is in progress (every `once` job the examples scheduled has fired)."""
        async with asyncio.timeout(WAIT):
            while True:
                assert self.client is not None
                status = (await self.client.call_tool("scheduler_status", {})).structured_content or {}
                if status.get("runs_in_progress") == 0 and status.get("jobs_count") == 0:
                    return
                await asyncio.sleep(0.05)


@pytest.fixture
def places(tmp_path: Path) -> Places:
    return Places(tmp_path)


@pytest.fixture
def http() -> Iterator[LocalServer]:
    with serve_http() as server:
        yield server


@pytest.fixture
def harness(places: Places) -> Iterator[Harness]:
    running = Harness(places)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def tmp_markers() -> list[str]:
    return sorted(str(p) for p in Path("/tmp").glob(f"*{MARKER}*"))


def hostile_run(harness: Harness, places: Places, http: LocalServer, examples: int) -> dict[str, int]:
    values = hostile_values(places, http)
    before = places.watched()
    tally = {"calls": 0, "refused": 0, "ran": 0}
    by_kind: dict[str, int] = {}
    counter = iter(range(10**9))

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(job_inputs(values), st.sampled_from(["run_now", "schedule"]),
           st.sampled_from([None, "results", "inbox"]), st.sampled_from([None, "errors", "inbox"]))
    def one(job: tuple[str, dict[str, Any]], how: str, result_queue: str | None, error_queue: str | None) -> None:
        name, input_data = job
        queues = {k: v for k, v in (("result_queue", result_queue), ("error_queue", error_queue)) if v}
        if how == "run_now":
            arguments = {"agentool_name": name, "input_data": input_data, **queues}
            text, refused = harness.run(harness.call_checked("run_now", arguments))
        else:
            arguments = {"job_id": f"h{next(counter)}", "schedule_type": "once", "schedule": "now",
                         "agentool_name": name, "input_data": input_data, **queues}
            text, refused = harness.run(harness.call_checked("schedule_job", arguments))
        tally["calls"] += 1
        tally["refused" if refused else "ran"] += 1
        if not refused:
            by_kind[name] = by_kind.get(name, 0) + 1
        assert not leaks(text), f"{how} {name} {input_data!r} revealed {leaks(text)}: {leak_context(text)}"

    one()
    harness.run(harness.settle())
    for text in harness.run(harness.read_everything()):
        assert not leaks(text), f"a read-back revealed {leaks(text)}: {leak_context(text)}"
    for text in harness.answers:
        assert not leaks(text), f"an answer revealed {leaks(text)}: {leak_context(text)}"
    log = harness.stderr_path.read_text(errors="replace")
    leaked_lines = [line for line in log.splitlines() if leaks(line)]
    assert not leaked_lines, f"log lines reveal secrets: {leaked_lines[:3]}"
    for path in (p for p in places.data.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("latin-1")
        assert not leaks(raw), f"the database file {path.name} holds {leaks(raw)}"
    assert places.watched() == before, "files outside the scheduler's own data changed"
    assert tmp_markers() == [], f"files appeared under /tmp: {tmp_markers()}"
    tally.update({f"ran_{kind}": count for kind, count in sorted(by_kind.items())})
    return tally


def test_hostile_arguments_to_every_job_kind_change_nothing_outside_and_reveal_no_secret(
    harness: Harness, places: Places, http: LocalServer, figures: Figures
) -> None:
    tally = hostile_run(harness, places, http, EXAMPLES)
    figures.add("hostile_arguments", **tally)
    assert tally["ran"] > 0 and tally["refused"] > 0


@pytest.mark.soak
def test_hostile_arguments_soak(harness: Harness, places: Places, http: LocalServer, figures: Figures) -> None:
    tally = hostile_run(harness, places, http, SOAK_EXAMPLES)
    figures.add("hostile_arguments_soak", **tally)
