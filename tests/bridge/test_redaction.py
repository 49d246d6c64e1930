"""Redaction: every common encoding of a secret, secrets of any length, cuts that never leave part of one,
and the secrets revealed to a run reaching `clip` and the stores through the context."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from agentool_bridge.errors import clip, clip_text
from agentool_bridge.redaction import Redactor, active, revealing, scrub, scrub_text
from agentool_bridge.secrets import redact

SECRET = "pa ss/wörd+\"quoted\"&x=y\\z"
REF = "!env:TOKEN"


@pytest.mark.parametrize(
    "written",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").replace("%C3%B6", "%c3%b6").replace("%2F", "%2f"),  # lowercase hex digits
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        repr(SECRET)[1:-1],
    ],
    ids=["raw", "quote-safe-none", "quote", "quote-plus", "quote-lower-hex", "json-ascii", "json", "repr"],
)
def test_each_encoding_of_a_secret_is_replaced(written: str) -> None:
    text = f"before {written} after"

    assert redact(text, {SECRET: REF}) == f"before {REF} after"


def test_a_secret_in_a_url_query_and_a_json_document_is_replaced() -> None:
    url = f"https://api.example/v1?{urlencode({'key': SECRET, 'n': 1})}"
    document = json.dumps({"echo": SECRET})

    assert redact(url, {SECRET: REF}) == f"https://api.example/v1?key={REF}&n=1"
    assert json.loads(redact(document, {SECRET: REF})) == {"echo": REF}


def test_secrets_of_every_length_are_replaced_and_redacting_twice_changes_nothing_more() -> None:
    secrets = {"k": "!env:K", "env": "!env:E", "sh0rt": "!env:S"}

    once = redact("k=env sh0rt", secrets)

    assert once == "!env:K=!env:E !env:S"
    assert redact(once, secrets) == once


def test_a_cut_head_replaces_a_secret_across_the_cut_whole() -> None:
    redactor = Redactor({SECRET: REF})
    text = "x" * 10 + SECRET + "y" * 50

    assert redactor.head(text, 12) == "x" * 10 + REF
    assert redactor.head(text, 5) == "x" * 5
    assert redactor.tail(text, len(text) - 52) == REF + "y" * 50
    assert redactor.tail(text, len(text) - 5) == "y" * 5


def test_head_bytes_cuts_at_the_byte_limit_and_counts_multibyte_characters_once() -> None:
    redactor = Redactor({SECRET: REF})
    raw = ("é" * 4 + SECRET + "z" * 40).encode()

    assert redactor.head_bytes(raw, 8, bytes.decode) == "é" * 4
    assert redactor.head_bytes(raw, 9, bytes.decode) == "é" * 4 + REF
    assert Redactor().head_bytes(raw, 9, lambda b: b.decode(errors="replace")) == "é" * 4 + "p"


def test_the_margin_covers_the_longest_form() -> None:
    redactor = Redactor({SECRET: REF})

    assert redactor.margin >= len(quote(SECRET, safe="")) >= len(SECRET.encode())
    assert Redactor().margin == 0


def test_clip_and_clip_text_redact_the_revealed_secrets_before_they_cut() -> None:
    long_secret = "".join(f"{n:03d}" for n in range(100))
    message = "x" * 150 + long_secret

    with revealing({long_secret: REF}):
        clipped, quoted = clip_text(message), clip(message)

    assert clipped == "x" * 150 + REF and long_secret[:20] not in quoted
    assert clip_text(message).startswith("x" * 150 + long_secret[:50])  # outside the run: nothing is revealed


async def test_revealed_secrets_reach_tasks_started_inside_and_nest() -> None:
    with revealing({"outer-value": "!env:OUTER"}):
        with revealing({"inner-value": "!env:INNER"}):
            inside = await asyncio.create_task(asyncio.to_thread(scrub, ["outer-value", "inner-value"]))
        after_inner = scrub_text("inner-value outer-value")

    assert inside == ["!env:OUTER", "!env:INNER"]
    assert after_inner == "inner-value !env:OUTER"
    assert scrub_text("outer-value") == "outer-value" and not active()


def test_empty_values_are_ignored() -> None:
    assert redact("text", {"": "!env:EMPTY"}) == "text"
