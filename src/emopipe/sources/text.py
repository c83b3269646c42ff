"""Reading the text files corpora ship: mixed UTF-8 / GBK lines, and paths that must stay inside the root."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

from emopipe.sources.base import InvalidInput, printable


@dataclass(frozen=True)
class Line:
    """One decoded line of a text file; `number` is 1-based."""

    number: int
    text: str
    encoding: str


def decode_lines(raw: bytes) -> Iterator[Line | InvalidInput]:
    """Yield each non-blank line decoded as UTF-8, else GBK (GB18030); a line that is neither is an InvalidInput.

    A UTF-8 byte-order mark is dropped and UTF-16 text with its mark is read as such; lines end at LF, CR or CRLF;
    NUL bytes stay in the text (and then fail whatever grammar the line must follow).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text": UTF-16 with a byte-order mark
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            yield InvalidInput("bad_encoding", "starts with a UTF-16 byte-order mark but is not UTF-16 text")
            return
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
        raise InvalidInput("unsafe_path", f"{printable(repr(text), 120)} is absolute or empty")
    if ".." in path.parts:
        raise InvalidInput("unsafe_path", f"{printable(repr(text), 120)} leaves the corpus root")
    if printable(value) != value:
        raise InvalidInput("unsafe_path", f"{printable(repr(text), 120)} holds a control or invisible character")
    return path.as_posix()
