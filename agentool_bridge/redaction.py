"""Redaction: secret values replaced by their `!env:NAME` reference in what is shown, stored or logged.

A `Redactor` knows some secrets (value -> reference) and finds each value in a text in every form it
commonly takes there: as is, URL-encoded (as a path segment, with the default safe characters, as a
form or query value), JSON-escaped (ASCII-only or not) and as `repr` escapes it. Values of every
length are replaced, however short (the operator is warned at start about short ones).

While a scheduled run executes, the secrets it resolved are *revealed* in the current context
(`revealing`); `scrub` and `scrub_text` redact with them, and `errors.clip` / `clip_text` scrub before
they cut, so a clipped message never ends with the start of a secret. Code that cuts a text itself (a
response body at its size cap, the tail of a program's stderr) uses `Redactor.head` / `Redactor.tail`
on a text read a `margin` longer than the cut, so that a secret across the cut is replaced whole.

This module imports nothing else of the package, so that `errors` can use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["Redactor", "active", "revealing", "scrub", "scrub_text"]


_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _upper_hex(text: str) -> str:
    """`text` with the hex digits of its percent-escapes in upper case (`%2f` -> `%2F`)."""
    return _ESCAPE.sub(lambda m: m.group(0).upper(), text)


def _pattern_of(form: str) -> str:
    """A regular expression for `form` whose percent-escapes match in either case."""

    def either(match: re.Match[str]) -> str:
        return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in match.group(0)[1:])

    return _ESCAPE.sub(either, re.escape(form))


def forms(value: str) -> set[str]:
    """The ways `value` may be written in a text: raw, URL-encoded (hex digits in either case), JSON-escaped,
    repr-escaped."""
    found = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    }
    found.discard("")
    return found


class Redactor:
    """Replaces known secret values (in any of their `forms`) by their reference: `secrets` maps value -> reference.

    Empty values are ignored (there is nothing to hide). A reference already in a text is left as it is,
    so redacting twice changes nothing more than redacting once.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.secrets: dict[str, str] = {value: ref for value, ref in (secrets or {}).items() if value}
        replacements: dict[str, str] = {}
        for value, ref in self.secrets.items():
            for form in forms(value):
                replacements.setdefault(_upper_hex(form), ref)
        for ref in self.secrets.values():
            replacements[_upper_hex(ref)] = ref  # matched first where longer: a short value inside it stays put
        self._replacements = replacements
        ordered = sorted(replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(_pattern_of, ordered))) if self.secrets else None
        self.margin = max((len(form.encode("utf-8")) for form in replacements), default=0)
        """Bytes (UTF-8) of the longest form: read this much past a cut to see a secret that crosses it."""

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def merged(self, secrets: Mapping[str, str]) -> Redactor:
        """A redactor that knows these secrets as well."""
        return Redactor({**self.secrets, **secrets}) if secrets else self

    def _ref(self, match: re.Match[str]) -> str:
        return self._replacements[_upper_hex(match.group(0))]

    def text(self, text: str) -> str:
        """`text` with every secret replaced by its reference."""
        if self._pattern is None:
            return text
        return self._pattern.sub(self._ref, text)

    def value(self, value: Any) -> Any:
        """A copy of `value` with every string in it (dict keys too) redacted; other values as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(key): self.value(inner) for key, inner in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(inner) for inner in value]
        return value

    def head(self, text: str, stop: int) -> str:
        """`text[:stop]` redacted, where a secret that starts before `stop` is replaced whole (its reference
        kept entire) even if it ends after: give a `text` that runs at least `margin` past `stop`."""
        if self._pattern is None:
            return text[:stop]
        parts: list[str] = []
        position = 0
        for match in self._pattern.finditer(text):
            if match.start() >= stop:
                break
            parts += [text[position : match.start()], self._ref(match)]
            position = match.end()
        if position < stop:
            parts.append(text[position:stop])
        return "".join(parts)

    def tail(self, text: str, start: int) -> str:
        """`text[start:]` redacted, where a secret that ends after `start` is replaced whole even if it starts
        before: give a `text` that begins at least `margin` before `start` (or is the whole text)."""
        if self._pattern is None:
            return text[start:]
        parts: list[str] = []
        position = start
        for match in self._pattern.finditer(text):
            if match.end() <= start:
                continue
            parts += [text[position : max(match.start(), position)], self._ref(match)]
            position = match.end()
        parts.append(text[position:])
        return "".join(parts)

    def head_bytes(self, raw: bytes, limit: int, decode: Callable[[bytes], str]) -> str:
        """The text of the first `limit` bytes of `raw`, redacted so that no part of a secret is left at the cut;
        `raw` should hold `margin` bytes more than `limit` where there are."""
        stop = len(decode(raw[:limit]))
        return self.head(decode(raw), stop) if self._pattern is not None else decode(raw[:limit])


_ACTIVE: ContextVar[Redactor | None] = ContextVar("agentool_bridge_revealed_secrets", default=None)


def active() -> Redactor:
    """The redactor of the secrets revealed in this context (an empty one outside any run)."""
    return _ACTIVE.get() or Redactor()


@contextmanager
def revealing(secrets: Mapping[str, str]) -> Iterator[Redactor]:
    """Mark `secrets` (value -> reference) as revealed in this block (and the tasks it starts), on top of those
    already revealed; `scrub`, `scrub_text`, `errors.clip` and the stores of the toolkits redact them."""
    current = _ACTIVE.get()
    redactor = current.merged(secrets) if current is not None else Redactor(secrets)
    token = _ACTIVE.set(redactor)
    try:
        yield redactor
    finally:
        _ACTIVE.reset(token)


def scrub(value: Any) -> Any:
    """`value` with the secrets revealed in this context replaced by their references (a copy if any was)."""
    redactor = _ACTIVE.get()
    return value if redactor is None else redactor.value(value)


def scrub_text(text: str) -> str:
    """`text` with the secrets revealed in this context replaced by their references."""
    redactor = _ACTIVE.get()
    return text if redactor is None else redactor.text(text)
