"""Reading the text files corpora ship: mixed UTF-8 / GBK lines, and paths that must stay inside the root."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

from emopipe.sources.base import InvalidInput


@dataclass(frozen=True)
class Line:
    """One decoded line of a text file; `number` is 1-based."""

    number: int
    text: str
    encoding: str


def read_lines(path: pathlib.Path) -> Iterator[Line | InvalidInput]:
    """Yield each non-blank line decoded as UTF-8, else GBK (GB18030); a line that is neither is an InvalidInput."""
    raw = pathlib.Path(path).read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, chunk in enumerate(raw.splitlines(), start=1):
        if not chunk.strip():
            continue
        for encoding in ("utf-8", "gb18030"):
            try:
                yield Line(number, chunk.decode(encoding).strip(), encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            yield InvalidInput("bad_encoding", f"line {number}: {chunk[:40]!r} is neither UTF-8 nor GBK")


def safe_relpath(text: str) -> str:
    """A POSIX path relative to the corpus root; raise InvalidInput(unsafe_path) if absolute or climbing out."""
    value = text.strip().replace("\\", "/")
    path = pathlib.PurePosixPath(value)
    if not value or path.is_absolute() or (len(value) > 1 and value[1] == ":"):
        raise InvalidInput("unsafe_path", f"{text!r} is absolute or empty")
    if ".." in path.parts:
        raise InvalidInput("unsafe_path", f"{text!r} leaves the corpus root")
    return path.as_posix()


def inside(root: pathlib.Path, path: pathlib.Path) -> bool:
    """Whether `path`, with symlinks resolved, stays under `root`."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
