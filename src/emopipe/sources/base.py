"""What every corpus reader shares: file hashing, quarantine rows and the scan result."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from emopipe import schemas

ProgressFn = Callable[[int], None]


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


def sha256_file(path: pathlib.Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (or reused, see sources.hashcache, when unchanged)."""
    from emopipe.sources import hashcache

    st = path.stat()
    if (known := hashcache.lookup(path, st)) is not None:
        return known
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    hashcache.record(path, st, h.hexdigest())
    return h.hexdigest()


def quarantine_row(path: str, corpus: str, stage: str, err: InvalidInput, run_id: str) -> dict[str, Any]:
    return {
        "path": path,
        "corpus": corpus,
        "stage": stage,
        "reason": err.reason,
        "detail": err.detail,
        "run_id": run_id,
    }


def walk_files(root: pathlib.Path) -> Iterator[pathlib.Path]:
    """Every regular file under root in a stable order, skipping hidden files and folders (.DS_Store, .git)."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            yield path


def location_path(where: str) -> str:
    """The file part of a `path:line` location (a path may itself contain ':')."""
    head, sep, tail = where.rpartition(":")
    return head if sep and tail.isdigit() else where


def finish_scan(
    corpus: str, root: pathlib.Path, rows: list[dict[str, Any]], problems: list[tuple[str, InvalidInput]], run_id: str
) -> ScanResult:
    """Conform a reader's clip rows and problems (location, InvalidInput) into a ScanResult, with one log line."""
    import logging

    quarantine = [quarantine_row(location_path(where), corpus, "ingest", err, run_id) for where, err in problems]
    logging.getLogger(f"emopipe.sources.{corpus}").info(
        "%s scan of %s: %d clips (%d labelled), %d quarantined", corpus, root, len(rows),
        sum(1 for r in rows if r.get("label")), len(quarantine))  # fmt: skip
    return ScanResult(schemas.from_rows(rows, schemas.CLIPS), schemas.from_rows(quarantine, schemas.QUARANTINE))
