"""Exports of a published version in the formats trainers read: Hugging Face `datasets`, WebDataset, R1-Omni JSON.

`export(ds, options)` takes a `Dataset` (a checked-out tag, `versioning.checkout`) and writes one export folder:

- `hf`: Parquet files per split (`data/train-*.parquet`, `data/test-*.parquet`) with Hugging Face features in
  their schema (the label a ClassLabel, 16 kHz audio, frames and face crops as image sequences, the clip as a
  Video), and a README whose `configs` name them: `datasets.load_dataset(DIR)` gives the fold's train and test.
- `webdataset`: tar shards per split of about `shard_size_mb` (per clip `.json` metadata and labels, `.wav`
  16 kHz audio, `.npy` log-mel, the sampled frames and face crops as JPEG, the media with `copy_media`), and
  `index.json`, the shard index.
- `r1omni`: the JSON files R1-Omni's and HumanOmni's code read (RLVR train, cold-start SFT, evaluation with
  `clip_meta_path`), in R1-Omni's label words.

Exports stream the features table batch by batch (bounded memory), show a progress bar, and resume where an
interrupted run stopped (emopipe.exports.staging); `export.json` is written last and marks a complete export.
A subject on the forget register is never exported, whatever the version holds. A missing or changed media file
is a row of `export_report.json`, never a silent drop. A user's mistake (unknown format, protocol or fold, a
media root that is missing or holds other bytes) raises ExportError with a one-line reason before anything is
written.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from emopipe.dataset import Dataset

log = logging.getLogger(__name__)

FORMATS = ("hf", "webdataset", "r1omni")
REPORT = "export_report.json"


class ExportError(ValueError):
    """A user's mistake in an export request: one line saying what is wrong."""


@dataclass(frozen=True)
class Options:
    """What to export and how.

    Args:
        format: hf, webdataset or r1omni.
        out: the export folder (created; an interrupted export there is resumed).
        protocol: the splits protocol; None: each corpus's preferred one.
        fold: the fold of the protocol.
        media_roots: corpus -> where its media is mounted here, when not at the root the version recorded.
        copy_media: put the media into the export (hf: in the Parquet files, webdataset: in the shards, r1omni:
            under media/), else refer to it by path.
        shard_size_mb: the size at which a Parquet file or tar shard is closed.
        drop_near_duplicates: leave out train clips equal to a test clip of another corpus in the fold.
        include_unlabelled: keep clips without a training label (null label).
        progress: show a progress bar.
    """

    format: str
    out: pathlib.Path
    protocol: str | None = None
    fold: int = 1
    media_roots: dict[str, pathlib.Path] = field(default_factory=dict)
    copy_media: bool = False
    shard_size_mb: float = 256.0
    drop_near_duplicates: bool = True
    include_unlabelled: bool = False
    progress: bool = True

    @classmethod
    def from_params(cls, params: Any, fmt: str, out: pathlib.Path, **changes: Any) -> Options:
        """The options of params.yaml's `export:` section, for one format and folder, with `changes` applied."""
        cfg = params.export
        base = {
            "protocol": cfg.protocol, "fold": cfg.fold, "media_roots": dict(cfg.media_roots),
            "copy_media": cfg.copy_media, "shard_size_mb": cfg.shard_size_mb,
            "drop_near_duplicates": cfg.drop_near_duplicates,
        }  # fmt: skip
        base.update({k: v for k, v in changes.items() if v is not None})
        return cls(format=fmt, out=pathlib.Path(out), **base)


@dataclass
class Result:
    """What an export wrote."""

    out: pathlib.Path
    manifest: dict[str, Any]
    resumed: bool = False
    already_complete: bool = False

    def line(self) -> str:
        m = self.manifest
        parts = ", ".join(f"{s} {m['counts'][s]['clips']}" for s in m["counts"])
        left = ", ".join(f"{k} {v}" for k, v in sorted(m["left_out"].items())) or "none"
        state = " (already complete)" if self.already_complete else " (resumed)" if self.resumed else ""
        protocols = ", ".join(sorted(set(m["protocols"].values())))
        return (
            f"{m['format']} export of {m['version']} fold {m['fold']} ({protocols}) -> {self.out}{state}: "
            f"{parts} clips; left out: {left}; reported rows: {m['reported_rows']}"
        )


