"""The fencing token's check on PostgreSQL, in the transaction of a write that only the runner may make.

`PostgresStore.fence_with` gives the store the token of the runner lease this process holds (`RunnerLease.
fencing_token`: 0 once it lost the lease, None if it never held it). A write of the runner (its fires' records and
bookkeeping, the condition states it stores, the handed-over runs it takes) checks it first: unless it is the newest
token drawn, the write is not made, so that a runner that lost its lease (frozen, cut off) and goes on for a moment
cannot overwrite what the next runner writes. SQLite needs no token: its lease is a file lock, which a live process
never loses, so no two processes can be the runner at once. No psycopg import here: the SQLite store's mixins share
modules with this check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["FENCE", "token_is_stale"]

# Holds the token's row until commit: the next runner cannot raise the token between the check and the commit.
FENCE = "SELECT 1 FROM scheduler_lease WHERE id = 1 AND epoch = %s FOR SHARE"


async def token_is_stale(conn: psycopg.AsyncConnection[Any], token: int) -> bool:
    """True if `token` is not the lease's newest: the caller's transaction then writes nothing of the runner's (a
    token of None, from a process that never held the lease, is not checked)."""
    return not await (await conn.execute(FENCE, (token,))).fetchone()
