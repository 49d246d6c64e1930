"""`FrozenModel`: the base of the immutable models the scheduler keeps by the hundred thousand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """An immutable pydantic model whose instances share the set of the names of their fields set.

    pydantic gives every instance its own set, which takes more memory than the rest of a small
    model (with 100,000 jobs, 70 MB for the schedules and as much again for the job definitions);
    frozen instances never add to it, so one set per combination of names serves them all.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "__pydantic_fields_set__", _shared_field_names(self.__pydantic_fields_set__))


_FIELD_NAME_SETS: Final[dict[frozenset[str], set[str]]] = {}


def _shared_field_names(names: Iterable[str]) -> set[str]:
    """One set object for all the instances whose fields set holds these names."""
    key = frozenset(names)
    shared = _FIELD_NAME_SETS.get(key)
    if shared is None:
        shared = _FIELD_NAME_SETS[key] = set(key)
    return shared
