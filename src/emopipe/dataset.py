"""The dataset: one object for a dataset folder (any stage's output, or a checked-out published version).

A dataset folder holds the tables of schemas/ and a manifest, `dataset.json`: which corpora (and their roots) the
clips come from, which of them are synthetic, which stage versions produced it, and every table with its files and
row count. Per-clip tables (clips, features, labels, lineage) are content-addressed shards (emopipe.shards) in a
folder named after the table; the others are one `<table>.parquet` each. Tables are read lazily and once: the gate,
the audit, the publisher, the exports, the report and the CLI all take a `Dataset` and ask it, so no stage reads the
same Parquet file twice (`Dataset.reads` counts what was read). A folder written by the first layout (single
`<table>.parquet` files and `source.json`, no manifest) still reads.

`DatasetWriter` builds a folder atomically: everything goes into a temporary sibling folder, pass-through tables
are hard-linked from their source, and `commit()` swaps it in, so a crash never leaves half a dataset. One writer
at a time per folder (a lock beside it); a second one fails at once instead of silently mixing their work.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pathlib
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import io, schemas, shards
from emopipe.shards import Layout, Shard

log = logging.getLogger(__name__)

MANIFEST = "dataset.json"
LAYOUT_VERSION = 2
# Per-clip tables stored as shards, and how. Features rows are large (frames, crops, audio): small shards, small
# row groups; the others are metadata.
SHARDED: dict[str, Layout] = {
    "clips": Layout(keys=("clip_id",), max_rows=4096, row_group=1024),
    "features": Layout(keys=("clip_id",), max_rows=128, row_group=16),
    "labels": Layout(keys=("clip_id", "labeler"), max_rows=8192, row_group=1024),
    "estimates": Layout(keys=("clip_id", "estimator"), max_rows=8192, row_group=1024),
    "lineage": Layout(keys=("clip_id",), max_rows=8192, row_group=2048),
}
SCHEMA_OF = {"lineage": "row_lineage"}  # table name in a dataset -> schema file, where they differ
# The tables whose rows make the dataset's content hash (quarantine without its run ids).
DIGEST_TABLES = ("clips", "quarantine", "extraction", "splits", "labels", "agreement", "fused_labels", "estimates")
# Columns that measure a run rather than describe the data (labels.seconds: wall-clock time): not in the digest.
MEASURED = {"labels": ("seconds",)}


class DatasetError(ValueError):
    """A folder is not a dataset, or lacks a table that was asked for."""


class DatasetBusy(RuntimeError):
    """Another process is writing the same dataset folder."""


def schema_of(name: str) -> pa.Schema:
    """The declared schema of a dataset table."""
    return schemas.load_schema(SCHEMA_OF.get(name, name))


def rows_digest(table: pa.Table) -> str:
    """Content hash of a table's rows: independent of row order, of chunking and of how the rows are sharded."""
    h = hashlib.sha256(str(table.schema.remove_metadata()).encode())
    for row_hash in sorted(shards.row_hashes(table)):
        h.update(row_hash.encode())
    return h.hexdigest()


