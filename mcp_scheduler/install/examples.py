"""The client configurations in `examples/`, made by the code `mcp-scheduler install --print` runs.

`python -m mcp_scheduler.install.examples [DIR]` writes them into DIR (default `examples`); with `--check` it
writes nothing and exits 1 if a file differs from what the code makes. They start a checkout's
`.venv/bin/mcp-scheduler` from the placeholder folder `/path/to/mcp-scheduler`: the README tells the user
to put the checkout's folder there, or to let `mcp-scheduler install CLIENT` write the real path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .clients import CLIENTS, client_document
from .json_config import dump_json

__all__ = ["CHECKOUT_PLACEHOLDER", "EXAMPLE_ARGS", "EXAMPLE_FILES", "REGENERATE", "example_files", "main"]

CHECKOUT_PLACEHOLDER = "/path/to/mcp-scheduler"
"""Where a checkout is in the examples; the real folder replaces it."""
EXAMPLE_ARGS = ("--timezone", "Europe/Berlin")
EXAMPLE_FILES = {
    "claude_desktop_config.json": "claude-desktop",
    "clients/claude_code.mcp.json": "claude-code",
    "clients/vscode.mcp.json": "vscode",
    "clients/cursor.mcp.json": "cursor",
}
"""Each example file (relative to `examples/`) and the client whose configuration it is."""
REGENERATE = "python -m mcp_scheduler.install.examples"


def example_files(checkout: str = CHECKOUT_PLACEHOLDER) -> dict[str, str]:
    """The text of each example file, for a checkout in `checkout`."""
    command = [f"{checkout}/.venv/bin/mcp-scheduler", *EXAMPLE_ARGS]
    return {path: dump_json(client_document(CLIENTS[client], command)) for path, client in EXAMPLE_FILES.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the example files (or, with --check, compare them); 1 if --check found a difference."""
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__)
    parser.add_argument("folder", nargs="?", default="examples", help="the examples folder (default: examples)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    stale = []
    for path, text in example_files().items():
        target = folder / path
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        stale.append(str(target))
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    if args.check and stale:
        sys.stderr.write(f"Differ from what the code makes: {', '.join(stale)}. Run: {REGENERATE}\n")
        return 1
    sys.stderr.write(f"{'Wrote' if stale else 'Up to date:'} {', '.join(stale) or folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
