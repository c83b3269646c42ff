"""Parquet reads and writes that always go through the declared schemas, plus small JSON helpers."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import schemas


def temp_beside(path: pathlib.Path) -> pathlib.Path:
    """A temporary name beside `path`, unique to this process and call (two writers never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _atomic(path: pathlib.Path, write: Any) -> pathlib.Path:
    """Write through a temporary file renamed into place; on any failure (a full disk) remove the temporary."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_table(table: pa.Table, path: pathlib.Path, schema: pa.Schema) -> pathlib.Path:
    """Conform and write atomically (temp file + rename), so a crash never leaves half a file."""
    conformed = schemas.conform(table, schema)
    return _atomic(path, lambda tmp: pq.write_table(conformed, tmp, compression="zstd"))


def read_table(path: pathlib.Path, schema: pa.Schema) -> pa.Table:
    """Read with the declared schema (never an inferred one) and conform."""
    try:
        table = pq.read_table(path, schema=schema)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first") from err
    return schemas.conform(table, schema)


def link_or_copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    """Hard-link a large file into another stage folder (same bytes, no copy); copy across file systems."""
    import shutil

    dst = pathlib.Path(dst)
    dst.unlink(missing_ok=True)
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def write_json(path: pathlib.Path, data: Any) -> pathlib.Path:
    """Write JSON atomically (sorted keys, so the same data gives the same bytes)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: pathlib.Path) -> Any:
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))


def table_digest(table: pa.Table) -> str:
    """Content hash of a table: independent of row order, chunking and file encoding."""
    import hashlib

    keyed = table.sort_by([(n, "ascending") for n in table.column_names[:1]])
    h = hashlib.sha256(str(table.schema.remove_metadata()).encode())
    for row in keyed.to_pylist():
        h.update(json.dumps(row, sort_keys=True, default=str).encode())
    return h.hexdigest()
