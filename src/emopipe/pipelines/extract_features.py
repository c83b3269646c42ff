"""extract_features: sampled frames, faces, audio features for every clip (the extraction stage on an executor),
incrementally and in content-addressed shards.

A features row is carried over while the clip's sha256 and the extractor version are unchanged and the row has no
error; only the other clips are decoded. A shard of the previous features table whose rows are all carried over is
kept as it is (hard-linked, same file); the carried rows of a shard that lost some are rewritten together with the
new rows into new shards, in clip_id order, streamed (bounded memory: a few batches). The light `extraction` table
(one row per clip, what the gate checks) is written beside it, so later stages never read the features to count
them. The clips and quarantine tables pass through, so the folder is a complete dataset for the gate.
"""

from __future__ import annotations

import logging
import pathlib
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from emopipe import executor, schemas, shards
from emopipe.config import Params
from emopipe.dataset import SHARDED, Dataset, DatasetWriter, schema_of
from emopipe.stages.base import StageSummary, Timer
from emopipe.stages.extract import INPUT_COLUMNS, ExtractStage, extraction_rows

log = logging.getLogger(__name__)

SUMMARY_FILE = "extract.json"
KEY_COLUMNS = ["clip_id", "sha256", "extractor_version", "error"]


def plan(clips: pa.Table, prev: Dataset | None, version: str) -> shards.Carry | None:
    """Which previous features rows are reused (and which of their shards are kept whole)."""
    if prev is None:
        return None
    current = dict(zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True))
    return prev.carry("features", lambda t: executor.reuse_mask(t, current, "extractor_version", version), KEY_COLUMNS)


def todo_count(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, previous: pathlib.Path | None) -> int:
    """How many clips the stage would extract (0: nothing to compute)."""
    from emopipe.stages.extract import extractor_version

    clips = Dataset.open(in_dir).clips
    carry = plan(clips, Dataset.find(previous or out_dir, "features"), extractor_version(params.extract_features))
    return clips.num_rows - (len(carry.keys) if carry else 0)


def run(
    params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, run_id: str, previous: pathlib.Path | None = None
) -> StageSummary:
    """Extract features for the clips of a probed folder into out_dir (features shards + extraction table).

    Args:
        params: the run's configuration (`extract_features:` and `ray:`).
        in_dir: a dataset folder with the clips table (probe_clips output).
        out_dir: where the dataset with its features is written.
        run_id: the run.
        previous: an earlier extract_features folder (or its features.parquet) whose rows are reused; default: what
            out_dir holds.
    """
    timer = Timer()
    src = Dataset.open(in_dir)
    clips = src.clips.sort_by("clip_id")
    stage = ExtractStage(params.extract_features, {c: str(r) for c, r in src.corpora.items()})
    prev = Dataset.find(previous or out_dir, "features")
    carry = plan(clips, prev, stage.version)
    reused = {k[0] for k in carry.keys} if carry else set()
    todo = clips.filter(pc.invert(pc.is_in(clips["clip_id"], pa.array(sorted(reused), pa.string()))))
    todo = todo.select(list(INPUT_COLUMNS))
    log.info(
        "extract_features %s: %d clips, %d reused, %d to extract", run_id, clips.num_rows, len(reused), todo.num_rows
    )
    summary = StageSummary(stage=stage.name, version=stage.version, n_reused=len(reused), n_processed=todo.num_rows)
    schema, layout = schema_of("features"), SHARDED["features"]
    extraction: list[pa.Table] = []
    stages = {**src.stages, "extract_features": {"version": stage.version}}
    with DatasetWriter(out_dir, corpora=src.corpora, synthetic=src.synthetic, stages=stages) as writer:
        sink = writer.shard_writer("features")
        n_new = 0
        with executor.executing(stage, todo, executor.settings_for(params, "extract_features", run_id)) as (
            batches,
            ex,
        ):

            def fresh() -> Iterator[pa.Table]:
                nonlocal n_new
                for out in batches:
                    rows = schemas.conform(out, schema)
                    n_new += rows.num_rows
                    extraction.append(extraction_rows(rows))
                    yield rows

            streams = [fresh()]
            if carry is not None and carry.partial:
                streams.append(shards.carried_rows(carry, schema, layout))
            for chunk in shards.merge_sorted(streams, layout.keys):
                sink.write(chunk)
            summary.executor, summary.workers = (ex.kind, ex.workers) if todo.num_rows else ("none", 0)
            nodes = dict(sorted(ex.nodes.items()))
        if n_new != todo.num_rows:
            raise RuntimeError(f"extract_features returned {n_new} rows for {todo.num_rows} clips")
        written = sink.close()
        kept = carry.kept if carry else []
        writer.add_shards("features", written, kept_from=prev, kept=kept)
        if reused and prev is not None:
            old = prev.extraction
            extraction.append(old.filter(pc.is_in(old["clip_id"], pa.array(sorted(reused), pa.string()))))
        ext_schema = schema_of("extraction")
        table = pa.concat_tables([schemas.conform(t, ext_schema) for t in extraction]) if extraction else None
        table = (table if table is not None else ext_schema.empty_table()).sort_by("clip_id")
        writer.write_table("extraction", table)
        writer.pass_through(src, [n for n in src.manifest.get("tables", {}) if n not in {"features", "extraction"}])
        stage.summarize(table, summary)
        shares = [s for s in table["face_share"].to_pylist() if s is not None]
        n_bytes = sum(p.stat().st_size for p in (writer.tmp / "features").glob("*.parquet"))
        summary.extra = {
            "audio_reasons": _counts(table["audio_reason"].to_pylist()),
            "mean_face_share": round(sum(shares) / len(shares), 4) if shares else None,
            "bytes_per_clip": round(n_bytes / table.num_rows) if table.num_rows else None,
            "shards_written": len(written),
            "shards_kept": len(kept),
            "nodes": nodes or None,
        }
        summary.seconds = timer.seconds
        writer.write_json(SUMMARY_FILE, summary.to_dict())
        writer.commit()
    log.info("%s", summary.line())
    return summary


def _counts(values: list[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(v for v in values if v).items()))
