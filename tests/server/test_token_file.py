"""The token file itself: generated private and atomically, read back as it is, refused when it cannot be trusted."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_scheduler.cli.token_file import load_token
from mcp_scheduler.errors import TokenFileError

from .conftest import scheduler_command


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask of 0, under which a careless os.open or mkdir would make world-readable files and folders."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_generated_token_file_is_0600_in_new_0700_folders_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "a" / "b" / "token"

    token = load_token(str(path))

    assert token.created and token.path == str(path)
    assert path.read_text() == token.value + "\n" and len(token.value) == 43
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "a") == mode_of(tmp_path / "a" / "b") == 0o700
    assert sorted(os.listdir(path.parent)) == ["token"]  # the temporary file is gone
    assert token.value not in repr(token)


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)

    load_token(str(tmp_path / "token"))

    assert mode_of(tmp_path) == 0o755


def test_an_existing_token_is_read_as_it_is_and_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  operator-chosen_token-1  \n\n")
    path.chmod(0o400)
    before = path.stat().st_mtime_ns

    token = load_token(str(path))

    assert (token.value, token.created) == ("operator-chosen_token-1", False)
    assert path.stat().st_mtime_ns == before and mode_of(path) == 0o400


def test_processes_starting_at_once_all_end_up_with_the_one_token_written(tmp_path: Path) -> None:
    path = tmp_path / "token"
    processes = [
        subprocess.Popen(scheduler_command("token", "--token-file", str(path)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert all(process.returncode == 0 for process in processes), outputs
    assert {out for out, _ in outputs} == {path.read_text()}
    assert sum("generated a new token" in err for _, err in outputs) == 1


@pytest.mark.parametrize("content", ["", "\n", "   \n", "two words\n", "a\tb", "x" * 5000, "bad\x00byte"],
                         ids=["empty", "newline", "blank", "space", "tab", "huge", "nul"])
def test_a_file_that_holds_no_single_token_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(0o600)

    with pytest.raises(TokenFileError, match="delete it and a new token is generated") as caught:
        load_token(str(path))

    assert str(path) in str(caught.value)
    assert path.read_text() == content  # left for the user to look at


def test_something_else_than_a_regular_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo, 0o600)
    folder.mkdir(mode=0o700)

    for path in (fifo, folder):
        with pytest.raises((TokenFileError, IsADirectoryError)) as caught:
            load_token(str(path))
        assert str(path) in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o700], ids=oct)
def test_a_file_with_any_permission_for_group_or_others_is_refused_with_the_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "token"
    path.write_text("secret-token\n")
    path.chmod(mode)

    if mode & 0o077 == 0:
        assert load_token(str(path)).value == "secret-token"  # 0700 is the owner's alone: accepted, as ssh does
        return
    with pytest.raises(TokenFileError) as caught:
        load_token(str(path))

    assert str(caught.value).endswith(f"chmod 600 {path}")
    assert f"Permissions {mode:04o}" in str(caught.value) and "secret-token" not in str(caught.value)
