"""The Standard Webhooks format (standardwebhooks.com): signing what we send and verifying what we receive.

A delivery carries three headers: `webhook-id` (the message's id, the same on every retry of it), `webhook-timestamp`
(POSIX seconds when it was sent) and `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256>` of
`"{id}.{timestamp}.{body}"` under the secret's key (several when the sender rotates keys). A secret is written
`whsec_<base64 key>`. A receiver accepts a delivery when one signature matches (compared in constant time) and the
timestamp is within `TOLERANCE` seconds of its clock; refusing an id seen within that window stops replays (that
part is the receiver's store: see `mcp_scheduler/hooks`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from .errors import AgenToolError

__all__ = [
    "ID_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE",
    "WebhookSignatureError",
    "new_secret",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
TOLERANCE = 300
"""Seconds a delivery's timestamp may be off the receiver's clock, either way."""

_KEY_BYTES = 32


class WebhookSignatureError(AgenToolError, ValueError):
    """A delivery that is not signed by the secret, or whose timestamp is outside the tolerance; or a bad secret."""


def new_secret() -> str:
    """A fresh secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of `secret` (`whsec_<base64>`; the prefix may be left out)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookSignatureError(
            "A webhook signing secret is 'whsec_' followed by base64 (such as one `mcp-scheduler hook create` prints): "
            "check the value, which is not valid base64."
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of `body` sent as message `msg_id` at `timestamp`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, body: bytes, *, msg_id: str | None = None, now: float | None = None) -> dict[str, str]:
    """The three headers of a delivery of `body` (a fresh `msg_...` id unless given; the time now unless given)."""
    msg_id = msg_id or "msg_" + secrets.token_hex(16)
    timestamp = int(time.time() if now is None else now)
    signature = sign(secret, msg_id, timestamp, body)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> tuple[str, int]:
    """Check a delivery's headers (names in lower case, as HTTP servers hand them over) against `secret`; its id and
    timestamp when one of its `v1` signatures matches and the timestamp is within TOLERANCE of `now`, else raise
    `WebhookSignatureError` saying what was wrong."""
    msg_id, stamp, signatures = (headers.get(name, "") for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not (msg_id and stamp and signatures):
        raise WebhookSignatureError(
            f"The request is not signed: it needs the headers {ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} "
            "(the Standard Webhooks format)."
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} must be whole POSIX seconds.") from None
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > TOLERANCE:
        raise WebhookSignatureError(
            f"{TIMESTAMP_HEADER} is more than {TOLERANCE} s away from the receiver's clock: sign each delivery when "
            "it is sent (and check the sender's clock)."
        )
    expected = sign(secret, msg_id, timestamp, body).encode("ascii")
    for signature in signatures.split():
        version, _, _ = signature.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode("ascii", "replace"), expected):
            return msg_id, timestamp
    raise WebhookSignatureError("No signature in webhook-signature matches the secret.")
