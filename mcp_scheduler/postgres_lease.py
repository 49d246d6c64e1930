"""The runner lease on PostgreSQL: a session advisory lock held on a dedicated connection.

The lock lives as long as the session that took it. That session is opened with
`idle_session_timeout` = the lease time, and the runner pings it every second (every sixth of a short
lease time, so that one late ping does not cost the lease): when the runner dies
or is cut off, the server ends the session (and frees the lock) within the lease time. The runner
stops firing once a ping has not succeeded for half the lease time, before the server can give
the lock to another process (fencing). Fires are claimed through the same session, so a runner
whose session is gone cannot claim one. Use a direct connection, not a transaction pooler: a
pooler would hand the lock's session to others.

Each holder also draws a fencing token when it takes the lock: `scheduler_lease.epoch`, raised by one, with
the holder's lease time beside it. The store checks the token in the transaction of each of the runner's
writes (`PostgresStore.fence_with`), so a runner that lost the lease writes nothing more as the runner; and
the new holder reads its predecessor's lease time, which tells it when that one's runs are known stopped
(`takeover_wait`).

psycopg is imported here only; this module is imported only for a `postgresql://` database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

import psycopg

from agentool_bridge.postgres import ADVISORY_XACT_LOCK, SCHEMA_LOCK

from .clocks import Clock, SystemClock
from .lease import KEEP_EVERY

__all__ = ["PostgresLease", "lease_key", "HOLDER_QUERY", "STOPPED_QUERY", "STOP_MARGIN"]

logger = logging.getLogger(__name__)

CLAIMS = """
CREATE TABLE IF NOT EXISTS scheduler_claims (
    job_id TEXT NOT NULL,
    scheduled_time TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, scheduled_time)
)
"""
FENCE = """
CREATE TABLE IF NOT EXISTS scheduler_lease (
    id INT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    lease_time DOUBLE PRECISION NOT NULL
);
ALTER TABLE scheduler_lease ADD COLUMN IF NOT EXISTS stopped TIMESTAMPTZ
"""
# The next fencing token, and the lease time of the holder before (None: there was none).
ADVANCE = (
    "WITH previous AS (SELECT lease_time FROM scheduler_lease WHERE id = 1) "
    "INSERT INTO scheduler_lease (id, epoch, lease_time) VALUES (1, 1, %s) ON CONFLICT (id) DO UPDATE "
    "SET epoch = scheduler_lease.epoch + 1, lease_time = EXCLUDED.lease_time, stopped = NULL "
    "RETURNING epoch, (SELECT lease_time FROM previous)"
)
STOP_MARGIN = 1.0
"""Seconds a runner that lost its lease may take, beyond half its lease time, to notice and cancel its runs."""
CLAIMS_KEPT = "7 days"  # claims older than this are deleted (a fire that old is never due again)
PRUNE_EVERY = 3600.0  # seconds between those deletions
WHERE = "SELECT current_database() || '.' || current_schema()"
# The session holding the lease with key %s on this database: (pid, application_name, client address, start).
HOLDER_QUERY = (
    "SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


# Since when the holder has stopped processing jobs (stop_scheduler); NULL while it processes them.
STOPPED_QUERY = "SELECT stopped FROM scheduler_lease WHERE id = 1"


def lease_key(where: str) -> int:
    """The advisory lock key of the runner lease of `where` (`database.schema`, as `WHERE` gives it)."""
    digest = hashlib.sha256(f"mcp-scheduler runner lease {where}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF  # classid 0, objid = key


class PostgresLease:
    """The runner lease of one schema of a PostgreSQL database (see the module docstring)."""

    claims_each_fire = True

    def __init__(self, url: str, *, lease_time: float = 10.0, clock: Clock | None = None) -> None:
        if lease_time < 2:
            raise ValueError("lease_time must be at least 2 seconds")
        self._url = url
        self.lease_time = lease_time
        self._clock = clock or SystemClock()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._key: int | None = None
        # monotonic() when the last successful ping was sent: the session was alive then (not later than when
        # the server could free the lock), so the runs stop by _confirmed + lease_time / 2 (+ STOP_MARGIN)
        self._confirmed = 0.0
        self.token: int | None = None  # the fencing token last drawn
        self._takeover_wait = 0.0
        self._holder = "another process"
        self._holder_stopped: datetime | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the lease's session
        self._pruned = float("-inf")
        self._claims: list[tuple[str, datetime, asyncio.Future[bool]]] = []
        self._claiming: asyncio.Task[None] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            application_name=f"mcp-scheduler pid {os.getpid()} on {socket.gethostname()}"[:63],
            connect_timeout=max(2, int(self.lease_time / 2)),
            tcp_user_timeout=int(self.lease_time * 1000 / 2),
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=max(1, int(self.lease_time / 4)),
        )
        await conn.execute(f"SET idle_session_timeout = {int(self.lease_time * 1000)}")
        # Raising the token waits for the writes that checked the old one (they hold its row): not for long.
        await conn.execute(f"SET lock_timeout = {int(self.lease_time * 1000 / 2)}")
        if self._key is None:
            cursor = await conn.execute(WHERE)
            row = await cursor.fetchone()
            self._key = lease_key(str(row[0]) if row else "")
            async with conn.transaction():  # several processes may create the tables at once (the store's lock)
                await conn.execute(ADVISORY_XACT_LOCK, (SCHEMA_LOCK,))
                await conn.execute(CLAIMS)
                await conn.execute(FENCE)
        return conn

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        async with self._lock:
            conn = await self._connect()
            try:
                sent = self._clock.monotonic()
                cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
                row = await cursor.fetchone()
                if row and row[0]:
                    if await self._advance(conn):
                        self._conn, self._confirmed = conn, sent
                        return True
                else:
                    self._holder = await self._find_holder(conn)
            except BaseException:
                await conn.close()
                raise
            await conn.close()
            return False

    async def _advance(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Draw the next fencing token; False if a write of the last holder still holds the old one (a process
        frozen in the middle of a transaction): the lock is then given back and taken again later."""
        try:
            cursor = await conn.execute(ADVANCE, (self.lease_time,))
        except psycopg.errors.LockNotAvailable:
            self._holder = "another process (frozen in the middle of a write)"
            logger.warning("A write of the last runner still holds the fencing token: trying again later")
            return False
        row = await cursor.fetchone()
        assert row is not None
        self.token, previous = int(row[0]), row[1]
        # The last holder cancels its runs within half its lease time of its last ping, which came before
        # the server freed the lock: before now.
        self._takeover_wait = 0.0 if previous is None else float(previous) / 2 + STOP_MARGIN
        return True

    def takeover_wait(self) -> float:
        """Seconds from when this process took the lease until the last holder's runs are known stopped."""
        return self._takeover_wait

    def fencing_token(self) -> int | None:
        """The fencing token the store's writes of the runner check: the one drawn with the lease while it is
        held; 0, which no holder draws, once it is lost or given back (the runs it cut short stay `running` in
        the store for the next holder to record `interrupted`, and to retry if their job asks for it); None if
        this process never held the lease."""
        if self.token is None:
            return None
        return self.token if self._conn is not None else 0

    async def _find_holder(self, conn: psycopg.AsyncConnection[Any]) -> str:
        cursor = await conn.execute(HOLDER_QUERY, (self._key,))
        row = await cursor.fetchone()
        stopped = await (await conn.execute(STOPPED_QUERY)).fetchone()
        self._holder_stopped = None if row is None or stopped is None else stopped[0]
        if row is None:
            return "another process (it just let go)"
        _pid, name, address, since = row
        return f"{name or 'a session'} from {address or 'a local socket'} since {since:%Y-%m-%dT%H:%M:%S%z}"

    def keep_every(self) -> float:
        return min(KEEP_EVERY, self.lease_time / 6)

    async def keep(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            async with self._lock:
                sent = self._clock.monotonic()
                async with asyncio.timeout(self.lease_time / 4):  # not wait_for: on 3.11 it can swallow a cancel
                    await conn.execute("SELECT 1")
            self._confirmed = sent
        except (psycopg.Error, TimeoutError, OSError) as exc:
            if self.is_held() and not conn.closed:
                logger.warning("The runner lease did not answer a ping (%s); trying again", exc)
                return True
            await self._drop()
            return False
        if self._confirmed - self._pruned > PRUNE_EVERY:
            self._pruned = self._confirmed
            await self.prune_claims()
        return True

    async def prune_claims(self) -> int:
        """Delete the fire claims older than CLAIMS_KEPT (the runner does this hourly); returns how many."""
        conn = self._conn
        if conn is None:
            return 0
        try:
            async with self._lock:
                cursor = await conn.execute(
                    f"DELETE FROM scheduler_claims WHERE claimed_at < now() - interval '{CLAIMS_KEPT}'"
                )
        except (psycopg.Error, OSError) as exc:
            logger.warning("Could not delete old fire claims (trying again in an hour): %s", exc)
            return 0
        return cursor.rowcount

    def is_held(self) -> bool:
        return self._conn is not None and self._clock.monotonic() - self._confirmed < self.lease_time / 2

    async def claim(self, job_id: str, scheduled: datetime) -> bool:
        # The fires due together are claimed together: one statement (one round trip on the lease's
        # session) per batch instead of one per fire, which made the last of 1,000 fires 2 s late.
        if self._conn is None or not self.is_held():
            return False
        claim = asyncio.get_running_loop().create_future()
        self._claims.append((job_id, scheduled, claim))
        if self._claiming is None:
            self._claiming = asyncio.create_task(self._claim_batches(), name="mcp-scheduler-claims")
        result: bool = await claim
        return result

    async def _claim_batches(self) -> None:
        try:
            while self._claims:
                await asyncio.sleep(0)  # let the other fires due now add their claims
                batch, self._claims = self._claims, []
                granted = await self._insert_claims([(job_id, when) for job_id, when, _ in batch])
                for job_id, when, claim in batch:
                    won = (job_id, when) in granted
                    granted.discard((job_id, when))  # the same fire twice in one batch: the first wins
                    if not claim.done():
                        claim.set_result(won)
        finally:
            self._claiming = None
            for _, _, claim in self._claims:
                if not claim.done():
                    claim.set_result(False)
            self._claims = []

    async def _insert_claims(self, fires: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
        conn = self._conn
        if conn is None or not self.is_held():
            return set()
        try:
            async with self._lock:
                cursor = await conn.execute(
                    "INSERT INTO scheduler_claims (job_id, scheduled_time) "
                    "SELECT * FROM unnest(%s::text[], %s::timestamptz[]) ON CONFLICT DO NOTHING "
                    "RETURNING job_id, scheduled_time",
                    ([job_id for job_id, _ in fires], [when for _, when in fires]),
                )
                rows = await cursor.fetchall()
        except (psycopg.Error, OSError) as exc:
            logger.warning("Could not claim %d fire(s): %s", len(fires), exc)
            return set()
        return {(str(job_id), when) for job_id, when in rows}  # aware datetimes: equal instants compare equal

    def holder(self) -> str:
        return "this process" if self._conn is not None else self._holder

    def holder_stopped(self) -> str | None:
        stopped = None if self._conn is not None else self._holder_stopped
        return None if stopped is None else stopped.astimezone(UTC).isoformat(timespec="seconds")

    async def note_stopped(self, since: datetime | None) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            async with self._lock:
                await conn.execute(
                    "UPDATE scheduler_lease SET stopped = %s WHERE id = 1 AND epoch = %s", (since, self.token)
                )
        except (psycopg.Error, OSError) as exc:
            logger.warning(
                "Could not tell the other processes that the runner %s: %s",
                "stopped" if since else "started again",
                exc,
            )

    @property
    def session_pid(self) -> int | None:
        """The server process of the session holding the lease (for operators: pg_stat_activity), or None."""
        return None if self._conn is None or self._conn.closed else self._conn.info.backend_pid

    async def release(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                # Unlocked before closing: the server ends a closed session's backend (and its locks) a moment
                # later, when a standby trying at once would still find the lock taken.
                with contextlib.suppress(psycopg.Error, OSError):
                    await conn.execute("SELECT pg_advisory_unlock_all()")
                await conn.close()  # ends the session: the lock goes with it
            except (psycopg.Error, OSError):
                pass
