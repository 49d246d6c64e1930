"""A full disk under the SQLite store (a 3 MB tmpfs; skipped where it cannot be mounted): one clear error, the
store's own WAL never fills the disk, and writes work again once there is room, without reopening anything."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcp_scheduler import DiskFullError
from mcp_scheduler.models import RunRecord
from mcp_scheduler.presence import Presence
from mcp_scheduler.store import SQLiteStore
from tests._disk import fill, small_disk
from tests.store.test_contract import job, run


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "3m") as folder:
        yield folder


@pytest.fixture
async def store(disk: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(disk / "s.db")
    await opened.open()
    yield opened
    await opened.close()


def batch(number: int, size: int = 20, jobs: int = 50) -> list[RunRecord]:
    """`size` records with a 300-character result each, spread over `jobs` jobs."""
    return [run(f"b{number}-{k}", job_id=f"j{number % jobs}").model_copy(update={"result": {"text": "x" * 300}})
            for k in range(size)]


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_a_write_on_a_full_disk_raises_disk_full_naming_the_file_and_the_free_space_and_nothing_else(
    store: SQLiteStore, disk: Path
) -> None:
    await store.insert_jobs([job("before")])
    filler = fill(disk)

    with pytest.raises(DiskFullError) as raised:
        await store.insert_jobs([job("while-full")])
    message = str(raised.value)
    assert message.startswith(f"The database's disk is full: {disk / 's.db'} could not be written (")
    assert " free on its file system" in message and "Free space on that disk" in message
    assert isinstance(raised.value, OSError) and "OperationalError" not in message
    with pytest.raises(DiskFullError):
        await store.write_batch(batch(0), [], 100)

    # reads do not need room
    assert [j.job_id async for page in store.load_jobs() for j in page] == ["before"]
    assert await store.history(None) == []

    filler.unlink()
    await store.insert_jobs([job("after")])  # the same store, not reopened
    await store.write_batch(batch(1), [], 100)
    assert [j.job_id async for page in store.load_jobs() for j in page] == ["before", "after"]
    assert len(await store.history(None, limit=100)) == 20


async def test_the_stores_own_wal_never_fills_a_small_disk_it_is_truncated_when_it_outgrows_half_the_free_space(
    store: SQLiteStore, disk: Path
) -> None:
    # 40,000 records of which 500 are kept (10 per job): a few hundred kB of data, but SQLite's WAL grows to
    # 4 MB between its own checkpoints, more than this disk holds.
    wal = Path(f"{disk / 's.db'}-wal")
    largest = 0
    for number in range(2000):
        await store.write_batch(batch(number), [], 10)
        largest = max(largest, size(wal))
    assert len(await store.history(None, limit=1000)) == 500
    assert 0 < largest < 3 << 19  # at most about half of the disk
    assert os.statvfs(disk).f_bfree > 0


def test_a_registration_that_finds_the_disk_full_says_so_and_leaves_no_file_behind(disk: Path) -> None:
    fill(disk)
    presence = Presence(disk / "s.db", transport="stdio")
    with pytest.raises(DiskFullError, match="disk is full"):
        presence.register()
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # neither the draft nor its folder
    presence.unregister()
