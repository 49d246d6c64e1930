"""The scheduler runtime: one object that owns everything a scheduler needs.

`SchedulerRuntime` holds the AgenTool injector (and through it the registry), the built-in
toolkits' stores, the job store, the scheduler service and the event bus. The MCP server, the CLI
and the AgenTool face are all handed a runtime; nothing of it lives in module globals, so one
process can run several runtimes side by side (each on its own database).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Self

from agentool_bridge import AgenTool, AgenToolInjector, discover_toolkits, load_toolkit
from agentool_bridge.extras import POSTGRES, require_extra
from agentool_bridge.toolkits import KVStore, LogSink, QueueMessageEvent, QueueStore
from agentool_bridge.toolkits import is_postgres_url as _is_postgres_url
from agentool_bridge.toolkits.agent import AgentToolkit
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.http import HttpToolkit
from agentool_bridge.toolkits.inbox import limit_inbox
from agentool_bridge.toolkits.mcp import MCPConnectionPool, MCPToolkit, load_servers
from agentool_bridge.toolkits.notify import NotifyToolkit
from agentool_bridge.toolkits.shell import ShellRunner

from .clocks import Clock
from .errors import SchedulerStateError
from .events import EventBus, QueueEvent
from .lease import FileLease, NullLease, RunnerLease
from .models import BackgroundRunner, SchedulerStatus
from .presence import Presence
from .runner_info import read_runner_info
from .scheduler import SchedulerService, ServiceConfig
from .setup_checks import check_log_dir, prepare_database_folder
from .store import SchedulerStore, store_for

if TYPE_CHECKING:
    from .outbound_events import OutboundEvents, OutboundEventsConfig

__all__ = ["SchedulerRuntime", "is_postgres_url", "make_lease"]

logger = logging.getLogger(__name__)


def is_postgres_url(database: str | None) -> bool:
    """True if `database` is a PostgreSQL URL (`postgresql://...`) rather than a SQLite file."""
    return _is_postgres_url(database)


def make_lease(database: str, config: ServiceConfig) -> RunnerLease:
    """The runner lease of `database`: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""
    if is_postgres_url(database):
        from .postgres_lease import PostgresLease

        return PostgresLease(database, lease_time=config.lease_time)
    return FileLease(database)


