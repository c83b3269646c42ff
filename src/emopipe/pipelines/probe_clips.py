"""probe_clips: probe every new or changed clip's media (the probe stage on an executor); unreadable media moves to
the quarantine. A clip whose media path, size and sha256 match a row of the previous probe (same probe version) is
carried over without opening the file again."""

from __future__ import annotations

import logging
import pathlib
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from emopipe import executor, schemas, splits
from emopipe.config import Params
from emopipe.dataset import Dataset, DatasetWriter
from emopipe.stages.base import StageSummary, Timer
from emopipe.stages.probe import PROBE_COLUMNS, ProbeStage

log = logging.getLogger(__name__)

SUMMARY_FILE = "probe.json"
MEDIA_KEY = ("clip_id", "media_path", "sha256", "size_bytes")


def settings(params: Params, run_id: str) -> executor.Settings:
    cfg = params.probe_clips
    return executor.Settings(
        run_dir=params.run_dir(run_id),
        address=cfg.ray_address,
        num_workers=cfg.num_workers,
        num_cpus=cfg.num_cpus,
        mode=params.ray.executor,
        local_below=params.ray.local_below_rows,
        idle_s=params.ray.local_idle_s,
    )


def split(probed: pa.Table, run_id: str) -> tuple[pa.Table, pa.Table]:
    """Healthy rows stay clips; rows whose probe failed become quarantine rows with their reason and detail."""
    bad = pc.is_valid(probed["error"])
    clips = probed.filter(pc.invert(bad)).drop_columns(["error_detail"])
    failed = probed.filter(bad)
    quarantine = pa.table(
        {
            "path": failed["media_path"],
            "corpus": failed["corpus"],
            "stage": pa.array(["probe_clips"] * failed.num_rows, pa.string()),
            "reason": failed["error"],
            "detail": pc.fill_null(failed["error_detail"], ""),
            "run_id": pa.array([run_id] * failed.num_rows, pa.string()),
        }
    )
    return schemas.conform(clips, schemas.CLIPS), schemas.conform(quarantine, schemas.QUARANTINE)


def carried(clips: pa.Table, previous: Dataset | None, version: str) -> pa.Table:
    """The clips whose previous probe can be reused, with its probe columns; empty when there is nothing to reuse."""
    empty = clips.slice(0, 0)
    if previous is None or not previous.has("clips"):
        return empty
    if previous.stages.get("probe_clips", {}).get("version") != version:
        return empty
    old = previous.clips.select([*MEDIA_KEY, *PROBE_COLUMNS])
    before = {
        key: i for i, key in enumerate(zip(*(old[k].to_pylist() for k in MEDIA_KEY), strict=True))
    }  # fmt: skip
    now = list(zip(*(clips[k].to_pylist() for k in MEDIA_KEY), strict=True))
    take_new = [i for i, key in enumerate(now) if key in before]
    take_old = [before[now[i]] for i in take_new]
    rows = clips.take(pa.array(take_new, pa.int64()))
    probed = old.take(pa.array(take_old, pa.int64()))
    for column in PROBE_COLUMNS:
        rows = rows.set_column(rows.schema.get_field_index(column), column, probed[column])
    return rows


def previous_dataset(out_dir: pathlib.Path, previous: pathlib.Path | None) -> Dataset | None:
    """The dataset whose probe rows may be reused: `previous` if given, else what out_dir holds."""
    path = pathlib.Path(previous) if previous else pathlib.Path(out_dir)
    return Dataset(path) if (path / "dataset.json").is_file() else None


def todo_count(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, previous: pathlib.Path | None) -> int:
    """How many clips the stage would probe (0: nothing to compute)."""
    clips = Dataset.open(in_dir).clips
    version = ProbeStage({}, params.probe_clips.batch_size).version
    return clips.num_rows - carried(clips, previous_dataset(out_dir, previous), version).num_rows


def run(
    params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, run_id: str, previous: pathlib.Path | None = None
) -> StageSummary:
    """Probe the clips of an ingested dataset folder; write the probed clips and the grown quarantine to out_dir.

    Args:
        params: the run's configuration.
        in_dir: an ingest output folder.
        out_dir: the probe output folder; an earlier probe there is reused unless `previous` names another.
        run_id: the run.
        previous: an earlier probe output folder whose rows are reused.
    """
    timer = Timer()
    src = Dataset.open(in_dir)
    stage = ProbeStage(src.corpora, params.probe_clips.batch_size)
    prev = previous_dataset(out_dir, previous)
    clips = src.clips.sort_by("clip_id")
    reused = carried(clips, prev, stage.version)
    done = set(reused["clip_id"].to_pylist())
    todo = clips.filter(pc.invert(pc.is_in(clips["clip_id"], pa.array(sorted(done), pa.string()))))
    summary = StageSummary(stage=stage.name, version=stage.version, n_reused=reused.num_rows)
    with executor.executing(stage, todo, settings(params, run_id)) as (batches, ex):
        probed = list(batches)  # metadata only: a few hundred bytes a clip
        summary.executor, summary.workers = (ex.kind, ex.workers) if todo.num_rows else ("none", 0)
    probed_table = pa.concat_tables(probed) if probed else schemas.from_rows([], stage.output_schema)
    if probed_table.num_rows != todo.num_rows:
        raise RuntimeError(f"probe returned {probed_table.num_rows} rows for {todo.num_rows} clips")
    healthy, failed = split(probed_table, run_id)
    out_clips = pa.concat_tables([schemas.conform(reused, schemas.CLIPS), healthy]).sort_by("clip_id")
    quarantine = pa.concat_tables([src.quarantine, failed])
    stages = {**src.stages, "probe_clips": {"version": stage.version}}
    with DatasetWriter(out_dir, corpora=src.corpora, synthetic=src.synthetic, stages=stages) as writer:
        writer.write_table("clips", out_clips, previous=prev)
        writer.write_table("quarantine", quarantine.sort_by([("path", "ascending"), ("stage", "ascending")]))
        if src.has("splits"):  # a quarantined clip leaves its folds
            writer.write_table("splits", splits.follow(src.splits, out_clips))
        kept = {"clips", "quarantine", "splits"}
        writer.pass_through(src, [n for n in src.manifest.get("tables", {}) if n not in kept])
        summary.n_processed = todo.num_rows
        summary.n_rows = out_clips.num_rows
        summary.n_errors = failed.num_rows
        summary.errors = dict(sorted(Counter(failed["reason"].to_pylist()).items()))
        summary.seconds = timer.seconds
        writer.write_json(SUMMARY_FILE, summary.to_dict())
        writer.commit()
    log.info("%s", summary.line())
    return summary