def export(
    ds: Dataset,
    options: Options,
    *,
    version: str,
    forgotten: dict[str, dict[str, Any]] | None = None,
    subject_folds: int = 5,
    seed: int = 0,
) -> Result:
    """Write one export of a version (see the module docstring).

    Args:
        ds: the version's dataset folder.
        options: what to export.
        version: the version's tag (recorded in the export).
        forgotten: the forget register (subject hash -> entry): these subjects' clips are left out.
        subject_folds: k for splits computed at export, for versions published before splits existed.
        seed: their seed.

    Raises:
        ExportError: unknown format, protocol or fold; a media root missing or holding other bytes; an export
            folder holding something else.
    """
    from emopipe import splits as protocols
    from emopipe.exports import media, plan, staging

    started = time.monotonic()
    if options.format not in FORMATS:
        raise ExportError(f"unknown format {options.format!r}; choose one of {', '.join(FORMATS)}")
    try:
        todo = plan.build(
            ds, protocol=options.protocol, fold=options.fold, forgotten=forgotten or {},
            drop_near_duplicates=options.drop_near_duplicates, include_unlabelled=options.include_unlabelled,
            subject_folds=subject_folds, seed=seed,
        )  # fmt: skip
        items = todo.all_items()
        if not items:
            raise protocols.SplitError(
                f"fold {options.fold} of {', '.join(sorted(set(todo.protocols.values())))} holds no clip to export "
                f"(left out: {', '.join(f'{k} {v}' for k, v in sorted(todo.left_out.items())) or 'none'})"
            )
        where = media.roots(ds.corpora, options.media_roots, {i.clip.corpus for i in items})
        media.check_roots([i.clip for i in items], where)
    except (protocols.SplitError, media.MediaError) as err:
        raise ExportError(str(err)) from None
    for item in items:
        item.media_problem = media.problem(item.clip, where[item.clip.corpus])
    key = {
        "version": version, "dataset_digest": ds.digest, "format": options.format, "protocol": todo.protocols,
        "fold": options.fold, "plan_sha256": todo.digest(), "copy_media": options.copy_media,
        "shard_size_mb": options.shard_size_mb, "media_roots": {c: str(r) for c, r in sorted(where.items())},
    }  # fmt: skip
    stage = staging.Staging(options.out, key)
    try:
        if (done := stage.complete()) is not None:
            return Result(options.out, done, already_complete=True)
        resumed = stage.open()
    except staging.StagingError as err:
        raise ExportError(str(err)) from None
    writer = _writer(options.format)(todo, options, stage, where, ds)
    _stream(ds, todo, writer, stage, options)
    writer.finish_problems()  # media problems found by this run and by the runs it resumes
    for item in items:
        if item.media_problem:
            todo.report(
                item, item.media_problem, str(where[item.clip.corpus] / item.clip.media_path), writer.on_missing
            )
    extra_manifest, extra_files = writer.close()
    manifest = {
        "format": options.format,
        "version": version,
        "dataset_digest": ds.digest,
        "protocols": todo.protocols,
        "fold": todo.fold,
        "splits_source": todo.splits_source,
        "classes": todo.classes,
        "counts": plan.counts(todo),
        "left_out": dict(sorted(todo.left_out.items())),
        "reported_rows": len(todo.rows),
        "synthetic": ds.synthetic,
        "options": {
            "copy_media": options.copy_media,
            "shard_size_mb": options.shard_size_mb,
            "drop_near_duplicates": options.drop_near_duplicates,
            "include_unlabelled": options.include_unlabelled,
        },  # fmt: skip
        "media_roots": {c: str(r) for c, r in sorted(where.items())},
        "seconds": round(time.monotonic() - started, 3),
        **extra_manifest,
    }
    extra_files[REPORT] = {"rows": todo.rows, "left_out": manifest["left_out"]}
    manifest = stage.finish(manifest, extra_files)
    result = Result(options.out, manifest, resumed=resumed)
    log.info("%s", result.line())
    return result


