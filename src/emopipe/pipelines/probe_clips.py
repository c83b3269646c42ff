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
from emopipe.stages.probe import PROBE_COLUMNS, ProbeLimits, ProbeStage

log = logging.getLogger(__name__)

SUMMARY_FILE = "probe.json"
MEDIA_KEY = ("clip_id", "media_path", "sha256", "size_bytes")


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
            "sha256": failed["sha256"],
        }
    )
    return schemas.conform(clips, schemas.CLIPS), schemas.conform(quarantine, schemas.QUARANTINE)


def carried_failures(clips: pa.Table, previous: Dataset | None, version: str) -> pa.Table:
    """Probe quarantine rows of the previous run for files that are still there with the same bytes."""
    empty = schemas.QUARANTINE.empty_table()
    if previous is None or previous.stages.get("probe_clips", {}).get("version") != version:
        return empty
    old = previous.quarantine
    now = set(
        zip(clips["corpus"].to_pylist(), clips["media_path"].to_pylist(), clips["sha256"].to_pylist(), strict=True)
    )
    keep = [
        r["stage"] == "probe_clips" and (r["corpus"], r["path"], r["sha256"]) in now
        for r in old.select(["stage", "corpus", "path", "sha256"]).to_pylist()
    ]
    return old.filter(pa.array(keep, pa.bool_())) if old.num_rows else empty


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


def todo_count(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, previous: pathlib.Path | None) -> int:
    """How many clips the stage would probe (0: nothing to compute)."""
    clips = Dataset.open(in_dir).clips
    version = ProbeStage({}, params.probe_clips.batch_size, ProbeLimits.from_params(params)).version
    prev = Dataset.find(previous or out_dir, "clips")
    return clips.num_rows - carried(clips, prev, version).num_rows - carried_failures(clips, prev, version).num_rows


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
    stage = ProbeStage(src.corpora, params.probe_clips.batch_size, ProbeLimits.from_params(params))
    prev = Dataset.find(previous or out_dir, "clips")
    clips = src.clips.sort_by("clip_id")
    reused = carried(clips, prev, stage.version)
    failed_before = carried_failures(clips, prev, stage.version)
    known_bad = set(zip(failed_before["corpus"].to_pylist(), failed_before["path"].to_pylist(), strict=True))
    done = set(reused["clip_id"].to_pylist()) | {
        c for c, corpus, path in zip(*(clips[k].to_pylist() for k in ("clip_id", "corpus", "media_path")), strict=True)
        if (corpus, path) in known_bad
    }  # fmt: skip
    todo = clips.filter(pc.invert(pc.is_in(clips["clip_id"], pa.array(sorted(done), pa.string()))))
    summary = StageSummary(stage=stage.name, version=stage.version, n_reused=reused.num_rows + failed_before.num_rows)
    with executor.executing(stage, todo, executor.settings_for(params, "probe_clips", run_id)) as (batches, ex):
        probed = list(batches)  # metadata only: a few hundred bytes a clip
        summary.executor, summary.workers = (ex.kind, ex.workers) if todo.num_rows else ("none", 0)
    probed_table = pa.concat_tables(probed) if probed else schemas.from_rows([], stage.output_schema)
    if probed_table.num_rows != todo.num_rows:
        raise RuntimeError(f"probe returned {probed_table.num_rows} rows for {todo.num_rows} clips")
    healthy, failed = split(probed_table, run_id)
    out_clips = pa.concat_tables([schemas.conform(reused, schemas.CLIPS), healthy]).sort_by("clip_id")
    quarantine = pa.concat_tables([src.quarantine, failed_before, failed])
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
        bad = pa.concat_tables([failed_before, failed])
        summary.n_errors = bad.num_rows
        summary.errors = dict(sorted(Counter(bad["reason"].to_pylist()).items()))
        summary.seconds = timer.seconds
        writer.write_json(SUMMARY_FILE, summary.to_dict())
        writer.commit()
    log.info("%s", summary.line())
    return summary
