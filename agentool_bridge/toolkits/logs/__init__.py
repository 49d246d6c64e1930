"""The `logging` AgenTool: write log records to stderr and/or a file, and read them back.

Records go through Python's `logging` machinery, to a private logger of this AgenTool (so
the application's own loggers and handlers are left alone), and never to stdout. A file is
written either as text lines (`<timestamp> <LEVEL> [<logger>] <message> | data=<json>`, with
newlines in the message escaped so every record is one line) or as JSON lines. `get_logs`
reads either format back; lines that are not log records are skipped.

Until `configure` is called, records at INFO and above go to stderr as text.

Log files exist only in the directory the host gives (`LogSink(log_dir)`, the CLI's `--log-dir`);
without one the toolkit logs to stderr only and refuses file output. A `file_path` is a plain file
name in that directory (never a path), opened without following symbolic links and created 0600;
`get_logs` reads nothing else. A file is rotated at `MAX_LOG_BYTES` (one older copy, `NAME.1`, is
kept), and jobs may create at most `MAX_LOG_FILES` log files there, so that they cannot fill the disk.

Modules: `inputs` (`LoggingInput`, log file names), `records` (the line formats, the handlers, reading a file back),
`sink` (`LogSink` and the AgenTool).
"""

from ..errors import LogFileNotAllowedError, LogFileNotConfiguredError
from .inputs import LoggingInput, log_file_name_problem
from .records import MAX_LOG_BYTES
from .sink import AGENTOOL_NAME, MAX_LOG_FILES, LogSink, create_logging_agent

__all__ = [
    "AGENTOOL_NAME",
    "MAX_LOG_BYTES",
    "MAX_LOG_FILES",
    "LogFileNotAllowedError",
    "LogFileNotConfiguredError",
    "LogSink",
    "LoggingInput",
    "create_logging_agent",
    "log_file_name_problem",
]