def open_version(params: Any, tag: str, checkout: pathlib.Path | None = None) -> tuple[Dataset, str]:
    """The dataset of a published version and its tag: `tag` checked out (git clone + dvc pull) into `checkout`
    (default `<work_dir>/checkouts/<tag>`, reused while it holds that version whole), or `tag` a dataset folder.

    Raises:
        ValueError: no such version; DatasetError: a folder that is not a dataset.
    """
    import shutil

    from emopipe import versioning
    from emopipe.dataset import DatasetError

    folder = pathlib.Path(tag)
    if folder.is_dir():  # an already checked-out version (or any validated dataset folder)
        inner = folder / "dataset" if (folder / "dataset" / "dataset.json").is_file() else folder
        ds = Dataset.open(inner)
        lineage = ds.lineage or {}
        return ds, str(lineage.get("version") or folder.name)
    repo = pathlib.Path(params.publish.data_repo)
    if tag not in versioning.versions(repo, params.publish.tag_prefix):
        known = ", ".join(versioning.versions(repo, params.publish.tag_prefix)) or "none"
        raise ValueError(f"no published version {tag!r} in {repo} (versions: {known})")
    dest = pathlib.Path(checkout) if checkout else params.work_dir / "checkouts" / tag
    digest = versioning.lineage(repo, tag).get("dataset_digest")
    if (dest / "dataset" / "dataset.json").is_file():
        try:
            ds = Dataset.open(dest / "dataset")
            if ds.digest == digest:
                return ds, tag
        except (DatasetError, OSError, ValueError):
            pass
        log.warning("%s does not hold %s whole: checking it out again", dest, tag)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    versioning.checkout(params, tag, dest)
    return Dataset.open(dest / "dataset"), tag


def parse_roots(values: list[str] | None) -> dict[str, pathlib.Path]:
    """`CORPUS=PATH` arguments -> {corpus: path}."""
    out = {}
    for value in values or []:
        corpus, sep, path = value.partition("=")
        if not sep or not corpus or not path:
            raise ExportError(f"--media-root {value!r}: expected CORPUS=PATH (e.g. dfew=/mnt/DFEW)")
        out[corpus.strip()] = pathlib.Path(path).expanduser()
    return out


def _writer(fmt: str) -> Any:
    if fmt == "hf":
        from emopipe.exports.hf import HfWriter

        return HfWriter
    if fmt == "webdataset":
        from emopipe.exports.webdataset import WebDatasetWriter

        return WebDatasetWriter
    from emopipe.exports.r1omni import R1OmniWriter

    return R1OmniWriter


def _stream(ds: Dataset, todo: Any, writer: Any, stage: Any, options: Options) -> None:
    """Hand every item to the writer with its features row, in a fixed order, skipping those already exported."""
    from tqdm import tqdm

    order = _features_order(ds)
    last = len(order)
    for split in todo.items:
        todo.items[split].sort(key=lambda i: (order.get(i.clip.clip_id, last), i.clip.clip_id))
    position = {s: {i.clip.clip_id: n for n, i in enumerate(items)} for s, items in todo.items.items()}
    by_id = {i.clip.clip_id: i for i in todo.all_items()}
    skip = {s: stage.done(s) for s in todo.items}
    total = sum(len(v) for v in todo.items.values())
    bar = tqdm(total=total, initial=sum(skip.values()), unit="clip", desc=f"export {options.format}",
               disable=not options.progress)  # fmt: skip

    def wanted(cid: str) -> bool:
        item = by_id.get(cid)
        return item is not None and position[item.split][cid] >= skip[item.split]

    seen: set[str] = set()
    try:
        if ds.has("features") and writer.columns:
            from emopipe.exports.base import rows

            for batch in _batches(ds, list(writer.columns), wanted):
                for row in rows(batch):
                    cid = row["clip_id"]
                    if cid in seen or not wanted(cid):
                        continue
                    seen.add(cid)
                    writer.add(by_id[cid], row)
                    bar.update(1)
        for split, items in todo.items.items():
            for item in items[skip[split] :]:
                if item.clip.clip_id not in seen:
                    writer.add(item, None)
                    bar.update(1)
    finally:
        bar.close()


def _features_order(ds: Dataset) -> dict[str, int]:
    """clip_id -> its position in the features table as stored (the order exports stream it in)."""
    if not ds.has("features"):
        return {}
    ids = ds.column_table("features", ["clip_id"])["clip_id"].to_pylist()
    return {cid: n for n, cid in reversed(list(enumerate(ids)))}


def _batches(ds: Dataset, columns: list[str], wanted: Any) -> Iterator[pa.Table]:
    """The features rows of wanted clips, a few at a time; files with no wanted clip are not read beyond clip_id."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in ds.files("features"):
        ids = pq.read_table(path, columns=["clip_id"])["clip_id"].to_pylist()
        if not any(wanted(c) for c in ids):
            continue
        for batch in pq.ParquetFile(path).iter_batches(batch_size=16, columns=columns):
            table = pa.Table.from_batches([batch])
            mask = pa.array([wanted(c) for c in table["clip_id"].to_pylist()], pa.bool_())
            if pc.any(mask).as_py():
                yield table.filter(mask)
