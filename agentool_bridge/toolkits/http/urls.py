"""The URL and header checks of the `http` and `notify` toolkits, and how URLs are shown in errors and summaries
(never the query or user info, which may hold secrets)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator

from ...errors import clip, clip_text

__all__ = ["Headers", "check_headers", "check_url", "describe_url", "host_and_port", "origin_of"]

_MAX_URL_LENGTH = 8192
_MAX_HEADERS = 100
_MAX_HEADER_VALUE = 8192
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding"})


def check_url(url: str) -> str:
    """Return `url` if it is an absolute http or https URL with a host; raise `ValueError` saying what is wrong."""
    if len(url) > _MAX_URL_LENGTH:
        raise ValueError(f"url must be at most {_MAX_URL_LENGTH} characters (got {len(url)})")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("url must not contain spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ValueError(f"url {clip(_safe_url_text(url))} is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"url must start with http:// or https:// (it has {scheme})")
    if not parts.hostname:
        raise ValueError("url has no host: write it as http://host/path or https://host/path")
    if parts.port == 0:
        raise ValueError("url has port 0: give a port from 1 to 65535, or none")
    return url


def _safe_url_text(url: str) -> str:
    """What of a URL an error may echo: scheme, host and port only."""
    try:
        return origin_of(urlsplit(url))
    except ValueError:
        return "(unparsable URL)"


def origin_of(parts: SplitResult) -> str:
    """`scheme://host[:port]` of a split URL, without user info."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def describe_url(url: str, *, show_path: bool = True) -> str:
    """The URL as errors and summaries show it: `scheme://host[:port]/path`, never the query or user info
    (they may hold secrets); only the origin when `show_path` is False (a webhook URL's path is its secret)."""
    try:
        parts = urlsplit(url)
        origin = origin_of(parts)
    except ValueError:
        return "(unparsable URL)"
    return origin + (clip_text(parts.path, 120) if show_path else "")


def host_and_port(url: str) -> tuple[str, int]:
    """The host (without brackets) and the port (default 80 or 443) of a checked URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80)


def check_headers(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """Return `headers` if every name and value can be sent over HTTP; raise `ValueError` naming the header.

    Values are never quoted back: they may be secrets.
    """
    if headers is None:
        return None
    if len(headers) > _MAX_HEADERS:
        raise ValueError(f"at most {_MAX_HEADERS} headers (got {len(headers)})")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(
                f"header name {clip(name, 80)} is not valid: use letters, digits and !#$%&'*+-.^_`|~ only"
            )
        if name.lower() in _COMPUTED_HEADERS:
            raise ValueError(f"header {name!r} is set by the HTTP client from the body; leave it out")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"header {name!r}: its value must not contain CR, LF or NUL characters")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"header {name!r}: its value has characters HTTP headers cannot carry (only Latin-1); "
                "encode it (percent- or base64-encoding, as the server expects)"
            ) from None
        if len(value) > _MAX_HEADER_VALUE:
            raise ValueError(f"header {name!r}: its value must be at most {_MAX_HEADER_VALUE} characters")
    return headers


Headers = Annotated[dict[str, str] | None, AfterValidator(check_headers)]
"""Request headers of an input model, checked by `check_headers`."""