class SchedulerRuntime:
    """One scheduler and what it owns: `async with SchedulerRuntime(ServiceConfig(database=...)) as rt: ...`.

    On construction it registers the built-in toolkits (`queue`, `logging`, `storage_kv`; `queue` and
    `storage_kv` on the scheduler's database, a SQLite file or PostgreSQL, so that every process on
    it sees the same messages and values) and any toolkits given by reference or entry point into its
    injector's registry. `open()` starts the scheduler; `close()` stops it and closes the toolkits'
    databases. A closed runtime cannot be opened again.

    `injector`: run on an existing injector (the seed's scheduler of `create_scheduler_agent()` runs on
    the injector active where it is made); by default the runtime has an injector of its own.

    `toolkit_config`: what the toolkits may do: which private addresses http may reach, the servers file,
    the default model, the executables shell may run (and the variables it may set, the runs at once),
    the directory where logging may keep files.

    `transport`: while open, register this process as a server of its SQLite database under this name
    (stdio, http, sse), so that `mcp-scheduler status` lists it; None (the default) registers nothing.
    `address`: where this process listens (`host:port`), registered with it: a server started on the same
    port names it. `clock`: the time the scheduler reads (None: the real one; a virtual one in tests).

    Raises `MissingExtraError` (naming the install command) for a PostgreSQL URL when psycopg is not
    installed, and `SetupError` for a database or `--log-dir` folder this user cannot use.
    """

    def __init__(
        self,
        config: ServiceConfig | None = None,
        *,
        toolkits: Sequence[str] = (),
        discover_entry_points: bool = False,
        injector: AgenToolInjector | None = None,
        store: SchedulerStore | None = None,
        lease: RunnerLease | None = None,
        transport: str | None = None,
        toolkit_config: ToolkitConfig | None = None,
        address: str | None = None,
        clock: Clock | None = None,
        outbound_events: OutboundEventsConfig | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self.toolkit_config = toolkit_config or ToolkitConfig()
        database = self.config.database
        postgres = is_postgres_url(database)
        if postgres:
            require_extra(POSTGRES)  # MissingExtraError: one line naming the install command
        self._presence = (
            Presence(database, transport=transport, address=address) if transport and database and not postgres
            else None
        )
        if database and not postgres:
            prepare_database_folder(database)  # SetupError: one line naming --db
        if self.toolkit_config.log_dir is not None:
            check_log_dir(self.toolkit_config.log_dir)
        self.injector = injector or AgenToolInjector()
        self.registry = self.injector.registry
        self.events = EventBus()
        self._queues = QueueStore(database)
        limit_inbox(self._queues, self.config.inbox_limit)
        self._unhook = self._queues.add_enqueue_hook(self._on_enqueue)
        self.registry.add_listener(self._on_registry_change)
        self._own: list[AgenTool] = []
        try:
            self._own.append(self.registry.register(self._queues.agentool()))  # closes the store from now on
            self._own.append(self.registry.register(LogSink(self.toolkit_config.log_dir).agentool()))
            self._own.append(self.registry.register(KVStore(database).agentool()))
            for agentool in self._job_kinds():
                self._own.append(self.registry.register(agentool))
            if discover_entry_points:
                discover_toolkits(injector=self.injector)
            for reference in toolkits:
                load_toolkit(reference, injector=self.injector)
            if store is None:
                store = store_for(database)
            if lease is None:
                lease = make_lease(database, self.config) if database and self.config.use_lease else NullLease()
            self.service = SchedulerService(
                self.config,
                injector=self.injector,
                store=store,
                events=self.events,
                queues=lambda: self._queues,
                lease=lease,
                address_rules=self.toolkit_config.address_rules,
                clock=clock,
            )
        except BaseException:
            self._release_toolkits()
            raise
        self.outbound_events: OutboundEvents | None = None
        if outbound_events is not None:
            from .outbound_events import OutboundEvents

            service = self.service
            self.outbound_events = OutboundEvents(outbound_events, HttpToolkit(self.toolkit_config),
                                                  service.job_name, lambda: service.is_runner)
            self.events.subscribe(self.outbound_events.listener)
        self._closed = False

    def _job_kinds(self) -> list[AgenTool]:
        """The AgenTools that reach outside the process: http, mcp, agent, shell, notify (per `toolkit_config`)."""
        kinds: list[AgenTool] = []
        kinds.append(HttpToolkit(self.toolkit_config).agentool())
        kinds.append(NotifyToolkit(lambda: self._queues, self.toolkit_config).agentool())
        servers = load_servers(self.toolkit_config.servers_file)  # ServersFileError: the server does not start
        self.mcp_connections = MCPConnectionPool(servers, environ=self.config.environ)
        kinds.append(MCPToolkit(self.mcp_connections).agentool())
        kinds.append(AgentToolkit(self.toolkit_config, connections=self.mcp_connections).agentool())
        config = self.toolkit_config
        kinds.append(
            ShellRunner(
                config.shell_executables,
                env=config.shell_env,
                max_processes=config.shell_max_processes,
                environ=self.config.environ,
            ).agentool()
        )
        return kinds

    @property
    def queues(self) -> QueueStore:
        """The store behind the registered `queue` AgenTool: where jobs' result and error queues go.

        It follows the registry: registering another `queue` AgenTool (say on another database) moves
        the scheduler's queues, and their notifications, there.
        """
        return self._queues

    def _on_registry_change(self, name: str, agentool: AgenTool | None) -> None:
        if name != "queue" or agentool is None or not isinstance(agentool.backend, QueueStore):
            return
        if agentool.backend is not self._queues:
            self._unhook()
            self._queues = agentool.backend
            limit_inbox(self._queues, self.config.inbox_limit)
            self._unhook = self._queues.add_enqueue_hook(self._on_enqueue)

    def _on_enqueue(self, event: QueueMessageEvent) -> None:
        self.events.publish(QueueEvent(event.queue_name, event.message_id, event.message, event.level))

    def status(self) -> SchedulerStatus:
        """The scheduler's state and counts, with the store's background runner on this machine if one runs."""
        status = self.service.status()
        database = self.config.database
        info = read_runner_info(database) if database else None
        if info is None:
            return status
        runner = BackgroundRunner(pid=info.pid, since=info.since, started_by=info.started_by,  # type: ignore[arg-type]
                                  log_file=info.log_file, socket=info.socket)
        return status.model_copy(update={"background_runner": runner})

    @property
    def is_open(self) -> bool:
        """True while the scheduler runs."""
        return self.service.is_open

    @property
    def closed(self) -> bool:
        """True once `close()` has run: the toolkits' databases are closed."""
        return self._closed

    async def open(self) -> Self:
        """Open the scheduler: load the jobs and start firing them."""
        if self._closed:
            raise SchedulerStateError("This scheduler runtime was closed; create a new one.")
        if self.outbound_events is not None:  # before the jobs load: runs found interrupted are events too
            await self.outbound_events.check()
            self.outbound_events.start()
        try:
            await self.service.open()
            if self._presence is not None:
                try:
                    self._presence.register()
                except BaseException:
                    await self.service.close()
                    raise
        except BaseException:
            if self.outbound_events is not None:
                await self.outbound_events.aclose()
            raise
        return self

    async def close(self) -> None:
        """Stop the scheduler (runs in progress get `close_timeout` to finish), then close the toolkits."""
        if self._closed:
            return
        try:
            if self._presence is not None:
                self._presence.unregister()
            try:
                await self.service.close()  # raises if the last run records could not be written: the rest still closes
            finally:
                await self.mcp_connections.aclose()  # awaited, so stdio servers stop before the event loop ends
                if self.outbound_events is not None:  # after the runs ended: their events go out first
                    await self.outbound_events.aclose()
        finally:
            self._closed = True
            self._release_toolkits()

    def _release_toolkits(self) -> None:
        # Only what this runtime registered: a runtime on a shared injector leaves the others alone.
        for agentool in self._own:
            if self.registry.exists(agentool.name) and self.registry.get(agentool.name) is agentool:
                self.registry.unregister(agentool.name)
            else:
                agentool.close()
        self._own.clear()
        self._unhook()
        self.registry.remove_listener(self._on_registry_change)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextmanager
    def activate(self) -> Iterator[Self]:
        """Make this runtime's injector the one `get_injector()` returns in this context."""
        with self.injector.activate():
            yield self
