"""What every corpus reader shares: quarantine rows, printable details, the per-input boundary and the scan result."""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from emopipe import schemas

log = logging.getLogger(__name__)

ProgressFn = Callable[[int], None]


def announce(progress: ProgressFn | None, total: int) -> None:
    """Tell a progress display how many items the scan is about to report (when it can take a total)."""
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(total)


MAX_PATH_CHARS = 240  # a quarantine `path` longer than this keeps its head and tail (the file name)
MAX_DETAIL_CHARS = 400
MAX_TEXT_CHARS = 4096  # one annotation value kept as text in a table (a description, a native field)

# A garbage file (a JPEG renamed set_1.csv) would otherwise give one row per line: the quarantine keeps this many
# rows per file, and one more that counts the rest by reason.
MAX_ROWS_PER_PATH = 100


class InvalidInput(ValueError):
    """An input cannot become a clip; `reason` is a quarantine reason code from schemas/quarantine.yaml."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in schemas.quarantine_reasons():
            raise ValueError(f"unknown quarantine reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ScanResult:
    """Output of a corpus scan: healthy clip rows and quarantined inputs, both conformed."""

    clips: pa.Table
    quarantine: pa.Table


def printable(text: Any, limit: int | None = None) -> str:
    """`text` as one printable line: undecodable bytes (surrogate escapes) as `\\xNN`, control and other invisible
    characters as `\\xNN` / `\\uNNNN`; longer than `limit` keeps the head and the tail around a `…`.

    File names come from the OS as they are; a name holding a newline or an escape sequence must not become a
    second log line or a terminal command when a person reads the quarantine.
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of an undecodable byte: show the byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    line = "".join(out)
    if limit is not None and len(line) > limit:
        head = limit // 4
        line = f"{line[:head]}…{line[len(line) - (limit - head - 1) :]}"
    return line


def bounded_text(text: str, where: str, key: str) -> tuple[str, InvalidInput | None]:
    """`text` cut to MAX_TEXT_CHARS (marked, with the length it had) and the InvalidInput that says so, or `text`
    as it is and None: an annotation value must not grow every table of the dataset."""
    if len(text) <= MAX_TEXT_CHARS:
        return text, None
    cut = f"{text[:MAX_TEXT_CHARS]}… [{len(text)} characters, cut]"
    detail = f"{where}: {printable(key, 40)} holds {len(text)} characters; its first {MAX_TEXT_CHARS} are kept"
    return cut, InvalidInput("invalid_annotation", detail)


def check_name(rel: str) -> None:
    """A path can become an id only if it is valid UTF-8 made of printable characters (spaces allowed).

    Raises InvalidInput(bad_name) otherwise: ids and paths are stored as text, shown in reports and logs, and
    two names differing only by an invisible character would look like one.
    """
    if printable(rel) != rel:
        what = (
            "is not valid UTF-8"
            if any(0xDC80 <= ord(c) <= 0xDCFF for c in rel)
            else "holds a control or invisible character"
        )
        raise InvalidInput("bad_name", f"the name {what}")


def quarantine_row(path: str, corpus: str, stage: str, err: InvalidInput, run_id: str) -> dict[str, Any]:
    """One quarantine row: `path` printable and bounded, `detail` printable, bounded and naming the file."""
    shown = printable(path, MAX_PATH_CHARS)
    detail = printable(err.detail)
    if shown not in detail:
        detail = f"{shown}: {detail}"
    return {
        "path": shown,
        "corpus": corpus,
        "stage": stage,
        "reason": err.reason,
        "detail": printable(detail, MAX_DETAIL_CHARS),
        "run_id": run_id,
    }


@contextlib.contextmanager
def guard(problems: list[tuple[str, InvalidInput]], where: str) -> Iterator[None]:
    """The per-input boundary of a reader: an InvalidInput, or any failure the reader did not foresee, becomes a
    problem at `where` and the scan goes on with the next input."""
    try:
        yield
    except InvalidInput as err:
        problems.append((where, err))
    except RecursionError:
        problems.append((where, InvalidInput("unreadable_annotation", "nested too deeply to read")))
    except Exception as err:  # noqa: BLE001 — per-input boundary: one input the reader did not foresee must not lose the corpus
        log.warning("reader failed on %s", printable(where, MAX_PATH_CHARS), exc_info=True)
        problems.append((where, InvalidInput("reader_error", f"{type(err).__name__}: {err}")))