class Dataset:
    """One dataset folder, read lazily: each table is read from disk at most once per object.

    Args:
        path: the folder (a stage's output, or `<checkout>/dataset` of a published version).
    """

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.reads: Counter[str] = Counter()
        self._raw: dict[str, pa.Table] = {}
        self._conformed: dict[str, pa.Table] = {}
        self._manifest: dict[str, Any] | None = None
        self._digest: str | None = None

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r})"

    @classmethod
    def open(cls, path: str | pathlib.Path) -> Dataset:
        """A Dataset of an existing folder; DatasetError naming the folder when it is not one."""
        ds = cls(path)
        if not ds.path.is_dir():
            raise DatasetError(f"{ds.path}: no such dataset folder")
        if not (ds.path / MANIFEST).is_file() and not (ds.path / "clips.parquet").is_file():
            raise DatasetError(f"{ds.path}: not a dataset folder (no {MANIFEST} or clips.parquet)")
        return ds

    @classmethod
    def find(cls, path: str | pathlib.Path, table: str) -> Dataset | None:
        """The dataset at `path` (or the folder of `path` when it names a first-layout `<table>.parquet`) when it
        holds `table`; None when there is none (nothing to reuse)."""
        path = pathlib.Path(path)
        if path.is_file() and path.name == f"{table}.parquet":
            path = path.parent
        try:
            ds = cls.open(path)
        except DatasetError:
            return None
        return ds if ds.has(table) else None

    def carry(self, name: str, keep: Any, columns: list[str]) -> shards.Carry:
        """Plan what of this dataset's sharded table `name` a new one reuses (emopipe.shards.plan_carry): `keep`
        marks the rows still wanted, reading only `columns`. A first-layout single file is never kept whole."""
        schema, layout = schema_of(name), SHARDED[name]
        if self.layout < LAYOUT_VERSION:
            entry = self.table_entry(name)
            return shards.plan_carry(
                self.path, [Shard(entry["file"], entry["rows"])], schema=schema, layout=layout, keep=keep,
                columns=columns, whole=False,
            )  # fmt: skip
        return shards.plan_carry(
            self.table_dir(name), self.shards(name) or [], schema=schema, layout=layout, keep=keep, columns=columns
        )

    # ------------------------------------------------------------------------------------------- manifest

    @property
    def manifest(self) -> dict[str, Any]:
        """dataset.json, or for a folder of the first layout the same facts derived from its files."""
        if self._manifest is None:
            path = self.path / MANIFEST
            if path.is_file():
                self._manifest = io.read_json(path)
            else:
                self._manifest = self._legacy_manifest()
        return self._manifest

    def _legacy_manifest(self) -> dict[str, Any]:
        source = self.path / "source.json"
        corpora = io.read_json(source).get("corpora", {}) if source.is_file() else {}
        if not corpora and source.is_file() and "corpus" in io.read_json(source):  # the single-corpus form
            corpora = {io.read_json(source)["corpus"]: io.read_json(source).get("root", "")}
        tables = {}
        for path in sorted(self.path.glob("*.parquet")) if self.path.is_dir() else []:
            tables[path.stem] = {"file": path.name, "rows": pq.ParquetFile(path).metadata.num_rows}
        return {"layout": 1, "corpora": corpora, "synthetic": {}, "stages": {}, "tables": tables}

    @property
    def layout(self) -> int:
        return int(self.manifest.get("layout", 1))

    @property
    def corpora(self) -> dict[str, pathlib.Path]:
        """Corpus name -> the root its clips' media_path is relative to."""
        return {c: pathlib.Path(r) for c, r in self.manifest.get("corpora", {}).items()}

    @property
    def synthetic(self) -> dict[str, str]:
        """Corpus name -> what generated it, for corpora that are not real recordings."""
        return dict(self.manifest.get("synthetic") or {})

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        """Stage name -> what that stage recorded (its version, ...), for the stages that produced this folder."""
        return dict(self.manifest.get("stages") or {})

    def has(self, name: str) -> bool:
        return name in self.manifest.get("tables", {})

    def table_entry(self, name: str) -> dict[str, Any]:
        try:
            return self.manifest["tables"][name]
        except KeyError as err:
            raise DatasetError(f"{self.path}: no table {name!r} (run the stage that writes it first)") from err

    def shards(self, name: str) -> list[Shard] | None:
        """The shards of a sharded table (None for a single-file table)."""
        entry = self.table_entry(name)
        if "shards" not in entry:
            return None
        return [Shard(n, int(r)) for n, r in entry["shards"]]

    def table_dir(self, name: str) -> pathlib.Path:
        return self.path / name

    def files(self, name: str) -> list[pathlib.Path]:
        """The files that hold a table."""
        entry = self.table_entry(name)
        if "shards" in entry:
            return [self.table_dir(name) / n for n, _ in entry["shards"]]
        return [self.path / entry["file"]]

    def rows(self, name: str) -> int:
        return int(self.table_entry(name)["rows"])

    # ------------------------------------------------------------------------------------------- tables

    def raw(self, name: str) -> pa.Table:
        """A table as stored (types as on disk; the gate checks them against the schema itself). Read once."""
        if name not in self._raw:
            files = self.files(name)
            self.reads[name] += 1
            if not files:
                self._raw[name] = schema_of(name).empty_table()
            else:
                parts = [pq.read_table(f) for f in files]
                self._raw[name] = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        return self._raw[name]

    def table(self, name: str) -> pa.Table:
        """A table conformed to its declared schema (SchemaError if it does not match). Read once."""
        if name not in self._conformed:
            self._conformed[name] = schemas.conform(self.raw(name), schema_of(name))
        return self._conformed[name]

    def maybe(self, name: str) -> pa.Table | None:
        """The table, or None when this dataset has none."""
        return self.table(name) if self.has(name) else None

    def iter_batches(self, name: str, columns: list[str] | None = None, batch_rows: int = 64) -> Iterator[pa.Table]:
        """Stream a large table (features) in batches of rows, only the columns asked for; not cached."""
        self.reads[f"{name}:stream"] += 1
        for path in self.files(name):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
                yield pa.Table.from_batches([batch])

    def column_table(self, name: str, columns: list[str]) -> pa.Table:
        """Only some columns of a table, read from every file (for the light columns of a heavy table)."""
        key = f"{name}[{','.join(columns)}]"
        if key not in self._raw:
            self.reads[key] += 1
            parts = [pq.read_table(p, columns=columns) for p in self.files(name)]
            self._raw[key] = pa.concat_tables(parts) if parts else schema_of(name).empty_table().select(columns)
        return self._raw[key]

    @property
    def clips(self) -> pa.Table:
        return self.table("clips")

    @property
    def quarantine(self) -> pa.Table:
        return self.table("quarantine")

    @property
    def labels(self) -> pa.Table | None:
        return self.maybe("labels")

    @property
    def agreement(self) -> pa.Table | None:
        return self.maybe("agreement")

    @property
    def fused_labels(self) -> pa.Table | None:
        return self.maybe("fused_labels")

    @property
    def splits(self) -> pa.Table | None:
        return self.maybe("splits")

    @property
    def extraction(self) -> pa.Table | None:
        """One light row per features row (what the gate checks about extraction); None without features."""
        if self.has("extraction"):
            return self.table("extraction")
        if not self.has("features"):
            return None
        if "extraction" not in self._conformed:  # first layout: derive it from the features file once
            from emopipe.stages.extract import extraction_rows

            parts = [extraction_rows(b) for b in self.iter_batches("features", columns=list(EXTRACTION_SOURCE))]
            schema = schema_of("extraction")
            self._conformed["extraction"] = (
                schemas.conform(pa.concat_tables(parts), schema) if parts else (schema.empty_table())
            )
        return self._conformed["extraction"]

    def label_tables(self) -> dict[str, pa.Table]:
        """The labelling tables present: labels, agreement, fused_labels."""
        return {t: self.table(t) for t in ("labels", "agreement", "fused_labels") if self.has(t)}

    # ------------------------------------------------------------------------------------------- facts

    @property
    def digest(self) -> str:
        """Content hash of the dataset, independent of the run that made it and of how its tables are sharded.

        Features enter through the extraction table: which clips have rows, from which extractor version, with
        which errors; given the clips' sha256 and the extractor version the features rows are fixed.
        """
        if self._digest is None:
            h = hashlib.sha256(b"emopipe-dataset-2")
            for name in DIGEST_TABLES:
                if name == "extraction":
                    table = self.extraction
                elif self.has(name):
                    table = self.table(name)
                else:
                    continue
                if table is None:
                    continue
                if name == "quarantine":
                    table = table.drop_columns(["run_id"])
                if measured := [c for c in MEASURED.get(name, ()) if c in table.column_names]:
                    table = table.drop_columns(measured)  # wall-clock figures differ on every run
                h.update(name.encode() + b"\0" + rows_digest(table).encode())
            self._digest = h.hexdigest()
        return self._digest

    @property
    def files_fingerprint(self) -> str:
        """A hash of which files hold the tables, with their sizes and modification times (a stat each, no reads).

        Equal fingerprints mean the very same files, untouched: a folder whose tables are hard links to another's
        has its fingerprint; a file rewritten, replaced or copied changes it. Publishing uses it to trust the
        content digest the gate computed instead of reading every row again (`versioning.publish`).
        """
        h = hashlib.sha256(b"emopipe-files-1")
        for name in sorted(self.manifest.get("tables", {})):
            for path in self.files(name):
                st = path.stat()
                h.update(f"{name}\0{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        return h.hexdigest()

    @property
    def gate(self) -> Any:
        """The gate's result stored with this dataset (quality.result.GateResult), or None when never validated."""
        from emopipe.quality.result import GateResult

        path = self.path / "validation.json"
        return GateResult.from_dict(io.read_json(path)) if path.is_file() else None

    @property
    def lineage(self) -> dict[str, Any] | None:
        """lineage.json of a published version (beside the dataset folder in a data-repo checkout, or inside it)."""
        for path in (self.path / "lineage.json", self.path.parent / "lineage.json"):
            if path.is_file():
                data = io.read_json(path)
                return data if isinstance(data, dict) else None
        return None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


EXTRACTION_SOURCE = (
    "clip_id", "corpus", "extractor_version", "frame_indices", "face_share", "log_mel", "egemaps", "audio_reason",
    "error",
)  # fmt: skip


class DatasetWriter:
    """Write a dataset folder atomically (a temporary sibling folder swapped in by `commit`).

    Args:
        path: the folder to (re)write.
        corpora: corpus name -> root.
        synthetic: corpus name -> description, for generated corpora.
        stages: what the stages that produced this folder recorded (stage name -> facts, e.g. its version).
    """

    def __init__(
        self,
        path: str | pathlib.Path,
        *,
        corpora: dict[str, Any],
        synthetic: dict[str, str] | None = None,
        stages: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.path = pathlib.Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise DatasetError(f"{self.path} is a file, not a dataset folder: give a folder to write into")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.path)
        self.tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            self.tmp.mkdir()
        except OSError:
            self._release()
            raise
        self.tables: dict[str, dict[str, Any]] = {}
        self.manifest: dict[str, Any] = {
            "layout": LAYOUT_VERSION,
            "corpora": {c: str(r) for c, r in corpora.items()},
            "synthetic": dict(synthetic or {}),
            "stages": dict(stages or {}),
        }
        self._done = False

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if not self._done:
            self.abort()

    # ------------------------------------------------------------------------------------------- tables

    def write_table(self, name: str, table: pa.Table, previous: Dataset | None = None) -> None:
        """Write a whole table: as shards when its layout says so, else as `<name>.parquet`.

        With `previous` (an earlier dataset of the same stage), every shard of its table whose rows all appear,
        unchanged, in `table` is kept as it is; only the other rows are written into new shards.
        """
        schema = schema_of(name)
        if name in SHARDED:
            layout = SHARDED[name]
            table = shards.sort_rows(schemas.conform(table, schema), layout)
            kept: list[Shard] = []
            if previous is not None and previous.has(name) and previous.layout >= LAYOUT_VERSION:
                hashes = shards.row_hashes(table)
                wanted, covered = set(hashes), set()
                for shard in previous.shards(name) or []:
                    old = shards.row_hashes(shards.read_shard(previous.table_dir(name), shard, schema))
                    if set(old) <= wanted:
                        kept.append(shard)
                        covered.update(old)
                small = [s for s in kept if s.rows < layout.max_rows / 4]
                if len(small) > layout.small_shards:
                    kept = [s for s in kept if s not in small]
                    covered = set()
                    for shard in kept:
                        covered.update(shards.row_hashes(shards.read_shard(previous.table_dir(name), shard, schema)))
                table = table.filter(pa.array([h not in covered for h in hashes], pa.bool_()))
            written = shards.write_table(table, self.tmp / name, schema, layout)
            self.add_shards(name, written, kept_from=previous, kept=kept)
        else:
            io.write_table(table, self.tmp / f"{name}.parquet", schema)
            self.tables[name] = {"file": f"{name}.parquet", "rows": table.num_rows, **_version(schema)}

    def shard_writer(self, name: str) -> shards.ShardWriter:
        """A writer for streaming new rows (in key order) into a sharded table; hand it back to `add_shards`."""
        return shards.ShardWriter(self.tmp / name, schema_of(name), SHARDED[name])

    def add_shards(self, name: str, written: list[Shard], kept_from: Dataset | None = None, kept: list[Shard] = ()):
        """Record a sharded table made of newly written shards plus shards kept from an earlier dataset."""
        if kept:
            assert kept_from is not None  # noqa: S101 - kept shards always come from a dataset
            shards.link(kept_from.table_dir(name), self.tmp / name, list(kept))
        self._shards(name, [*kept, *written], schema_of(name))

    def _shards(self, name: str, parts: list[Shard], schema: pa.Schema) -> None:
        (self.tmp / name).mkdir(exist_ok=True)
        unique = {s.name: s for s in parts}  # two writes of the same rows give one file
        self.tables[name] = {
            "shards": [[s.name, s.rows] for s in sorted(unique.values(), key=lambda s: s.name)],
            "rows": sum(s.rows for s in unique.values()),
            **_version(schema),
        }

    def pass_through(self, source: Dataset, names: list[str] | None = None) -> None:
        """Carry tables of `source` into this folder unchanged (hard links: no bytes copied)."""
        for name in names if names is not None else list(source.manifest.get("tables", {})):
            if name in self.tables or not source.has(name):
                continue
            entry = dict(source.table_entry(name))
            if "shards" in entry:
                shards.link(source.table_dir(name), self.tmp / name, source.shards(name) or [])
            elif source.layout == 1 and name in SHARDED:  # first layout: re-store it as shards once
                self.write_table(name, source.table(name))
                continue
            else:
                io.link_or_copy(source.path / entry["file"], self.tmp / entry["file"])
            self.tables[name] = entry

    def write_json(self, relpath: str, data: Any) -> None:
        io.write_json(self.tmp / relpath, data)

    def copy_tree(self, relpath: str, src: pathlib.Path) -> None:
        """Copy a folder of files (reports) into the dataset."""
        if pathlib.Path(src).is_dir():
            shutil.copytree(src, self.tmp / relpath, dirs_exist_ok=True)

    def record_stage(self, stage: str, facts: dict[str, Any]) -> None:
        self.manifest["stages"][stage] = facts

    # ------------------------------------------------------------------------------------------- finish

    def commit(self) -> Dataset:
        """Write the manifest and swap the folder in; return the new Dataset."""
        self.manifest["tables"] = dict(sorted(self.tables.items()))
        io.write_json(self.tmp / MANIFEST, self.manifest)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.{os.getpid()}.old"
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._done = True
        self._release()
        return Dataset(self.path)

    def abort(self) -> None:
        """Remove what was written; the folder keeps its previous content."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._done = True
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            _unlock(self._lock)
            self._lock = None


def _version(schema: pa.Schema) -> dict[str, str]:
    meta = schema.metadata or {}
    return {"schema_version": meta.get(b"version", b"?").decode()}


_HELD: dict[str, list[Any]] = {}  # folder -> [lock file, holders in this process]


def _lock(path: pathlib.Path) -> str:
    """An exclusive lock on writing the folder `path` (a file beside it), re-entrant within this process; raises
    DatasetBusy when another process holds it. Returns the key to give `_unlock`."""
    key = str(pathlib.Path(path).resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    lock_path = path.parent / f".{path.name}.lock"
    fh = lock_path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise DatasetBusy(f"{path} is being written by {holder}; wait for it to finish or use another folder") from err
    fh.seek(0)
    fh.truncate()
    fh.write(f"emopipe pid {os.getpid()}")
    fh.flush()
    _HELD[key] = [fh, 1]
    return key


def _unlock(key: str) -> None:
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[key]
        with contextlib.suppress(OSError):
            fcntl.flock(held[0], fcntl.LOCK_UN)
            held[0].close()


@contextlib.contextmanager
def claim(path: str | pathlib.Path) -> Iterator[None]:
    """Hold the write lock of a dataset folder for a whole command (its scan and its write): a second emopipe
    process writing the same folder meanwhile fails at once with DatasetBusy instead of mixing their work."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _lock(path)
    try:
        yield
    finally:
        _unlock(key)
