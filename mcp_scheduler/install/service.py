"""A user service that runs a store's jobs from login on: systemd (Linux), launchd (macOS), Task Scheduler (Windows).

No root: a systemd user unit in `~/.config/systemd/user/`, a launchd agent in `~/Library/LaunchAgents/`, a
Task Scheduler task of the user's own. Each starts `<this installation> runner --started-by service --db
<store> <flags>` with absolute paths. Secrets never go into the unit: the values of the `--secret` names sit in
an EnvironmentFile readable by the user only (systemd), in the agent's file made readable by the user only
(launchd has no EnvironmentFile), or in the user's environment (Windows, where a task inherits it).

Beside the unit, the service marker (`runner_paths.service_marker_path`) tells front-ends that a service runs
the store's jobs: a JSON object with `manager`, `name`, `unit` (the unit, agent or task file), `store`,
`command` (the argv the service starts), `env_file` (or null), `enabled` (whether the manager accepted and
started it), `installed_at` and `version`.
"""

from __future__ import annotations

import contextlib
import json
import os
import plistlib
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath
from typing import Any, TextIO
from xml.sax.saxutils import escape

from ..private_files import replace_file
from ..runner_paths import runner_log_path, service_marker_path, store_key
from .errors import InstallError
from .launcher import launch_command
from .machine import Machine

__all__ = [
    "ServicePlan",
    "install_service",
    "read_marker",
    "service_name",
    "service_plan",
    "service_status",
    "systemd_quote",
    "uninstall_service",
]

_SAFE_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_MANAGER_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServicePlan:
    """Everything `service install` writes and runs for one store on one machine (and `--print` shows)."""

    manager: str
    """'systemd', 'launchd' or 'schtasks'."""
    name: str
    """The unit's, agent's or task's name (`mcp-scheduler` for the default store, `mcp-scheduler-KEY` for another)."""
    store: str
    command: tuple[str, ...]
    unit_path: Path
    unit_text: str
    unit_mode: int
    marker_path: Path
    start: tuple[tuple[str, ...], ...]
    """The manager's commands that load and start the service, in order (program name first)."""
    stop: tuple[tuple[str, ...], ...]
    """The manager's commands that stop it and forget it, in order (failures tolerated)."""
    status: tuple[str, ...]
    log_hint: str
    """The command (or file) that shows the service's log."""
    env_path: Path | None = None
    env_text: str | None = None
    secret_names: tuple[str, ...] = ()
    missing_secrets: tuple[str, ...] = ()
    """`--secret` names not set in the environment `install` ran in: the service will not have them."""
    notes: tuple[str, ...] = field(default=())

    def unit_bytes(self) -> bytes:
        """The unit file as written (Task Scheduler wants UTF-16)."""
        if self.manager == "schtasks":
            return self.unit_text.encode("utf-16")
        return self.unit_text.encode()


def service_name(database: str, default_database: str) -> str:
    """`mcp-scheduler` for the default store, `mcp-scheduler-<store key>` for any other."""
    return "mcp-scheduler" if store_key(database) == store_key(default_database) else \
        f"mcp-scheduler-{store_key(database)}"


def service_plan(machine: Machine, database: str, flags: Sequence[str], *, default_database: str,
                 secrets: Sequence[str] = (), close_timeout: float = 10.0) -> ServicePlan:
    """What installing the service of `database` writes and runs on `machine`.

    `flags` are the server flags to pass on (without `--db`: the store is always named, absolute, so the
    service runs the same store whatever its environment); `secrets` the `--secret` names, whose values
    are read from `machine.environ`.
    """
    name = service_name(database, default_database)
    program = _service_program(machine)
    command = (*program, "runner", "--started-by", "service", "--db", database, *flags)
    values = {secret: machine.environ.get(secret) for secret in secrets}
    missing = tuple(secret for secret, value in values.items() if value is None)
    present = {secret: value for secret, value in values.items() if value is not None}
    marker = service_marker_path(database)
    if machine.is_macos:
        return _launchd_plan(machine, name, database, command, marker, present, missing)
    if machine.is_windows:
        return _schtasks_plan(machine, name, database, command, marker, tuple(secrets))
    return _systemd_plan(machine, name, database, command, marker, present, missing, close_timeout)


def _service_program(machine: Machine) -> list[str]:
    if machine.is_windows:
        # pythonw runs without a console window; the runner logs to its file, not to a terminal
        windowless = str(PureWindowsPath(machine.executable).with_name("pythonw.exe"))
        return [windowless if os.path.isfile(windowless) else machine.executable, "-m", "mcp_scheduler"]
    return launch_command(machine)


