"""label_clips: every configured labeler (each one a stage) over the clips' features, incrementally, in shards.

A (clip, labeler) row is carried over while the clip's sha256 and the labeler's version (its weights' checksum, and
for a video LLM its prompt) are unchanged and the row has no error. Only the features columns a labeler reads are
streamed to its workers (face crops for the default model); a labeler with no new clips loads nothing. Writes the
labels shards, agreement (WAR/UAR against the human labels), fused labels and the confusion matrices; the clips,
features and the rest pass through.
"""

from __future__ import annotations

import logging
import pathlib
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emopipe import executor, io, schemas, shards
from emopipe.config import LabelConfig, Params
from emopipe.dataset import SHARDED, Dataset, DatasetWriter, schema_of
from emopipe.labelers.stage import LabelStage, labeler_version
from emopipe.stages.base import StageSummary, Timer

log = logging.getLogger(__name__)

SUMMARY_FILE = "label.json"
KEY_COLUMNS = ["clip_id", "labeler", "sha256", "error"]


def settings(params: Params, run_id: str, cfg: LabelConfig) -> executor.Settings:
    return executor.Settings(
        run_dir=params.run_dir(run_id),
        address=cfg.ray_address,
        num_workers=cfg.num_workers,
        num_cpus=cfg.num_cpus,
        gpus=cfg.num_gpus,
        mode=params.ray.executor,
        local_below=params.ray.local_below_rows,
        idle_s=params.ray.local_idle_s,
    )


def select(cfg: LabelConfig, names: list[str]) -> LabelConfig:
    """The config with only the named labelers (the fusion labeler becomes the first of them if it is left out)."""
    known = {s.name: s for s in cfg.labelers}
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown labelers {unknown}; params.yaml label_clips.labelers has {sorted(known)}")
    chosen = tuple(known[n] for n in dict.fromkeys(names))
    fusion = cfg.fusion_labeler if cfg.fusion_labeler in names else chosen[0].name
    return cfg.model_copy(update={"labelers": chosen, "fusion_labeler": fusion})


def previous_dataset(out_dir: pathlib.Path, previous: pathlib.Path | None) -> Dataset | None:
    path = pathlib.Path(previous) if previous else pathlib.Path(out_dir)
    if path.is_file() and path.name == "labels.parquet":
        path = path.parent
    try:
        ds = Dataset.open(path)
    except ValueError:
        return None
    return ds if ds.has("labels") else None


def plan(clips: pa.Table, prev: Dataset | None, versions: set[str]) -> shards.Carry | None:
    """Which previous labels rows are reused: same clip bytes, a labeler still configured at the same version."""
    if prev is None:
        return None
    current = dict(zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True))

    def keep(table: pa.Table) -> pa.Array:
        ids, shas = table["clip_id"].to_pylist(), table["sha256"].to_pylist()
        names, errors = table["labeler"].to_pylist(), table["error"].to_pylist()
        return pa.array(
            [
                current.get(c) == s and n in versions and e is None
                for c, s, n, e in zip(ids, shas, names, errors, strict=True)
            ],
            pa.bool_(),
        )

    schema, layout = schema_of("labels"), SHARDED["labels"]
    if prev.layout < 2:
        entry = prev.table_entry("labels")
        return shards.plan_carry(
            prev.path, [shards.Shard(entry["file"], entry["rows"])], schema=schema, layout=layout, keep=keep,
            columns=KEY_COLUMNS, whole=False,
        )  # fmt: skip
    return shards.plan_carry(
        prev.table_dir("labels"), prev.shards("labels") or [], schema=schema, layout=layout, keep=keep,
        columns=KEY_COLUMNS,
    )  # fmt: skip


def _inputs(src: Dataset, ids: set[str], columns: list[str], dest: pathlib.Path, rows: int) -> int:
    """Stream the needed features columns of the clips to label into their own Parquet file (row groups of `rows`)."""
    wanted = pa.array(sorted(ids), pa.string())
    n, writer = 0, None
    try:
        for batch in src.iter_batches("features", columns=columns, batch_rows=rows):
            part = batch.filter(pc.is_in(batch["clip_id"], wanted))
            if not part.num_rows:
                continue
            if writer is None:
                writer = pq.ParquetWriter(dest, part.schema)
            writer.write_table(part, row_group_size=rows)
            n += part.num_rows
    finally:
        if writer is not None:
            writer.close()
    return n


def todo_count(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, previous: pathlib.Path | None) -> int:
    """How many (clip, labeler) rows the stage would compute (0: nothing to compute)."""
    cfg = params.label_clips
    clips = Dataset.open(in_dir).clips
    versions = {labeler_version(s) for s in cfg.labelers}
    carry = plan(clips, previous_dataset(out_dir, previous), versions)
    return clips.num_rows * len(versions) - (len(carry.keys) if carry else 0)


