"""Content-addressed Parquet shards: a per-clip table stored as immutable files whose names are their bytes' hash.

A sharded table is a folder of `part-<hash>.parquet` files. A shard's bytes depend only on the rows it holds: rows
are sorted by the table's key, cut into row groups of a fixed size and written with fixed settings, so the same rows
always give the same file, and its name is the first 16 hex digits of that file's sha256. A refresh keeps every
shard of the previous table whose rows are all still wanted (the file is hard-linked, not rewritten), rewrites only
the shards that lost rows, and writes the new rows into new shards; so DVC stores and pushes only those.
Readers see one logical table (`pyarrow.dataset` over the listed files); the dataset digest is computed from rows,
never from files, so it does not depend on how the rows are sharded.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import schemas

PREFIX = "part-"
COMPRESSION = "zstd"


@dataclass(frozen=True)
class Layout:
    """How one table is sharded.

    Args:
        keys: sort key columns; rows within and across new shards are in this order.
        max_rows: rows per shard (a shard is never larger; the last one of a write may be smaller).
        row_group: rows per Parquet row group (fixed, so a shard's bytes do not depend on how rows arrived).
        small_shards: compact when more kept shards than this hold under a quarter of `max_rows`.
    """

    keys: tuple[str, ...]
    max_rows: int
    row_group: int
    small_shards: int = 8


@dataclass(frozen=True)
class Shard:
    """One shard file of a table: its file name (inside the table's folder) and its row count."""

    name: str
    rows: int


def _unique_tmp(folder: pathlib.Path, stem: str) -> pathlib.Path:
    return folder / f".{stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def _file_hash(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:16]


class ShardWriter:
    """Write rows, already in key order, into shards of at most `layout.max_rows` rows.

    Memory is bounded by one row group: rows are re-chunked into groups of exactly `layout.row_group` rows before
    they reach the Parquet writer, so the bytes of a shard depend only on its rows.

    Args:
        folder: the table's folder (created).
        schema: the table's declared schema; every row group is conformed to it.
        layout: sort keys and sizes.
    """

    def __init__(self, folder: pathlib.Path, schema: pa.Schema, layout: Layout) -> None:
        self.folder, self.schema, self.layout = pathlib.Path(folder), schema, layout
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shards: list[Shard] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: pathlib.Path | None = None
        self._rows_in_shard = 0

    def write(self, table: pa.Table) -> None:
        """Append rows (in key order, after every row written before)."""
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self._group_rows():
            self._flush_group(self._group_rows())

    def _group_rows(self) -> int:
        """Rows the next row group takes: a full group, or what is left of the current shard."""
        return min(self.layout.row_group, self.layout.max_rows - self._rows_in_shard)

    def _flush_group(self, n: int) -> None:
        merged = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        group, rest = merged.slice(0, n), merged.slice(n)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        if self._writer is None:
            self._tmp = _unique_tmp(self.folder, "shard")
            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=COMPRESSION)
        self._writer.write_table(schemas.conform(group, self.schema), row_group_size=n)
        self._rows_in_shard += group.num_rows
        if self._rows_in_shard >= self.layout.max_rows:
            self._close_shard()

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._tmp is not None  # noqa: S101 - set together with the writer
        name = f"{PREFIX}{_file_hash(self._tmp)}.parquet"
        os.replace(self._tmp, self.folder / name)
        self.shards.append(Shard(name, self._rows_in_shard))
        self._writer, self._tmp, self._rows_in_shard = None, None, 0

    def close(self) -> list[Shard]:
        """Write what is buffered and return every shard this writer made."""
        if self._pending_rows:
            self._flush_group(self._pending_rows)
        self._close_shard()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (an error stopped the writer)."""
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._writer, self._tmp, self._pending, self._pending_rows = None, None, [], 0


def sort_rows(table: pa.Table, layout: Layout) -> pa.Table:
    """The rows in the layout's key order."""
    return table.sort_by([(k, "ascending") for k in layout.keys]) if table.num_rows else table


def write_table(table: pa.Table, folder: pathlib.Path, schema: pa.Schema, layout: Layout) -> list[Shard]:
    """Write a whole table as shards (sorted by the layout's keys)."""
    writer = ShardWriter(folder, schema, layout)
    try:
        writer.write(sort_rows(table, layout))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_shard(folder: pathlib.Path, shard: Shard, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """One shard, with the declared schema (never an inferred one)."""
    path = pathlib.Path(folder) / shard.name
    if columns is None:
        return pq.read_table(path, schema=schema)
    return pq.read_table(path, schema=schema, columns=columns)


def iter_rows(folder: pathlib.Path, shards: list[Shard], batch_rows: int = 64) -> Iterator[pa.Table]:
    """Stream the rows of some shards in batches (shards in the order given)."""
    for shard in shards:
        for batch in pq.ParquetFile(pathlib.Path(folder) / shard.name).iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([batch])


def _keyed(stream: Iterable[pa.Table], keys: tuple[str, ...]) -> Iterator[tuple[tuple, pa.Table]]:
    for table in stream:
        values = list(zip(*(table[k].to_pylist() for k in keys), strict=True))
        for i, key in enumerate(values):
            yield key, table.slice(i, 1)


def merge_sorted(streams: list[Iterable[pa.Table]], keys: tuple[str, ...], chunk: int = 32) -> Iterator[pa.Table]:
    """Merge row streams that are each in key order into one stream in key order (bounded memory)."""
    buffer: list[pa.Table] = []
    for _, row in heapq.merge(*(_keyed(s, keys) for s in streams), key=lambda item: item[0]):
        buffer.append(row)
        if len(buffer) >= chunk:
            yield pa.concat_tables(buffer)
            buffer = []
    if buffer:
        yield pa.concat_tables(buffer)


@dataclass
class Carry:
    """What survives of a previous sharded table.

    Attributes:
        folder: the previous table's folder.
        kept: shards whose every row is still wanted: reused as they are (same file, same name).
        partial: shards of which only some rows are wanted: those rows go into new shards.
        keys: the layout keys of every wanted row (kept and partial).
        keep: the predicate that chose the rows (table -> boolean mask).
    """

    folder: pathlib.Path
    kept: list[Shard]
    partial: list[Shard]
    keys: set[tuple]
    keep: Callable[[pa.Table], pa.Array]


def plan_carry(
    folder: pathlib.Path,
    shards: list[Shard],
    *,
    schema: pa.Schema,
    layout: Layout,
    keep: Callable[[pa.Table], pa.Array],
    columns: list[str] | None = None,
    whole: bool = True,
) -> Carry:
    """Decide which previous shards are kept whole, which are rewritten, which are dropped.

    Args:
        folder: the previous table's folder.
        shards: its shards.
        schema: the table's schema.
        layout: its layout (small kept shards beyond `layout.small_shards` are compacted: rewritten together).
        keep: rows -> boolean mask of the rows still wanted.
        columns: the columns `keep` needs (read instead of the whole shard; they must include the layout keys);
            None reads whole shards.
        whole: shards may be kept whole; False rewrites every wanted row (a previous file that is not a
            content-addressed shard, e.g. the first layout's single file).
    """
    kept, partial, keys = [], [], set()
    for shard in shards:
        rows = read_shard(folder, shard, schema, columns)
        mask = keep(rows)
        wanted = rows.filter(mask)
        keys.update(zip(*(wanted[k].to_pylist() for k in layout.keys), strict=True))
        if whole and wanted.num_rows == shard.rows:
            kept.append(shard)
        elif wanted.num_rows:
            partial.append(shard)
    small = [s for s in kept if s.rows < layout.max_rows / 4]
    if len(small) > layout.small_shards:  # many small shards from many small refreshes: merge them
        kept = [s for s in kept if s not in small]
        partial += small
    return Carry(pathlib.Path(folder), kept, partial, keys, keep)


def carried_rows(carry: Carry, schema: pa.Schema, layout: Layout) -> Iterator[pa.Table]:
    """The wanted rows of the partially kept shards, in key order (each shard is sorted; they are merged)."""

    def rows(shard: Shard) -> Iterator[pa.Table]:
        for batch in iter_rows(carry.folder, [shard]):
            table = schemas.conform(batch, schema)
            part = table.filter(carry.keep(table))
            if part.num_rows:
                yield part

    streams = [rows(s) for s in carry.partial]
    if not streams:
        return iter(())
    return merge_sorted(streams, layout.keys)


def link(src_folder: pathlib.Path, dst_folder: pathlib.Path, shards: list[Shard]) -> None:
    """Put existing shard files into another table folder: a hard link (same bytes), a copy across file systems."""
    import shutil

    dst_folder = pathlib.Path(dst_folder)
    dst_folder.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        src, dst = pathlib.Path(src_folder) / shard.name, dst_folder / shard.name
        if dst.exists():
            continue  # same name, same bytes
        try:
            dst.hardlink_to(src)
        except OSError:
            tmp = _unique_tmp(dst_folder, "link")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)


def row_hashes(table: pa.Table) -> list[str]:
    """A content hash per row (every column), for tables whose rows are compared by value (clips, lineage)."""
    import json

    out = []
    for row in table.to_pylist():
        out.append(hashlib.sha256(json.dumps(row, sort_keys=True, default=_plain).encode()).hexdigest())
    return out


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return str(value)
