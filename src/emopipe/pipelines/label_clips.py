"""label_clips: every configured labeler (each one a stage) over the clips' features, incrementally, in shards.

A (clip, labeler) row is carried over while the clip's sha256 and the labeler's version (its weights' checksum, and
for a video LLM its prompt) are unchanged and the row has no error. Only the features columns a labeler reads are
streamed to its workers (face crops for the default model); a labeler with no new clips loads nothing. Writes the
labels shards, agreement (WAR/UAR against the human labels, and `reports/agreement_table.md`: the same in the form
of R1-Omni's published table, next to its figures), fused labels and the confusion matrices; the clips, features and
the rest pass through. Every labeler is checked (`labelers.base.check`) before anything starts; a video LLM on the
`vllm` engine runs through Ray Data LLM's own engine actors (`labelers.vllm_engine`) instead of the executor.
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
from emopipe.dataset import SHARDED, Dataset, DatasetWriter, rows_digest, schema_of
from emopipe.labelers.stage import LabelStage, labeler_version
from emopipe.stages.base import StageSummary, Timer

log = logging.getLogger(__name__)

SUMMARY_FILE = "label.json"
KEY_COLUMNS = ["clip_id", "labeler", "sha256", "error"]


def select(cfg: LabelConfig, names: list[str]) -> LabelConfig:
    """The config with only the named labelers (the fusion labeler becomes the first of them if it is left out)."""
    known = {s.name: s for s in cfg.labelers}
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown labelers {unknown}; params.yaml label_clips.labelers has {sorted(known)}")
    chosen = tuple(known[n] for n in dict.fromkeys(names))
    fusion = cfg.fusion_labeler if cfg.fusion_labeler in names else chosen[0].name
    return cfg.model_copy(update={"labelers": chosen, "fusion_labeler": fusion})


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

    return prev.carry("labels", keep, KEY_COLUMNS)


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
    carry = plan(clips, Dataset.find(previous or out_dir, "labels"), versions)
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
    from emopipe.labelers.base import check
    from emopipe.stages import agreement as agreement_stage
    from emopipe.stages.fusion import fuse

    timer = Timer()
    cfg = select(params.label_clips, labelers) if labelers else params.label_clips
    for spec in cfg.labelers:  # a missing or unsupported checkpoint fails first, in one line, before Ray starts
        check(spec)
    src = Dataset.open(in_dir)
    if not src.has("features"):
        raise FileNotFoundError(f"{src.path} has no features: run extract_features first")
    clips = src.clips.sort_by("clip_id")
    stages = [LabelStage(spec, cfg.batch_size) for spec in cfg.labelers]
    versions = {s.version for s in stages}
    prev = Dataset.find(previous or out_dir, "labels")
    carry = plan(clips, prev, versions)
    reused = carry.keys if carry else set()
    schema, layout = schema_of("labels"), SHARDED["labels"]
    summary = StageSummary(stage="label_clips", version=",".join(sorted(versions)), n_reused=len(reused))
    fresh: list[pa.Table] = []
    facts = {"labelers": sorted(versions), "fusion_labeler": cfg.fusion_labeler, "min_confidence": cfg.min_confidence}
    manifest_stages = {**src.stages, "label_clips": facts}
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
            how = executor.settings_for(params, "label_clips", run_id)
            if stage.spec.engine == "vllm":  # Ray Data LLM runs its own vLLM engine actors on the GPU nodes
                fresh += [schemas.conform(b, schema) for b in _vllm(stage, inputs, how)]
                summary.executor = "ray-data-llm"
            else:
                with executor.executing(stage, inputs, how) as (batches, ex):
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
        # WAR/UAR per corpus in the form of R1-Omni's published table, next to its figures, for the run report
        table = agreement_stage.comparison_markdown(agreement_stage.comparison(agree))
        (reports / "agreement_table.md").write_text(table, encoding="utf-8")
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


def _vllm(stage: LabelStage, inputs: pathlib.Path, how: executor.Settings) -> list[pa.Table]:
    """A video_llm labeler on the vllm engine: its labels rows, from Ray Data LLM over the inputs file."""
    import ray

    from emopipe import raycluster
    from emopipe.labelers import vllm_engine

    with raycluster.session(how.address, how.run_dir, how.num_cpus, how.idle_s):
        rows = ray.data.read_parquet(str(inputs), num_cpus=0)
        labelled = vllm_engine.label_dataset(rows, stage.spec, num_workers=how.num_workers)
        return list(labelled.iter_batches(batch_format="pyarrow", batch_size=None))


def _unchanged(prev: Dataset | None, src: Dataset, facts: dict, written: list[shards.Shard]) -> bool:
    """Whether the previous labelled dataset had these very clips, labels and fusion settings."""
    if prev is None or written or not all(prev.has(t) for t in ("agreement", "fused_labels", "clips")):
        return False
    if prev.stages.get("label_clips") != facts or not (prev.path / "reports" / "agreement.json").is_file():
        return False
    return rows_digest(prev.clips) == rows_digest(src.clips)


def _read_labels(folder: pathlib.Path, parts_: list[shards.Shard]) -> pa.Table:
    """The whole labels table just written (new shards, and the kept ones linked beside them)."""
    schema = schema_of("labels")
    parts = [shards.read_shard(folder, s, schema) for s in parts_]
    return pa.concat_tables(parts) if parts else schema.empty_table()
