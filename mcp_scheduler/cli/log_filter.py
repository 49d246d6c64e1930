"""The filter of the server's stderr log: no secret value, and no query string in a library's URLs.

Libraries log URLs whole: httpx2 one INFO line per request (`HTTP Request: GET https://host/path?key=...`),
uvicorn one access line per request (`"GET /mcp?x=1 HTTP/1.1" 200`), the MCP client its endpoints at
DEBUG. A query string often carries a token, so records of anything but this project's own packages lose
the query of every URL they show. Then the values of the secrets jobs may read (`--secret NAME`) are
replaced by their `!env:NAME` reference in every record, tracebacks included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from agentool_bridge.redaction import Redactor

__all__ = ["SecretLogFilter", "drop_queries"]

_OWN_LOGGERS = ("mcp_scheduler", "agentool_bridge")
# An absolute URL (scheme://...) or a path that starts a word ("GET /mcp?x HTTP/1.1"), then its query.
_QUERY = re.compile(
    r"""((?:\b[a-z][a-z0-9+.\-]*://|(?<![^\s"'(\[=])/)[^\s?#"'<>]*)\?[^\s#"'<>]*""", re.IGNORECASE
)


def drop_queries(text: str) -> str:
    """`text` with the query string (`?...`) of every URL and request path in it removed."""
    return _QUERY.sub(r"\1", text)


class SecretLogFilter(logging.Filter):
    """Rewrites records in place: queries of library URLs dropped, secret values replaced by their references.

    `secrets`: value -> `!env:NAME` reference (`secret_names.secret_values`). Every record passes.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        library = not record.name.startswith(_OWN_LOGGERS)
        if not library and not self._redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it as it would have
            return True
        clean = self._redactor.text(drop_queries(message) if library else message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.text(record.stack_info)
        return True
