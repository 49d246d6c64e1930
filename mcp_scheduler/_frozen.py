"""`FrozenModel`: the base of the immutable models the scheduler keeps by the hundred thousand."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ._pydantic import share_fields_set

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """An immutable pydantic model whose instances share the set of the names of their fields set.

    pydantic gives every instance its own set, which takes more memory than the rest of a small
    model (with 100,000 jobs, 70 MB for the schedules and as much again for the job definitions);
    frozen instances never add to it, so one set per combination of names serves them all
    (`_pydantic.share_fields_set`, the adapter that checks pydantic still allows it).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def model_post_init(self, context: Any, /) -> None:
        share_fields_set(self)