def location_path(where: str) -> str:
    """The file part of a `path:line` location (a path may itself contain ':')."""
    head, sep, tail = where.rpartition(":")
    return head if sep and tail.isdigit() else where


def _table(rows: list[dict[str, Any]], corpus: str, problems: list[tuple[str, InvalidInput]]) -> pa.Table:
    """The conformed clips table; a row that does not fit its schema (a reader bug) is quarantined, not raised."""
    try:
        return schemas.from_rows(rows, schemas.CLIPS)
    except (schemas.SchemaError, UnicodeError, OverflowError):
        kept = []
        for row in rows:
            try:
                schemas.from_rows([row], schemas.CLIPS)
                kept.append(row)
            except (schemas.SchemaError, UnicodeError, OverflowError) as err:
                where = str(row.get("media_path") or row.get("clip_id") or corpus)
                problems.append((where, InvalidInput("reader_error", f"row does not fit the clips schema: {err}")))
        return schemas.from_rows(kept, schemas.CLIPS)


def _unique_content(rows: list[dict[str, Any]], problems: list[tuple[str, InvalidInput]]) -> list[dict[str, Any]]:
    """The first clip (in the reader's order) of each sha256; a later one with the same bytes is quarantined.

    Two ids for the same bytes inside one corpus is a copy made by mistake; kept, it would fail the gate's
    (corpus, sha256) uniqueness check for the whole dataset. Footage merges such copies into `duplicate_paths`
    before this point.
    """
    first: dict[str, str] = {}
    kept = []
    for row in rows:
        sha, path = row.get("sha256"), str(row.get("media_path"))
        if sha in first:
            problems.append((path, InvalidInput("duplicate_content", f"same bytes as {first[sha]}")))
            continue
        first[sha] = path
        kept.append(row)
    return kept


def _bounded(quarantine: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_ROWS_PER_PATH rows per path: the last one stands for the rest, counted by reason."""
    from collections import Counter, defaultdict

    seen: Counter[str] = Counter()
    rest: dict[str, list[dict[str, Any]]] = defaultdict(list)
    out = []
    for row in quarantine:
        seen[row["path"]] += 1
        if seen[row["path"]] < MAX_ROWS_PER_PATH:
            out.append(row)
            continue
        if not rest[row["path"]]:
            out.append(row)
        rest[row["path"]].append(row)
    for extra in rest.values():
        if len(extra) > 1:
            counts = Counter(r["reason"] for r in extra)
            reasons = ", ".join(f"{r} x{n}" for r, n in counts.most_common())
            detail = f"{extra[0]['path']}: {len(extra)} more problems in this file, not listed one by one ({reasons})"
            extra[0].update(reason=counts.most_common(1)[0][0], detail=printable(detail, MAX_DETAIL_CHARS))
    return out


def finish_scan(
    corpus: str, root: pathlib.Path, rows: list[dict[str, Any]], problems: list[tuple[str, InvalidInput]], run_id: str
) -> ScanResult:
    """Conform a reader's clip rows and problems (location, InvalidInput) into a ScanResult, with one log line."""
    problems = list(problems)
    rows = _unique_content(rows, problems)
    clips = _table(rows, corpus, problems)
    quarantine = _bounded(
        [quarantine_row(location_path(where), corpus, "ingest", err, run_id) for where, err in problems]
    )
    logging.getLogger(f"emopipe.sources.{corpus}").info(
        "%s scan of %s: %d clips (%d labelled), %d quarantined", corpus, printable(root), clips.num_rows,
        sum(1 for r in rows if r.get("label")), len(quarantine))  # fmt: skip
    return ScanResult(clips, schemas.from_rows(quarantine, schemas.QUARANTINE))
