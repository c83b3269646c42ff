"""The templates every page and document emopipe writes comes from, and the one way to render them.

`*.html.j2` render with autoescape on and nothing marked safe: every value from the context is HTML-escaped (the
inline PNG data URIs are base64, which escaping leaves as they are), so a sidecar value such as `<script>` is text on
the page, never markup.
`*.md.j2` render with `finalize` neutralising whatever could open an HTML tag in every value, and a `cell` filter for
Markdown table cells (pipes and newlines escaped). Python computes the context; the templates lay it out.
"""

from __future__ import annotations

import functools
import pathlib
import re
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent


def md_safe(value: Any) -> str:
    """Text for Markdown: "<" before a letter, "/", "!" or "?" becomes "&lt;" (so "a < b" stays readable)."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", "" if value is None else str(value))


def md_cell(value: Any) -> str:
    """A Markdown table cell: safe text without pipes or line breaks that would break the row."""
    return md_safe(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


@functools.cache
def _environment(kind: str) -> Any:
    import jinja2

    loader = jinja2.FileSystemLoader(str(HERE))
    common = {"loader": loader, "undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
    if kind == "html":
        return jinja2.Environment(autoescape=True, **common)
    env = jinja2.Environment(autoescape=False, finalize=md_safe, keep_trailing_newline=True, **common)
    env.filters["cell"] = md_cell
    return env


def render(name: str, context: dict[str, Any]) -> str:
    """Render the template `name` (in this folder) with `context`; the kind follows the name (.html.j2, .md.j2)."""
    if name.endswith(".html.j2"):
        kind = "html"
    elif name.endswith(".md.j2"):
        kind = "md"
    else:
        raise ValueError(f"template {name!r}: expected a .html.j2 or .md.j2 file")
    return _environment(kind).get_template(name).render(**context)