# ------------------------------------------------------------------------------------------------ systemd


def systemd_quote(word: str) -> str:
    """One word of an `ExecStart=` line: `%` and `$` escaped (specifiers, variables), quoted if it needs it."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _SAFE_WORD.fullmatch(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _env_value(name: str, value: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise InstallError(
            f"The value of {name} holds a line break, which an environment file cannot hold: nothing was "
            "written. Give the service a value without one (e.g. base64), or leave --secret "
            f"{name} out and add it to the environment file yourself."
        )
    return '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'


def _systemd_plan(machine: Machine, name: str, database: str, command: tuple[str, ...], marker: Path,
                  secrets: dict[str, str], missing: tuple[str, ...], close_timeout: float) -> ServicePlan:
    unit_path = machine.config_home() / "systemd" / "user" / f"{name}.service"
    env_path = marker.with_suffix(".env") if secrets or missing else None
    lines = [
        f"# Written by `mcp-scheduler service install` for the store {database}.",
        "# `mcp-scheduler service status` says whether it runs; `mcp-scheduler service uninstall` removes it.",
        "# Jobs keep running after you log out only with lingering on: loginctl enable-linger \"$USER\"",
        "",
        "[Unit]",
        f"Description=mcp-scheduler: runs the scheduled jobs of {_unit_text(database)}",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(systemd_quote(word) for word in command),
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM closes the scheduler cleanly: runs in progress get --close-timeout to finish
        f"TimeoutStopSec={int(close_timeout) + 20}",
        "UMask=0077",
    ]
    if env_path is not None:
        lines.append(f"EnvironmentFile=-{_unit_text(str(env_path))}")  # the rest of the line is the path: no quotes
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    env_text = None
    if env_path is not None:
        env_lines = ["# The values of the --secret names for the service " + name + " (readable by you only).",
                     "# Edit a value, then: systemctl --user restart " + name]
        env_lines += [f"{secret}={_env_value(secret, value)}" for secret, value in secrets.items()]
        env_lines += [f"# {secret}=  (not set where `service install` ran: set it here)" for secret in missing]
        env_text = "\n".join(env_lines) + "\n"
    systemctl = ("systemctl", "--user")
    unit = f"{name}.service"
    return ServicePlan(
        manager="systemd", name=name, store=database, command=command, unit_path=unit_path,
        unit_text="\n".join(lines), unit_mode=0o644, marker_path=marker,
        start=((*systemctl, "daemon-reload"), (*systemctl, "enable", "--now", unit)),
        stop=((*systemctl, "disable", "--now", unit), (*systemctl, "daemon-reload")),
        status=(*systemctl, "is-active", unit),
        log_hint=f"journalctl --user -u {name}",
        env_path=env_path, env_text=env_text, secret_names=tuple(secrets), missing_secrets=missing,
    )


def _unit_text(text: str) -> str:
    return text.replace("%", "%%")


# ------------------------------------------------------------------------------------------------ launchd


def _launchd_plan(machine: Machine, name: str, database: str, command: tuple[str, ...], marker: Path,
                  secrets: dict[str, str], missing: tuple[str, ...]) -> ServicePlan:
    label = "com.mcp-scheduler" if name == "mcp-scheduler" else f"com.{name}"
    unit_path = machine.home / "Library" / "LaunchAgents" / f"{label}.plist"
    log = machine.home / "Library" / "Logs" / "mcp-scheduler" / f"{name}.log"
    agent: dict[str, Any] = {
        "Label": label,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        # Started again after a crash, like systemd's Restart=on-failure; `mcp-scheduler runner stop` stays stopped
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "Umask": 0o077,
        "StandardOutPath": str(log),
        "StandardErrorPath": str(log),
    }
    if secrets:
        agent["EnvironmentVariables"] = dict(secrets)
    text = plistlib.dumps(agent, sort_keys=False).decode()
    domain = f"gui/{os.getuid()}" if hasattr(os, "getuid") else "gui/$(id -u)"
    notes = ("launchd has no environment file: the values of the --secret names are in the agent's file, "
             "which is made readable by you only",) if secrets else ()
    return ServicePlan(
        manager="launchd", name=label, store=database, command=command, unit_path=unit_path, unit_text=text,
        unit_mode=0o600 if secrets else 0o644, marker_path=marker,
        start=(("launchctl", "bootout", f"{domain}/{label}"), ("launchctl", "bootstrap", domain, str(unit_path))),
        stop=(("launchctl", "bootout", f"{domain}/{label}"),),
        status=("launchctl", "print", f"{domain}/{label}"),
        log_hint=f"tail -f {log}", secret_names=tuple(secrets), missing_secrets=missing, notes=notes,
    )


# ------------------------------------------------------------------------------------------------ Windows


def _schtasks_plan(machine: Machine, name: str, database: str, command: tuple[str, ...], marker: Path,
                   secrets: tuple[str, ...]) -> ServicePlan:
    user = machine.environ.get("USERNAME", "")
    domain = machine.environ.get("USERDOMAIN", "")
    user_id = f"{domain}\\{user}" if domain and user else user
    logon_user = f"\n      <UserId>{escape(user_id)}</UserId>" if user_id else ""
    text = f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>mcp-scheduler: runs the jobs of {escape(database)} (mcp-scheduler service install)</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>{logon_user}
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(command[0])}</Command>
      <Arguments>{escape(subprocess.list2cmdline(command[1:]))}</Arguments>
    </Exec>
  </Actions>
</Task>
"""
    unit_path = marker.with_suffix(".xml")
    notes = ((f"a task inherits your user environment: set {', '.join(secrets)} there (`setx NAME VALUE`), "
              "then sign out and in again",) if secrets else ())
    return ServicePlan(
        manager="schtasks", name=name, store=database, command=command, unit_path=unit_path, unit_text=text,
        unit_mode=0o600, marker_path=marker,
        start=(("schtasks", "/Create", "/TN", name, "/XML", str(unit_path), "/F"), ("schtasks", "/Run", "/TN", name)),
        stop=(("schtasks", "/End", "/TN", name), ("schtasks", "/Delete", "/TN", name, "/F")),
        status=("schtasks", "/Query", "/TN", name, "/FO", "LIST"),
        log_hint=f"type \"{runner_log_path(database)}\"", secret_names=secrets, notes=notes,
    )


