"""The httpx2 adapter: the only module that uses httpx2 or httpcore2 beyond their public API.

- The connections a transport makes: `httpx2.AsyncHTTPTransport` takes no network backend; the httpcore2
  connection pool it wraps and sends through (`transport._pool`) does. `policy_transport` builds a transport
  and replaces that pool with one over the backend it is given: `addresses.PolicyBackend`, which resolves
  each host, checks every address against the address policy and connects to a checked one. That is the
  DNS-rebinding defence of the `http` and `notify` toolkits: were httpx2 to send through another attribute,
  requests would go out unchecked.

`check_httpx()` checks the version range of httpx2 and httpcore2 and that the transport still creates and sends
through `_pool`; it runs when this module is first imported (at the first request: nothing else imports it),
so a release that changed them fails loudly instead of sending requests past the policy. A test runs it,
and a test sends requests through the transport built here. The supported range is pinned in pyproject.toml.
"""

from __future__ import annotations

import ssl

import httpcore2
import httpx2

from ...versions import require_version

__all__ = ["SUPPORTED", "check_httpx", "policy_transport"]

SUPPORTED = ((2, 16), (3, 0))  # [lowest, first unsupported) versions of httpx2 and httpcore2 (pyproject.toml)
_LABEL = "agentool_bridge's httpx2 adapter (toolkits/http/_httpx.py)"


def check_httpx() -> None:
    """Raise `RuntimeError` naming what changed if the installed httpx2 or httpcore2 is not one this adapter knows."""
    installed = require_version("httpx2", SUPPORTED, _LABEL)
    require_version("httpcore2", SUPPORTED, _LABEL)
    transport = httpx2.AsyncHTTPTransport
    problems = [
        f"AsyncHTTPTransport.{method}"
        for method in ("__init__", "handle_async_request", "aclose")
        if "_pool" not in _names(getattr(transport, method, None))
    ]
    if problems:
        raise RuntimeError(
            f"httpx2 {installed} changed what the http toolkit's adapter relies on: {', '.join(problems)} no longer "
            "use the transport's connection pool `_pool`, so requests could bypass the address policy. Install "
            f"httpx2{_wanted()} (pinned in pyproject.toml), or update {_LABEL} to the new release."
        )


def _names(function: object) -> tuple[str, ...]:
    """The attribute and global names a function's code refers to (empty if it is not a Python function)."""
    code = getattr(function, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def _wanted() -> str:
    low, high = SUPPORTED
    return f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"


def policy_transport(ssl_context: ssl.SSLContext, backend: httpcore2.AsyncNetworkBackend) -> httpx2.AsyncHTTPTransport:
    """An httpx2 transport that makes every connection through `backend`, with `ssl_context` for TLS."""
    transport = httpx2.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
    if not isinstance(getattr(transport, "_pool", None), httpcore2.AsyncConnectionPool):
        raise RuntimeError(
            f"httpx2 {httpx2.__version__}'s AsyncHTTPTransport no longer keeps an httpcore2.AsyncConnectionPool in "
            f"`_pool`, which the http toolkit replaces to check addresses when it connects. Install httpx2{_wanted()} "
            f"(pinned in pyproject.toml), or update {_LABEL} to the new release."
        )
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend)
    return transport


check_httpx()
