"""Who may reach an HTTP or SSE server: the refusal to listen beyond loopback without a token, the bearer
tokens (`--auth-token`, else the token file's), and how clients get in, told in the log."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

from ..settings import Settings, default_token_path, is_loopback
from .options import ENV_PREFIX

__all__ = ["check_exposure", "claude_add", "local_url", "log_access", "token_command", "url_path", "with_http_auth"]

logger = logging.getLogger("mcp_scheduler")


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token the operator chose, unless explicitly allowed."""
    if settings.transport == "stdio" or is_loopback(settings.host):
        return
    if (not settings.auth_tokens and not settings.token_file and not settings.oauth_on
            and not settings.allow_unauthenticated):
        raise ValueError(
            f"Refusing to listen on {settings.host} without authentication: pass --auth-token TOKEN "
            f"(or {ENV_PREFIX}AUTH_TOKEN), --token-file FILE or --oauth-issuer URL, or --allow-unauthenticated if "
            "a proxy in front does the auth."
        )


def with_http_auth(settings: Settings) -> Settings:
    """`settings` with the bearer tokens HTTP and SSE clients must send: `--auth-token`'s, else the token file's.

    The token file (`--token-file`, default `default_token_path()`) is read, or generated and its token told
    once on stderr; the returned settings name it in `token_file` (None when `--auth-token` gives the tokens).
    stdio and `--allow-unauthenticated` take no token. Raises `ValueError` where `check_exposure` refuses,
    `TokenFileError` for a token file that others can read or that is not the user's.
    """
    check_exposure(settings)
    if settings.transport == "stdio":
        return settings
    if settings.auth_tokens:
        return replace(settings, token_file=None)
    if settings.oauth_on and settings.token_file is None:
        return settings  # the issuer's tokens only (a static one too with --auth-token or --token-file)
    if settings.allow_unauthenticated:
        return replace(settings, token_file=None)
    from .token_file import load_token

    token = load_token(settings.token_file or default_token_path())
    authenticated = replace(settings, auth_tokens=(token.value,), token_file=token.path)
    if token.created:
        command = token_command(authenticated)
        sys.stderr.write(
            f"mcp-scheduler: generated the bearer token that HTTP clients must send, saved in {token.path} "
            f"(readable by you only):\n\n    {token.value}\n\n"
            f"Clients send it as the header 'Authorization: Bearer <token>'; `{command}` prints it again, e.g.\n"
            f"    {claude_add(authenticated)}\n"
            "The server prints it this once; later starts only name the file.\n"
        )
        sys.stderr.flush()
    return authenticated


def token_command(settings: Settings) -> str:
    """The command that prints the token of `settings.token_file`."""
    import shlex

    path = settings.token_file
    if path is None or path == default_token_path():
        return "mcp-scheduler token"
    return f"mcp-scheduler token --token-file {shlex.quote(path)}"


def claude_add(settings: Settings) -> str:
    """The Claude Code command line that adds this server (with its token header when it needs one)."""
    line = f"claude mcp add --transport {settings.transport} scheduler {local_url(settings)}"
    if settings.token_file is not None:
        return f'{line} --header "Authorization: Bearer $({token_command(settings)})"'
    if settings.auth_tokens:
        return f'{line} --header "Authorization: Bearer TOKEN"'
    return line


def log_access(settings: Settings) -> None:
    """How clients get in, at start: the token's file and the command that prints it, never the token."""
    if settings.oauth_on:
        logger.info("Clients may send an access token of %s issued for %s (RFC 9728 metadata at %s)",
                    settings.oauth_issuer, settings.resource_url, _metadata_url(settings.resource_url))
    if not settings.auth_tokens and settings.oauth_on:
        logger.info("Connect: claude mcp add --transport %s scheduler %s (the client signs in with the issuer)",
                    settings.transport, local_url(settings))
        return
    if not settings.auth_tokens:
        if is_loopback(settings.host):
            logger.warning(
                "No authentication (--allow-unauthenticated): any local user can run jobs as this user (with its "
                "files, programs and secrets) through %s. Drop the flag to require the token of the token file.",
                settings.url,
            )
        else:
            logger.warning(
                "No authentication (--allow-unauthenticated): whoever reaches port %s of %s can run jobs as this "
                "user, unless a proxy in front does the auth.", settings.port, settings.host,
            )
    elif settings.token_file is not None:
        logger.info(
            "Clients must send 'Authorization: Bearer <token>': the token is in %s (readable by you only); "
            "`%s` prints it", settings.token_file, token_command(settings),
        )
    else:
        logger.info("Clients must send 'Authorization: Bearer <token>' with a token given by --auth-token")
    others = "that URL and header" if settings.auth_tokens else "that URL"
    logger.info("Connect: %s (other clients: %s; README, 'Connect a client')", claude_add(settings), others)


def url_path(settings: Settings) -> str:
    """The path of the server's endpoint: --path for streamable HTTP, /sse for SSE."""
    return settings.path if settings.transport == "http" else "/sse"


def local_url(settings: Settings) -> str:
    """The URL a client on this machine uses (the loopback one for a wildcard address)."""
    from .listen import reachable_urls

    return reachable_urls(settings.host, settings.port, url_path(settings))[0]



def _metadata_url(resource: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path.rstrip('/')}"
