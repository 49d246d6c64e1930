"""`Figures`: named figures of the fault suite, printed at the end of the session and kept in a JSON file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"


class Figures:
    """Named figures (each a dict of numbers and words) collected during the session."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, name: str, **values: Any) -> None:
        """Record the figure `name` (replacing an earlier one of that name)."""
        self.items[name] = {**values, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def lines(self) -> list[str]:
        """One line per figure, for the terminal."""
        return [
            f"{name}: " + ", ".join(f"{key}={value}" for key, value in values.items() if key != "recorded_at")
            for name, values in self.items.items()
        ]

    def write(self, path: Path) -> None:
        """Merge the figures into the JSON file at `path` (created if missing)."""
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        if not isinstance(existing, dict):
            existing = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({**existing, **self.items}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(path)
