"""Namespaces per principal: how a principal's queue names and `storage_kv` keys are spelled in the store, apart
from everyone else's.

A name as its user gives it (the queue `results`, the key `report`) is stored under that user's namespace
(`~token:alice/results`), or as it is when there is none (the shared names: the operator's and admins'). The
scheduler decides whose namespace a call or a run uses (`mcp_scheduler/queue_owners.py`) and hands it to the
`queue` and `storage_kv` AgenTools through the run context (`RunInfo.namespace`); this module only spells names
into and out of a namespace, so that all of them spell names alike.

A namespace is `~KEY/`: KEY is the subject when it is 1 to 64 of letters, digits and `. _ : @ + -` (no `/`, so
the namespace ends at the first `/`), else `=` and a hash of the subject (`=` is never in a readable one, so two
subjects never share a namespace). A name given within a namespace may not start with `~`: nobody forges
another's namespace through a name; shared names may, which is how an admin addresses anyone's queue or key.
"""

from __future__ import annotations

import hashlib
import re

from ._common import MAX_NAME_LENGTH, check_name
from .errors import InvalidNameError

__all__ = ["NAMESPACE_MARK", "namespace_for", "stored_name", "used_name"]

NAMESPACE_MARK = "~"
"""The first character of every stored name that belongs to a namespace."""
_READABLE = re.compile(r"[A-Za-z0-9._:@+-]{1,64}")


def namespace_for(subject: str) -> str:
    """The namespace of the principal named `subject` (`~SUBJECT/`, or `~=HASH/` for an unusual subject)."""
    key = subject if _READABLE.fullmatch(subject) else "=" + hashlib.sha256(subject.encode()).hexdigest()[:24]
    return f"{NAMESPACE_MARK}{key}/"


_WORDS = {"queue_name": ("queue name", "queues", "name your own queue without it (e.g. 'results')"),
          "key": ("key", "keys", "name your own key without it (e.g. 'report:last_run')")}
"""For each kind of name (the argument that gives it): what it is, what a namespace holds, and what to do."""


def stored_name(namespace: str | None, name: str, *, field: str = "queue_name") -> str:
    """`name` as the store keeps it within `namespace` (None: the shared names, where it is kept as given).
    `field`: the argument that gave it, `queue_name` or `key` (the words of the errors).

    Raises `InvalidNameError` for a name that starts with `~` within a namespace, or one too long for it."""
    if namespace is None:
        return name
    check_name(field, name)
    what, whose, instead = _WORDS[field]
    if name.startswith(NAMESPACE_MARK):
        raise InvalidNameError(
            f"{what} {name[:80]!r} starts with {NAMESPACE_MARK!r}, which marks another principal's {whose}: {instead}"
        )
    most = MAX_NAME_LENGTH - len(namespace)
    if len(name) > most:
        raise InvalidNameError(f"{what} must be at most {most} characters for this principal (got {len(name)})")
    return namespace + name


def used_name(namespace: str | None, stored: str) -> str | None:
    """The name a user of `namespace` knows the stored queue or key `stored` by, or None when it is not one of its
    own (within a namespace); every stored name as it is for the shared names (None)."""
    if namespace is None:
        return stored
    return stored[len(namespace):] if stored.startswith(namespace) and len(stored) > len(namespace) else None
