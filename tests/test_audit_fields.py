"""An audit entry's fields: values kept as given while short, each JSON value over VALUE_CHARS cut to its start."""

from __future__ import annotations

from mcp_scheduler.audit import VALUE_CHARS, audit_fields


def test_short_values_are_kept_whole_and_a_long_one_is_cut_alone() -> None:
    short = {"schedule": "1 hour", "input_data": {"operation": "log", "message": "é" * 10}}
    assert audit_fields(short) == short
    # Together longer than VALUE_CHARS, each of b and c within it: only a is cut.
    fields = audit_fields({"a": "x" * 3000, "b": 1, "c": "y" * 1500, "d": ["z" * 1500]})
    assert fields["a"] == '"' + "x" * (VALUE_CHARS - 4) + "..." and len(fields["a"]) == VALUE_CHARS
    assert (fields["b"], fields["c"], fields["d"]) == (1, "y" * 1500, ["z" * 1500])
