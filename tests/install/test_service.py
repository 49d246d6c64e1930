"""`mcp-scheduler service install|uninstall|status`: a user service that runs a store's jobs, without root.

systemd does not run in this sandbox (`systemctl --user` fails: no user bus): the tests run the real
`systemctl` for that path, a PATH without it, and a stand-in `systemctl` program that records its arguments
for the path where the manager works. The unit is checked by `systemd-analyze verify` where it is installed.
"""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from mcp_scheduler.install import Machine, service_plan
from mcp_scheduler.runner_paths import service_marker_path, store_key
from mcp_scheduler.status import sqlite_runner

from ._support import BARE_PATH, User, make_user

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def user(tmp_path: Path) -> User:
    return make_user(tmp_path)


def unit_sections(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(text)
    return unit


def exec_start(text: str) -> list[str]:
    """ExecStart's words as systemd passes them (`%%` and `$$` are its escapes of `%` and `$`)."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(unit_sections(text)["Service"]["ExecStart"])]


def fake_manager(folder: Path, name: str = "systemctl", code: int = 0) -> Path:
    """A `systemctl` (or `launchctl`) on PATH that appends its arguments to `calls.txt` and exits with `code`."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text(f'#!/bin/sh\necho "$*" >> "{folder}/calls.txt"\nexit {code}\n')
    program.chmod(0o755)
    return folder / "calls.txt"


def test_service_install_print_shows_a_unit_systemd_accepts_and_writes_nothing(user: User) -> None:
    database = user.root / "my jobs" / "100% sure.sqlite"  # a space and a specifier character
    done = user.cli("service", "install", "--print", "--db", str(database), "--timezone", "Europe/Berlin",
                    "--allow-shell", "cp")
    assert done.returncode == 0, done.stderr
    unit = unit_sections(done.stdout)
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"
    argv = exec_start(done.stdout)
    assert argv[0] == str(Path(sys.executable).with_name("mcp-scheduler"))
    assert argv[1:] == ["runner", "--started-by", "service", "--db", str(database), "--timezone", "Europe/Berlin",
                        "--allow-shell", "cp"]
    name = f"mcp-scheduler-{store_key(str(database))}.service"
    assert str(user.config / "systemd" / "user" / name) in done.stderr
    assert "systemctl --user enable --now " + name in done.stderr
    assert not [p for p in user.root.rglob("*") if p.is_file()], "--print wrote a file"
    if SYSTEMD_ANALYZE is not None:
        copy = user.root / name
        copy.write_text(done.stdout)
        verified = subprocess.run([SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr  # warnings too


def test_the_printed_service_command_runs_the_store_s_jobs_with_a_bare_path(user: User) -> None:
    database = user.root / "service.sqlite"
    done = user.cli("service", "install", "--print", "--db", str(database), "--timezone", "UTC")
    argv = exec_start(done.stdout)
    log = (user.root / "runner.log").open("wb")
    process = subprocess.Popen(argv, env=user.bare_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               cwd="/")
    try:
        holder = None
        for _ in range(600):  # up to 30 s: it takes the store's runner lease
            holder = sqlite_runner(str(database)) if database.exists() else None
            if holder is not None or process.poll() is not None:
                break
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        assert holder is not None, (user.root / "runner.log").read_text()[-3000:]
        assert holder["pid"] == process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_service_install_without_a_user_manager_writes_the_files_and_says_what_to_run(user: User) -> None:
    """This sandbox's real systemctl: it is there, but no user session bus answers it."""
    if shutil.which("systemctl", path=BARE_PATH) is None:
        pytest.skip("no systemctl in /usr/bin:/bin here (the test below covers a PATH without it)")
    done = user.cli("service", "install", "--timezone", "UTC", path=BARE_PATH)

    assert done.returncode == 1, done.stderr
    unit = user.config / "systemd" / "user" / "mcp-scheduler.service"
    assert unit.is_file()
    assert "`systemctl --user daemon-reload` failed" in done.stderr
    assert "installed but not running" in done.stderr
    assert "systemctl --user daemon-reload && systemctl --user enable --now mcp-scheduler.service" in done.stderr
    marker = json.loads(user.marker().read_text())
    assert marker["unit"] == str(unit) and marker["store"] == str(user.database)
    assert marker["command"] == exec_start(unit.read_text()) and marker["enabled"] is False


def test_service_install_with_no_systemctl_at_all_says_so(user: User) -> None:
    empty = user.root / "empty-bin"
    empty.mkdir()
    done = user.cli("service", "install", path=str(empty))
    assert done.returncode == 1
    assert "systemctl is not on PATH" in done.stderr
    assert (user.config / "systemd" / "user" / "mcp-scheduler.service").is_file()


def test_install_and_uninstall_through_a_working_systemctl(user: User) -> None:
    calls = fake_manager(user.root / "bin")
    path = f"{user.root / 'bin'}:{BARE_PATH}"

    done = user.cli("service", "install", "--timezone", "UTC", path=path)

    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now mcp-scheduler.service"]
    assert "journalctl --user -u mcp-scheduler" in done.stderr
    marker_path = user.marker()
    assert json.loads(marker_path.read_text())["enabled"] is True
    assert marker_path.stat().st_mode & 0o777 == 0o600

    gone = user.cli("service", "uninstall", path=path)

    assert gone.returncode == 0, gone.stderr
    assert calls.read_text().splitlines()[2:] == ["--user disable --now mcp-scheduler.service",
                                                  "--user daemon-reload"]
    assert not (user.config / "systemd" / "user" / "mcp-scheduler.service").exists()
    assert not marker_path.exists()
    again = user.cli("service", "uninstall", path=path)
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_secrets_live_in_a_file_only_the_user_reads_never_in_the_unit(user: User) -> None:
    value = 'p4ss "quoted" $HOME `tick` \\ back'
    done = user.cli("service", "install", "--secret", "API_KEY", "--secret", "UNSET_NAME", path=BARE_PATH,
                    API_KEY=value)
    unit = (user.config / "systemd" / "user" / "mcp-scheduler.service").read_text()
    assert value not in unit and "p4ss" not in unit
    env_file = user.marker().with_suffix(".env")
    assert f"EnvironmentFile=-{env_file}" in unit
    assert env_file.stat().st_mode & 0o777 == 0o600
    # systemd reads an EnvironmentFile's double-quoted values with the shell's rules
    read = subprocess.run(["sh", "-c", 'set -a; . "$0"; printf %s "$API_KEY"', str(env_file)], capture_output=True,
                          text=True, check=True, env={"PATH": BARE_PATH})
    assert read.stdout == value
    assert "# UNSET_NAME=" in env_file.read_text()
    assert "UNSET_NAME not set in this environment" in done.stderr
    assert value not in done.stderr
    if SYSTEMD_ANALYZE is not None:  # the EnvironmentFile line and the file itself are what systemd accepts
        verified = subprocess.run([SYSTEMD_ANALYZE, "verify", str(user.config / "systemd" / "user" /
                                                                   "mcp-scheduler.service")],
                                  capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr  # warnings too


async def test_service_status_says_installed_running_unit_and_log(user: User) -> None:
    calls = fake_manager(user.root / "bin")
    path = f"{user.root / 'bin'}:{BARE_PATH}"
    missing = user.cli("service", "status", path=path)
    assert missing.returncode == 1
    assert "service:  not installed" in missing.stdout
    assert user.cli("service", "install", "--timezone", "UTC", path=path).returncode == 0

    server = StdioServerParameters(command=sys.executable, args=["-m", "mcp_scheduler", "--timezone", "UTC"],
                                   env=user.bare_env())
    async with Client(server) as client:  # a server of the store, holding its runner lease
        await client.list_tools()
        status = user.cli("service", "status", path=path)

    assert status.returncode == 0, status.stdout + status.stderr
    lines = dict(line.split(":", 1) for line in status.stdout.splitlines())
    assert "mcp-scheduler, enabled" in lines["service"]
    assert str(user.config / "systemd" / "user" / "mcp-scheduler.service") in lines["service"]
    assert lines["runner"].strip().startswith("pid ")
    assert lines["log"].strip() == "journalctl --user -u mcp-scheduler"
    assert "--user is-active mcp-scheduler.service" in calls.read_text()


def test_a_store_other_than_the_default_gets_a_unit_of_its_own(tmp_path: Path) -> None:
    machine = Machine("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "config")})
    default = str(tmp_path / "default.sqlite")
    other = str(tmp_path / "other.sqlite")
    assert service_plan(machine, default, [], default_database=default).name == "mcp-scheduler"
    plan = service_plan(machine, other, [], default_database=default)
    assert plan.name == f"mcp-scheduler-{store_key(other)}"
    assert plan.unit_path == tmp_path / "config" / "systemd" / "user" / f"{plan.name}.service"
    assert plan.marker_path == service_marker_path(other)


def test_launchd_agent_runs_at_load_restarts_after_a_crash_and_logs_in_library_logs(tmp_path: Path) -> None:
    machine = Machine("darwin", tmp_path / "Users" / "me", {"API_KEY": "v"}, executable=sys.executable)
    store = str(tmp_path / "s.sqlite")
    plan = service_plan(machine, store, ["--timezone", "UTC"], default_database=store, secrets=["API_KEY"])
    agent = plistlib.loads(plan.unit_text.encode())
    assert plan.unit_path == machine.home / "Library" / "LaunchAgents" / "com.mcp-scheduler.plist"
    assert agent["Label"] == plan.unit_path.stem
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProgramArguments"][0] == str(Path(sys.executable).with_name("mcp-scheduler"))
    assert agent["ProgramArguments"][1:] == ["runner", "--started-by", "service", "--db", store, "--timezone", "UTC"]
    assert Path(agent["StandardErrorPath"]).parent == machine.home / "Library" / "Logs" / "mcp-scheduler"
    assert agent["Umask"] == 0o077
    assert agent["EnvironmentVariables"] == {"API_KEY": "v"} and plan.unit_mode == 0o600  # the file is the user's
    assert plan.start[-1][:2] == ("launchctl", "bootstrap")


def test_install_on_macos_boots_the_agent_out_and_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from mcp_scheduler.install import install_service

    calls = fake_manager(tmp_path / "bin", "launchctl")
    machine = Machine("darwin", tmp_path / "home", {"PATH": str(tmp_path / "bin")}, executable=sys.executable)
    store = str(tmp_path / "s.sqlite")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # where the service marker goes
    plan = service_plan(machine, store, [], default_database=store)
    err = StringIO()
    assert install_service(plan, machine, err=err) is True
    uid = os.getuid()
    assert calls.read_text().splitlines() == [f"bootout gui/{uid}/com.mcp-scheduler",
                                              f"bootstrap gui/{uid} {plan.unit_path}"]
    assert plistlib.loads(plan.unit_path.read_bytes())["Label"] == "com.mcp-scheduler"
    assert plan.unit_path.stat().st_mode & 0o777 == 0o644
    assert json.loads(service_marker_path(store).read_text())["manager"] == "launchd"


def test_windows_task_print_starts_the_runner_at_logon_with_absolute_paths(tmp_path: Path) -> None:
    machine = Machine("win32", tmp_path, {"USERNAME": "me", "USERDOMAIN": "PC"},
                      executable=r"C:\Users\me\pipx\venvs\mcp-scheduler\Scripts\python.exe")
    store = r"C:\Users\me\AppData\Local\mcp-scheduler\scheduler.sqlite"
    plan = service_plan(machine, store, ["--timezone", "Europe/Berlin"], default_database=store, secrets=["K"])
    assert plan.unit_bytes().decode("utf-16") == plan.unit_text
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    task = ElementTree.fromstring(plan.unit_text.split("\n", 1)[1])
    assert task.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=namespace) == "PC\\me"
    assert task.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=namespace) == "LeastPrivilege"
    action = task.find("t:Actions/t:Exec", namespace)
    assert action is not None
    assert action.findtext("t:Command", namespaces=namespace) == machine.executable
    assert action.findtext("t:Arguments", namespaces=namespace) == (
        f"-m mcp_scheduler runner --started-by service --db {store} --timezone Europe/Berlin")
    assert plan.start[0][:2] == ("schtasks", "/Create") and "/XML" in plan.start[0]
    assert any("setx" in note for note in plan.notes)  # secrets: the user's environment, never the task file


@pytest.mark.parametrize("flags", [["--transport", "http"], ["--auth-token", "s3cret"]])
def test_service_refuses_flags_that_have_no_place_in_it(user: User, flags: list[str]) -> None:
    done = user.cli("service", "install", *flags)
    assert done.returncode == 2
    assert flags[0] in done.stderr
    assert not (user.config / "systemd").exists()


def test_service_without_an_action_is_a_usage_error(user: User) -> None:
    done = user.cli("service")
    assert done.returncode == 2 and "install, uninstall, status" in done.stderr
