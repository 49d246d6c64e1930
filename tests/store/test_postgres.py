"""What only the PostgreSQL store has: a URL that may carry a password, a server that may be away,
connections that may be cut, and a driver that the SQLite path must not import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._net import free_port
from tests.store.test_contract import eventually_async, job

pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[dev]' (or '.[postgres]')")

from mcp_scheduler.store.postgres import PostgresStore  # noqa: E402
from mcp_scheduler.store.postgres_connections import PostgresUnavailableError  # noqa: E402


def test_the_location_shows_the_url_without_its_password() -> None:
    assert PostgresStore("postgresql://sched:s3cret@db.example:5433/jobs").location == (
        "postgresql://sched:***@db.example:5433/jobs"
    )
    in_query = PostgresStore("postgresql://db.example/jobs?password=s3cret&sslmode=require").location
    assert in_query == "postgresql://db.example/jobs?password=***&sslmode=require"
    assert PostgresStore("host=db.example password=s3cret dbname=jobs").location == (
        "host=db.example password=*** dbname=jobs"
    )
    assert PostgresStore("postgresql://sched@db.example/jobs").location == "postgresql://sched@db.example/jobs"


async def test_a_server_that_does_not_answer_is_named_with_how_to_check_it() -> None:
    port = free_port()
    store = PostgresStore(f"postgresql://postgres:s3cret@127.0.0.1:{port}/jobs?connect_timeout=5")

    with pytest.raises(PostgresUnavailableError) as caught:
        await store.open()

    message = str(caught.value)
    assert f"127.0.0.1:{port}/jobs" in message and f"pg_isready -h 127.0.0.1 -p {port}" in message
    assert "s3cret" not in message
    await store.close()


async def test_a_schema_that_does_not_exist_is_named_with_how_to_create_it(postgres_url: str) -> None:
    url = postgres_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema"
    store = PostgresStore(url)

    with pytest.raises(PostgresUnavailableError, match="CREATE SCHEMA"):
        await store.open()
    await store.close()


async def test_a_store_reconnects_after_its_connections_are_cut_and_hears_the_others_again(
    postgres_url: str,
) -> None:
    import psycopg

    one, other = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await one.open()
    await other.open()
    try:
        await one.insert_jobs([job("before")])
        assert await one.changed() is True and await one.changed() is False
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (one.application_name,),
            ).fetchone()
        assert cut == (3,)  # writes, reads, LISTEN

        # Notifications may have been missed while the LISTEN connection was down: that counts as a change.
        await eventually_async(one.changed, within=5, what="changed() after the LISTEN connection was cut")
        assert [j.job_id async for page in one.load_jobs() for j in page] == ["before"]  # reads again
        await one.insert_jobs([job("after")])  # writes again
        await other.set_state("after", "paused", None)
        await eventually_async(one.changed, within=5, what="changed() after another store wrote")
        assert (await one.load_job("after")).state == "paused"  # type: ignore[union-attr]
    finally:
        await one.close()
        await other.close()


def test_importing_the_scheduler_and_its_sqlite_store_does_not_import_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys, mcp_scheduler, mcp_scheduler.store, mcp_scheduler.cli, mcp_scheduler.runtime\n"
        "import agentool_bridge, agentool_bridge.toolkits\n"
        "from mcp_scheduler.store import SQLiteStore\n"
        "from agentool_bridge.toolkits import KVStore, QueueStore\n"
        # the toolkits' stores on a SQLite file and in memory, as a runtime on SQLite builds them
        "for database in (sys.argv[1], None):\n"
        "    QueueStore(database).close(); KVStore(database).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "toolkits.db")], capture_output=True, text=True, timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    import mcp_scheduler.store

    assert mcp_scheduler.store.PostgresStore is PostgresStore  # reached lazily


async def test_changed_answers_true_now_and_then_even_without_a_notification(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A safety net for a notification lost on the way: the follower then reads the feed, which is the truth.
    from mcp_scheduler.store import postgres_connections

    monkeypatch.setattr(postgres_connections, "RECHECK_EVERY", 0.2)
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        assert await store.changed() is True and await store.changed() is False
        await eventually_async(store.changed, within=5, what="changed() without a notification")
    finally:
        await store.close()


def test_store_for_names_the_backend_of_a_database_string(tmp_path: Path) -> None:
    from mcp_scheduler.store import SQLiteStore, store_for

    for url in ("postgresql://sched:s3cret@db.example/jobs", "postgres://db.example/jobs"):
        store = store_for(url)
        assert isinstance(store, PostgresStore) and "s3cret" not in (store.location or "")
    on_file = store_for(str(tmp_path / "jobs.sqlite"))
    assert isinstance(on_file, SQLiteStore) and on_file.location == str(tmp_path / "jobs.sqlite")
    in_memory = store_for(None)
    assert isinstance(in_memory, SQLiteStore) and in_memory.location is None
