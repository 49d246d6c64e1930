"""Run ids drawn from a buffer of random bytes: unique, 32 hex digits, and never the parent's in a forked child."""

from __future__ import annotations

import os

from mcp_scheduler.runs.run_ids import RunIds


def test_run_ids_are_32_hex_digits_and_do_not_repeat_across_refills() -> None:
    ids = RunIds()
    drawn = [ids() for _ in range(3000)]  # several reads of the buffer
    assert len(set(drawn)) == len(drawn)
    assert all(len(run_id) == 32 and int(run_id, 16) >= 0 for run_id in drawn)


def test_a_forked_child_does_not_draw_the_ids_its_parent_draws_next() -> None:
    ids = RunIds()
    ids()  # the buffer is read: the child would inherit it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its first ids and leave at once
        try:
            os.write(write, "".join(ids() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 4096).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    parent = "".join(ids() for _ in range(4))
    assert len(child) == len(parent) == 128
    assert child != parent
