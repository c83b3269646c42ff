"""Reuse a file's sha256 while its (path, size, mtime) are unchanged, as git's index and DVC's state do.

A refresh looks at every file under the corpus roots, but hashing every byte of an 11k-clip corpus each day is the
largest part of ingest. `reusing(known)` makes `sources.files.sha256` return the recorded hash of a file whose
path, size and modification time (nanoseconds) match the record, and records every file it hashes or reuses, so the
caller can save the records for the next run (`save`/`load`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pathlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

Record = tuple[int, int, str]  # size, mtime_ns, sha256
_STATE: contextvars.ContextVar[tuple[dict[str, Record], dict[str, Record]] | None] = contextvars.ContextVar(
    "emopipe_hash_cache", default=None
)


@contextlib.contextmanager
def reusing(known: dict[str, Record]) -> Iterator[dict[str, Record]]:
    """Within this block files.sha256 reuses `known` records; yields the records of every file hashed in it."""
    seen: dict[str, Record] = {}
    token = _STATE.set((known, seen))
    try:
        yield seen
    finally:
        _STATE.reset(token)


def lookup(path: pathlib.Path, st: os.stat_result) -> str | None:
    """The recorded sha256 of `path` if its size and mtime match the record."""
    state = _STATE.get()
    if state is None:
        return None
    hit = state[0].get(os.fsdecode(path))
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        state[1][os.fsdecode(path)] = hit
        return hit[2]
    return None


def record(path: pathlib.Path, st: os.stat_result, sha256: str) -> None:
    state = _STATE.get()
    if state is not None:
        state[1][os.fsdecode(path)] = (st.st_size, st.st_mtime_ns, sha256)


def save(records: dict[str, Record], path: pathlib.Path) -> None:
    """Write records for the next run (atomically)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(records)
    table = pa.table(
        {
            "path": pa.array(keys, pa.string()),
            "size": pa.array([records[k][0] for k in keys], pa.int64()),
            "mtime_ns": pa.array([records[k][1] for k in keys], pa.int64()),
            "sha256": pa.array([records[k][2] for k in keys], pa.string()),
        }
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def load(path: pathlib.Path) -> dict[str, Record]:
    """Records saved by an earlier run; empty when there are none or the file is unreadable."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        return {}
    return {
        p: (s, m, h)
        for p, s, m, h in zip(*(table[c].to_pylist() for c in ("path", "size", "mtime_ns", "sha256")), strict=True)
    }
