"""The HTTP server as an OAuth 2.1 resource server: which tokens it accepts (`--oauth-issuer`'s, beside static
ones), its RFC 9728 protected-resource metadata, and the scope a 401 names.

The SDK answers a request without an acceptable token 401 with `WWW-Authenticate: Bearer ..., resource_metadata=`;
`OAuthFront.install` adds the `scope` clients should ask for, and serves the metadata with every scope of this
server (the SDK's names none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..principals import READ, RUN, SCOPES, WRITE, kind_scope

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..settings import Settings

__all__ = ["CHALLENGE_SCOPES", "OAuthFront"]

CHALLENGE_SCOPES = (READ, WRITE, RUN)
"""What a 401 tells a client to ask for: using the scheduler, not administering it, nor any job kind's scope."""


class OAuthFront:
    """The OAuth settings of one HTTP server: its issuer, its resource URL and the scopes it knows (`kinds`: the
    job kinds registered, whose kind scopes are listed)."""

    def __init__(self, settings: Settings, kinds: Iterable[str]) -> None:
        from .oauth_tokens import check_url

        if settings.oauth_issuer is None:
            raise ValueError("OAuthFront needs --oauth-issuer")
        self.settings = settings
        self.issuer = check_url(settings.oauth_issuer, "--oauth-issuer")
        self.resource = settings.resource_url
        if settings.oauth_audience is not None:
            check_url(settings.oauth_audience, "--oauth-audience")
        kind_scopes = sorted({scope for kind in kinds if (scope := kind_scope(kind)) is not None})
        self.scopes_supported = [*SCOPES, *kind_scopes]

    def auth_settings(self) -> AuthSettings:
        """The SDK's settings: the issuer and this resource (the verifiers check the audience themselves)."""
        from mcp.server.auth.settings import AuthSettings

        return AuthSettings(
            issuer_url=self.issuer,  # type: ignore[arg-type]
            resource_server_url=self.resource,  # type: ignore[arg-type]
            validate_token_resource=False,
        )

    def verifier(self, static: TokenVerifier | None) -> TokenVerifier:
        """The static tokens' verifier (if any), then the issuer's: JWT, or introspection when configured."""
        from .oauth_tokens import AnyVerifier, IntrospectionVerifier, JwtVerifier, check_url

        s = self.settings
        issued: TokenVerifier
        if s.oauth_introspection_url is not None:
            if not s.oauth_client_id or not s.oauth_client_secret:
                raise ValueError("--oauth-introspection-url needs the client's credentials: set "
                                 "MCP_SCHEDULER_OAUTH_CLIENT_ID and MCP_SCHEDULER_OAUTH_CLIENT_SECRET.")
            issued = IntrospectionVerifier(
                check_url(s.oauth_introspection_url, "--oauth-introspection-url"), s.oauth_client_id,
                s.oauth_client_secret, audience=self.resource, issuer=self.issuer,
            )
        else:
            jwks = check_url(s.oauth_jwks_url, "--oauth-jwks-url") if s.oauth_jwks_url else None
            issued = JwtVerifier(self.issuer, self.resource, jwks)
        return issued if static is None else AnyVerifier([static, issued])

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata document."""
        return {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-scheduler",
        }

    def metadata_path(self) -> str:
        """`/.well-known/oauth-protected-resource` followed by the resource URL's path (RFC 9728 section 3.1)."""
        from urllib.parse import urlsplit

        path = urlsplit(self.resource).path
        return "/.well-known/oauth-protected-resource" + ("" if path == "/" else path)

    def install(self, app: Any) -> None:
        """Serve the metadata on the Starlette `app` (ahead of the SDK's route of the same path) and add the
        `scope` to its 401 challenges."""
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        document = self.metadata()

        async def metadata(request: Request) -> Response:
            return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600",
                                                   "Access-Control-Allow-Origin": "*"})

        app.router.routes.insert(0, Route(self.metadata_path(), metadata, methods=["GET"]))
        app.add_middleware(ScopeChallenge, scope=" ".join(CHALLENGE_SCOPES))


_SCOPE_PARAMETER = re.compile(rb'(^|[ ,])scope="')


class ScopeChallenge:
    """ASGI middleware: a 401 whose `WWW-Authenticate` names no scope names `scope` (MCP authorization: the
    scopes a client should ask for)."""

    def __init__(self, app: ASGIApp, scope: str) -> None:
        self.app = app
        self.parameter = f', scope="{scope}"'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                message = {**message, "headers": [
                    (name, value + self.parameter if name.lower() == b"www-authenticate"
                     and not _SCOPE_PARAMETER.search(value) else value)
                    for name, value in message.get("headers", [])
                ]}
            await send(message)

        await self.app(scope, receive, sending)

