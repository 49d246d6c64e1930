"""The input model of the `http` AgenTool and its limits."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, field_validator, model_validator

from ...models import BaseOperationInput
from .._common import field_error
from .urls import Headers, check_url

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RESPONSE_HEADERS",
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "MAX_RESPONSE_BYTES",
    "MAX_TIMEOUT",
    "HttpInput",
    "Method",
    "QueryValue",
]

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
DEFAULT_MAX_RESPONSE_BYTES = 1_000_000
MAX_RESPONSE_BYTES = 10_000_000
DEFAULT_RESPONSE_HEADERS = ("content-type", "content-length", "location", "etag", "last-modified", "retry-after")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
QueryValue = str | int | float | bool


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class HttpInput(BaseOperationInput):
    """Send one HTTP request and return the status, chosen headers and body; an unexpected status is an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operation: Literal["request"] = Field(description="The only operation: send one HTTP request.")
    method: Annotated[Method, BeforeValidator(_upper)] = Field(
        default="GET", description="The HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS."
    )
    url: str = Field(
        description="The http:// or https:// URL to request. May be '!env:NAME' to keep a secret URL out of the job "
        "(NAME must be a secret the operator allows with --secret NAME)."
    )
    headers: Headers = Field(
        default=None,
        description="Request headers, name -> value. Put secrets as '!env:NAME' values (NAME must be a secret the "
        "operator allows with --secret NAME; resolved when the job runs, never stored). Content-Length and "
        "Transfer-Encoding are set automatically.",
    )
    query: dict[str, QueryValue | list[QueryValue]] | None = Field(
        default=None,
        description="Query parameters added to the URL, name -> value or list of values; a value may be '!env:NAME' "
        "(a secret the operator allows with --secret NAME).",
    )
    json_body: JsonValue = Field(
        default=None, alias="json", description="A JSON body (sent as application/json). Not with text."
    )
    text: str | None = Field(
        default=None,
        description="A text body, sent as UTF-8 (Content-Type text/plain unless a header says otherwise). "
        "Not with json.",
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"Seconds the whole request may take, redirects and body included (default 30, at most "
        f"{MAX_TIMEOUT:g}).",
    )
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None,
        min_length=1,
        description="The status codes that count as success, such as [200, 404]; default: any 2xx. Any other "
        "status makes the run fail (so the job's error queue and retries apply).",
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=1,
        le=MAX_RESPONSE_BYTES,
        description="Most bytes of the response body to read (default 1000000, at most 10000000); the rest is "
        "not read and the result says truncated=true.",
    )
    response_headers: list[str] = Field(
        default=list(DEFAULT_RESPONSE_HEADERS),
        max_length=50,
        description="Names of the response headers to return (case-insensitive); default content-type, "
        "content-length, location, etag, last-modified, retry-after.",
    )
    follow_redirects: bool = Field(
        default=True,
        description=f"Follow redirects (at most {MAX_REDIRECTS}; every hop is checked like the first URL). "
        "False returns the 3xx response itself (list it in expect_status).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return check_url(value)

    @model_validator(mode="after")
    def _one_body(self) -> HttpInput:
        if self.json_body is not None and self.text is not None:
            raise field_error(self, "text", "give either json or text as the body, not both")
        if self.method in ("GET", "HEAD", "OPTIONS") and (self.json_body is not None or self.text is not None):
            raise field_error(self, "method", f"a {self.method} request has no body: use POST, PUT or PATCH")
        return self