def run(
    params: Params,
    in_dir: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    previous: pathlib.Path | None = None,
    *,
    labelers: list[str] | None = None,
) -> StageSummary:
    """Label the clips of an extracted folder; write labels (shards), agreement, fused labels and label.json.

    Args:
        params: the run's configuration (`label_clips:` and `ray:`).
        in_dir: a dataset folder with clips and features (extract_features output).
        out_dir: where the labelled dataset is written.
        run_id: the run.
        previous: an earlier label_clips folder (or its labels.parquet) whose rows are reused; default: out_dir's.
        labelers: only these configured labelers (by name); default: all.
    """
    from emopipe.stages import agreement as agreement_stage
    from emopipe.stages.fusion import fuse

    timer = Timer()
    cfg = select(params.label_clips, labelers) if labelers else params.label_clips
    src = Dataset.open(in_dir)
    if not src.has("features"):
        raise FileNotFoundError(f"{src.path} has no features: run extract_features first")
    clips = src.clips.sort_by("clip_id")
    stages = [LabelStage(spec, cfg.batch_size) for spec in cfg.labelers]
    versions = {s.version for s in stages}
    prev = previous_dataset(out_dir, previous)
    carry = plan(clips, prev, versions)
    reused = carry.keys if carry else set()
    schema, layout = schema_of("labels"), SHARDED["labels"]
    summary = StageSummary(stage="label_clips", version=",".join(sorted(versions)), n_reused=len(reused))
    fresh: list[pa.Table] = []
    manifest_stages = {**src.stages, "label_clips": {"labelers": sorted(versions)}}
    with DatasetWriter(out_dir, corpora=src.corpora, synthetic=src.synthetic, stages=manifest_stages) as writer:
        for stage in stages:
            ids = {c for c in clips["clip_id"].to_pylist() if (c, stage.version) not in reused}
            if not ids:
                log.info("%s: nothing new to label", stage.name)
                continue
            inputs = writer.tmp / f".inputs-{stage.spec.name}.parquet"
            n = _inputs(src, ids, list(stage.input_columns), inputs, stage.batch_size)
            if n != len(ids):
                raise RuntimeError(f"the features have {n} of the {len(ids)} clips to label: rerun extract_features")
            log.info("%s: %d clips to label", stage.name, n)
            with executor.executing(stage, inputs, settings(params, run_id, cfg)) as (batches, ex):
                fresh += [schemas.conform(b, schema) for b in batches]
                summary.executor, summary.workers = ex.kind, max(summary.workers, ex.workers)
            inputs.unlink()
        new = pa.concat_tables(fresh) if fresh else schema.empty_table()
        summary.n_processed = new.num_rows
        sink = writer.shard_writer("labels")
        streams = [iter([shards.sort_rows(new, layout)])]
        if carry is not None and carry.partial:
            streams.append(shards.carried_rows(carry, schema, layout))
        for chunk in shards.merge_sorted(streams, layout.keys, chunk=1024):
            sink.write(chunk)
        written = sink.close()
        kept = carry.kept if carry else []
        writer.add_shards("labels", written, kept_from=prev, kept=kept)
        labels = _read_labels(writer.tmp / "labels", [*written, *kept])
        if labels.num_rows != clips.num_rows * len(stages):
            raise RuntimeError(
                f"label_clips produced {labels.num_rows} rows for {clips.num_rows} clips x {len(stages)}"
            )
        agree = agreement_stage.agreement(clips, labels)
        writer.write_table("agreement", agree)
        reports = writer.tmp / "reports"
        io.write_json(reports / "agreement.json", agreement_stage.metrics_json(agree))
        for row in agree.to_pylist():
            name = f"{row['labeler'].split('@')[0]}__{row['corpus']}.png"
            corpus = None if row["corpus"] == "ALL" else row["corpus"]
            agreement_stage.confusion_png(clips, labels, row["labeler"], corpus, reports / "confusion" / name)
        fused = fuse(clips, labels, cfg.fusion_labeler, cfg.min_confidence)
        writer.write_table("fused_labels", fused)
        writer.pass_through(
            src, [n for n in src.manifest.get("tables", {}) if n not in {"labels", "agreement", "fused_labels"}]
        )
        summary.n_rows = labels.num_rows
        errors = [e for e in labels["error"].to_pylist() if e]
        summary.n_errors, summary.errors = len(errors), dict(sorted(Counter(errors).items()))
        summary.extra = {
            "labelers": sorted(versions),
            "abstained": dict(sorted(Counter(r for r in labels["abstain_reason"].to_pylist() if r).items())),
            "agreement": agree.to_pylist(),
            "fusion": dict(sorted(Counter(fused["train_label_source"].to_pylist()).items())),
            "shards_written": len(written),
            "shards_kept": len(kept),
        }
        summary.seconds = timer.seconds
        writer.write_json(SUMMARY_FILE, summary.to_dict())
        writer.commit()
    log.info("%s", summary.line())
    return summary


def _read_labels(folder: pathlib.Path, parts_: list[shards.Shard]) -> pa.Table:
    """The whole labels table just written (new shards, and the kept ones linked beside them)."""
    schema = schema_of("labels")
    parts = [shards.read_shard(folder, s, schema) for s in parts_]
    return pa.concat_tables(parts) if parts else schema.empty_table()