# ------------------------------------------------------------------------------------------------ acting


def _run(machine: Machine, argv: Sequence[str]) -> tuple[bool, str]:
    """Run a service manager's command: (worked, what it said or why it could not run)."""
    program = machine.which(argv[0])
    if program is None:
        return False, f"{argv[0]} is not on PATH"
    try:
        done = subprocess.run([program, *argv[1:]], capture_output=True, text=True, timeout=_MANAGER_TIMEOUT,
                              env=dict(machine.environ), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    said = " ".join((done.stderr.strip() or done.stdout.strip()).split())[:300]
    return done.returncode == 0, said


def _shell_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def install_service(plan: ServicePlan, machine: Machine, *, err: TextIO) -> bool:
    """Write the plan's files and the marker, then load and start the service with its manager.

    Says on `err` what was written and run; True if the manager started it, False if it could not (the
    files stay, with the commands to run once the manager is there).
    """
    if plan.env_path is not None and plan.env_text is not None:
        replace_file(plan.env_path, plan.env_text.encode(), 0o600)
        names = ", ".join(plan.secret_names) or "none yet"
        err.write(f"Wrote {plan.env_path} (readable by you only): the values of {names}\n")
    replace_file(plan.unit_path, plan.unit_bytes(), plan.unit_mode)
    err.write(f"Wrote {plan.unit_path}\n")
    for note in plan.notes:
        err.write(f"Note: {note}.\n")
    if plan.missing_secrets:
        where = f" (set them in {plan.env_path})" if plan.env_path else ""
        err.write(f"Note: {', '.join(plan.missing_secrets)} not set in this environment: the service will not have "
                  f"them{where}.\n")
    enabled = True
    failed: str | None = None
    for index, argv in enumerate(plan.start):
        worked, said = _run(machine, argv)
        tolerated = plan.manager == "launchd" and index == 0  # bootout of an agent that was not loaded
        if worked or tolerated:
            if worked:
                err.write(f"Ran `{_shell_line(argv)}`\n")
            continue
        enabled, failed = False, f"`{_shell_line(argv)}` failed: {said}"
        break
    _write_marker(plan, enabled)
    err.write(f"Wrote {plan.marker_path} (front-ends of this store leave running its jobs to the service)\n")
    if enabled:
        err.write(f"The service {plan.name} runs the jobs of {plan.store} from now on and at every login. "
                  f"Log: {plan.log_hint}\n")
        if plan.manager == "systemd":
            err.write("To keep it running after you log out: loginctl enable-linger \"$USER\"\n")
        return True
    commands = " && ".join(_shell_line(argv) for argv in plan.start if argv[1:2] != ("bootout",))
    err.write(f"{failed}\nThe service is installed but not running: {plan.manager} could not start it here. "
              f"Once it can (log in to a desktop or SSH session with a user service manager), run:\n    {commands}\n")
    return False


def _write_marker(plan: ServicePlan, enabled: bool) -> None:
    from ..settings import package_version

    marker = {
        "manager": plan.manager, "name": plan.name, "unit": str(plan.unit_path), "store": plan.store,
        "command": list(plan.command), "env_file": str(plan.env_path) if plan.env_path else None,
        "enabled": enabled, "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": package_version(),
    }
    replace_file(plan.marker_path, (json.dumps(marker, indent=2) + "\n").encode(), 0o600)


def read_marker(database: str) -> dict[str, Any] | None:
    """The service marker of `database` (see the module docstring), or None when no service is installed."""
    try:
        loaded = json.loads(service_marker_path(database).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def uninstall_service(plan: ServicePlan, machine: Machine, *, err: TextIO) -> bool:
    """Stop the service, forget it in its manager and remove its files; False if none was installed."""
    marker = read_marker(plan.store)
    unit = Path(marker["unit"]) if marker and isinstance(marker.get("unit"), str) else plan.unit_path
    env_file = Path(marker["env_file"]) if marker and isinstance(marker.get("env_file"), str) else plan.env_path
    if marker is None and not unit.exists():
        err.write(f"No service is installed for {plan.store}: nothing to do.\n")
        return False
    stopped = True
    for argv in plan.stop:
        worked, said = _run(machine, argv)
        err.write(f"Ran `{_shell_line(argv)}`{'' if worked else f' (failed: {said})'}\n")
        stopped = stopped and worked
    for path in (unit, env_file, plan.marker_path):
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                err.write(f"Removed {path}\n")
    err.write(f"The service no longer runs the jobs of {plan.store}; front-ends start a runner of their own again.\n")
    if not stopped:
        err.write(f"If its runner still runs, end it with: mcp-scheduler runner stop --db {shlex.quote(plan.store)}\n")
    return True


def service_status(plan: ServicePlan, machine: Machine, *, out: TextIO) -> int:
    """Print whether the service is installed and running, where its unit is, the store's runner and its log.

    0 when a service is installed and a runner holds the store's lease, 1 otherwise.
    """
    marker = read_marker(plan.store)
    unit = Path(marker["unit"]) if marker and isinstance(marker.get("unit"), str) else plan.unit_path
    installed = marker is not None
    out.write(f"store:    {plan.store}\n")
    if not installed:
        out.write("service:  not installed (mcp-scheduler service install)\n")
    else:
        state = "enabled" if marker and marker.get("enabled") else "installed, not started by its manager"
        where = unit if unit.exists() else f"{unit} (missing)"
        out.write(f"service:  {plan.name}, {state}; unit {where}\n")
        worked, said = _run(machine, plan.status)
        out.write(f"manager:  {_manager_state(plan.manager, worked, said)}\n")
    runner = _runner_line(plan.store)
    out.write(f"runner:   {runner}\n")
    if installed:
        out.write(f"log:      {plan.log_hint}\n")
    return 0 if installed and not runner.startswith(("nobody", "unknown")) else 1


def _manager_state(manager: str, worked: bool, said: str) -> str:
    if manager == "systemd":
        return said if said in ("active", "inactive", "failed", "activating", "deactivating") else \
            f"unknown ({said})"
    if manager == "launchd":
        if not worked:
            return f"not loaded ({said})"
        found = re.search(r"state = (\w+)", said)
        return found.group(1) if found else "loaded"
    found = re.search(r"Status:\s*(\w+)", said)
    return (found.group(1) if found else "registered") if worked else f"not registered ({said})"


def _runner_line(database: str) -> str:
    import io

    buffer = io.StringIO()
    try:
        from ..status import print_status  # reads lock files with fcntl: not on Windows

        print_status(database, out=buffer)
    except ImportError as exc:
        return f"unknown: {exc} (mcp-scheduler status reads the store's lease on Linux and macOS)"
    except FileNotFoundError:
        return "nobody: the store has no database yet (it is made at the first start)"
    except Exception as exc:  # PostgreSQL unreachable, a driver missing: the status says so in a line
        return f"unknown: {type(exc).__name__}: {exc}"
    for line in buffer.getvalue().splitlines():
        if line.startswith("runner:"):
            return line.removeprefix("runner:").strip()
    return "unknown"
