"""Setting mcp-scheduler up for the user: MCP clients' configuration files and a user service.

`mcp-scheduler install CLIENT` merges a `scheduler` entry into a client's configuration (`clients`,
`json_config`); `mcp-scheduler service install|uninstall|status` manages a systemd, launchd or Task
Scheduler service that runs a store's jobs from login on (`service`). Both start this installation by an
absolute command (`launcher`), and the example files in `examples/` are made by the same code (`examples`).
"""

from .clients import CLIENTS, SERVER_NAME, Client, client_document, client_entry
from .commands import InstallRequest, install_client_command, service_command
from .errors import ConfigFileError, InstallError
from .json_config import MergeResult, load_config, merge_entry
from .launcher import launch_command, server_flags
from .machine import Machine
from .service import ServicePlan, install_service, read_marker, service_plan, service_status, uninstall_service

__all__ = [
    "CLIENTS",
    "SERVER_NAME",
    "Client",
    "ConfigFileError",
    "InstallError",
    "InstallRequest",
    "Machine",
    "MergeResult",
    "ServicePlan",
    "client_document",
    "client_entry",
    "install_client_command",
    "install_service",
    "launch_command",
    "load_config",
    "merge_entry",
    "read_marker",
    "server_flags",
    "service_command",
    "service_plan",
    "service_status",
    "uninstall_service",
]
