"""The dashboard's one page (`page.html`, shipped in the wheel: inline CSS and JavaScript, nothing fetched from
elsewhere), and the Content-Security-Policy that lets a browser run exactly its inline style and script."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib.resources import files

__all__ = ["PAGE_FILE", "content_security_policy", "page_html"]

PAGE_FILE = "page.html"


@functools.cache
def page_html() -> str:
    """The page: in a chat host's iframe it speaks MCP Apps; in a browser tab, the server's JSON API."""
    return files(__package__).joinpath(PAGE_FILE).read_text(encoding="utf-8")


def _hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() for block in blocks)
    return " ".join(f"'sha256-{digest}'" for digest in digests)


@functools.cache
def content_security_policy() -> str:
    """What the page may do in a browser: its own inline style and script (by hash), requests to its own origin,
    nothing else (no other page may frame it, no form posts, no plugins)."""
    html = page_html()
    return (
        f"default-src 'none'; script-src {_hashes(html, 'script')}; style-src {_hashes(html, 'style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
