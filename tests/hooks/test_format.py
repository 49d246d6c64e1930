"""The Standard Webhooks format: ours against the independent implementation on PyPI (`standardwebhooks`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agentool_bridge.standard_webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
    new_secret,
    sign,
    signed_headers,
    verify,
)

BODY = b'{"event": "push", "n": 1}'


def test_their_signature_verifies_with_ours() -> None:
    secret = new_secret()
    now = int(time.time())
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": "msg_1", TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: theirs}
    assert verify(secret, headers, BODY) == ("msg_1", now)
    assert theirs == sign(secret, "msg_1", now, BODY)


def test_our_headers_verify_with_theirs() -> None:
    secret = new_secret()
    headers = signed_headers(secret, BODY)
    assert Webhook(secret).verify(BODY, headers) == {"event": "push", "n": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_one_of_several_signatures_is_enough() -> None:
    secret, old = new_secret(), new_secret()
    headers = signed_headers(secret, BODY)
    other = sign(old, headers["webhook-id"], int(headers[TIMESTAMP_HEADER]), BODY)
    headers[SIGNATURE_HEADER] = f"v2,abc {other} {headers[SIGNATURE_HEADER]}"
    assert verify(secret, headers, BODY)[0] == headers["webhook-id"]


@pytest.mark.parametrize("change", ["body", "secret", "unsigned", "stale", "future", "bad_time"])
def test_what_is_refused(change: str) -> None:
    secret = new_secret()
    headers = signed_headers(
        secret, BODY, now=time.time() - (400 if change == "stale" else 0) + (400 if change == "future" else 0)
    )
    body, key = BODY, secret
    if change == "body":
        body = BODY + b" "
    elif change == "secret":
        key = new_secret()
    elif change == "unsigned":
        del headers[SIGNATURE_HEADER]
    elif change == "bad_time":
        headers[TIMESTAMP_HEADER] = "soon"
    with pytest.raises(WebhookSignatureError):
        verify(key, headers, body)


def test_a_bad_secret_is_refused() -> None:
    with pytest.raises(WebhookSignatureError, match="base64"):
        sign("whsec_!!!", "msg", 1, BODY)
