"""estimate_attributes: every configured attribute estimator (each one a stage) over the clips' features,
incrementally, in shards; nothing at all when none is configured.

A (clip, estimator) row is carried over while the clip's sha256 and the estimator's version (its model folder's
checksum and its label map) are unchanged and the row has no error. Only the features columns an estimator reads are
streamed to its workers (face crops, or the audio); an estimator with no new clips loads nothing. Writes the
`estimates` shards and estimate.json; every other table passes through unchanged: the clips table stays as the
corpus gave it. The instrument audit and the join into the bias tables happen at the gate (emopipe.quality.metrics,
emopipe.estimators.audit), which sees the whole dataset; its verdicts are also in this stage's summary.
"""

from __future__ import annotations

import logging
import pathlib
from collections import Counter

import pyarrow as pa

from emopipe import executor, schemas, shards
from emopipe.config import EstimateConfig, Params, ParamsError
from emopipe.dataset import SHARDED, Dataset, DatasetWriter, schema_of
from emopipe.estimators.stage import EstimateStage, estimator_version
from emopipe.pipelines.label_clips import _inputs as feature_inputs  # the same streaming of a few columns
from emopipe.stages.base import StageSummary, Timer

log = logging.getLogger(__name__)

SUMMARY_FILE = "estimate.json"
KEY_COLUMNS = ["clip_id", "estimator", "sha256", "error"]
TABLE = "estimates"


def select(cfg: EstimateConfig, names: list[str]) -> EstimateConfig:
    """The config with only the named estimators."""
    known = {s.name: s for s in cfg.estimators}
    if unknown := [n for n in names if n not in known]:
        raise ValueError(
            f"unknown estimators {unknown}; params.yaml estimate_attributes.estimators has {sorted(known)}"
        )
    return cfg.model_copy(update={"estimators": tuple(known[n] for n in dict.fromkeys(names))})


def check_models(cfg: EstimateConfig) -> None:
    """Every configured model folder can be loaded: one ParamsError line per folder that cannot (before any work)."""
    from emopipe.estimators.models import check_folder

    problems = [
        f"estimate_attributes.estimators[{i}].path: {why}"
        for i, spec in enumerate(cfg.estimators)
        if (why := check_folder(spec.path, spec.kind))
    ]
    if problems:
        raise ParamsError(problems)


def plan(clips: pa.Table, prev: Dataset | None, versions: set[str]) -> shards.Carry | None:
    """Which previous estimates rows are reused: same clip bytes, an estimator still configured at the same version."""
    if prev is None:
        return None
    current = dict(zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True))

    def keep(table: pa.Table) -> pa.Array:
        columns = (table[c].to_pylist() for c in ("clip_id", "sha256", "estimator", "error"))
        return pa.array(
            [current.get(c) == s and n in versions and e is None for c, s, n, e in zip(*columns, strict=True)],
            pa.bool_(),
        )

    return prev.carry(TABLE, keep, KEY_COLUMNS)


def todo_count(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, previous: pathlib.Path | None) -> int:
    """How many (clip, estimator) rows the stage would compute (0: nothing to compute)."""
    cfg = params.estimate_attributes
    if not cfg.estimators:
        return 0
    clips = Dataset.open(in_dir).clips
    check_models(cfg)
    versions = {estimator_version(s) for s in cfg.estimators}
    carry = plan(clips, Dataset.find(previous or out_dir, TABLE), versions)
    return clips.num_rows * len(versions) - (len(carry.keys) if carry else 0)


def _facts(stages: list[EstimateStage]) -> dict:
    """What the manifest records of this stage: each estimator's version, attribute, kind and threshold."""
    return {
        "version": ",".join(sorted(s.version for s in stages)),
        "estimators": [
            {
                "estimator": s.version,
                "name": s.spec.name,
                "kind": s.spec.kind,
                "attribute": s.spec.attribute,
                "min_confidence": s.spec.min_confidence,
            }
            for s in stages
        ],
    }


def run(
    params: Params,
    in_dir: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    previous: pathlib.Path | None = None,
    *,
    estimators: list[str] | None = None,
) -> StageSummary:
    """Estimate the configured attributes of the clips of a labelled (or extracted) folder; write estimates (shards)
    and estimate.json; pass every other table through.

    Args:
        params: the run's configuration (`estimate_attributes:`, `validate:` for the audit in the summary, `ray:`).
        in_dir: a dataset folder with clips and features (label_clips or extract_features output).
        out_dir: where the dataset with its estimates is written.
        run_id: the run.
        previous: an earlier estimate_attributes folder whose rows are reused; default: out_dir's.
        estimators: only these configured estimators (by name); default: all.
    """
    from emopipe.estimators import audit

    timer = Timer()
    cfg = select(params.estimate_attributes, estimators) if estimators else params.estimate_attributes
    src = Dataset.open(in_dir)
    gpus = cfg.num_gpus if isinstance(cfg.num_gpus, int | float) else 0.0
    stages = [EstimateStage(spec, cfg.batch_size, float(gpus)) for spec in cfg.estimators]
    if stages and not src.has("features"):
        raise FileNotFoundError(f"{src.path} has no features: run extract_features first")
    clips = src.clips.sort_by("clip_id")
    versions = {s.version for s in stages}
    prev = Dataset.find(previous or out_dir, TABLE)
    carry = plan(clips, prev, versions) if stages else None
    reused = carry.keys if carry else set()
    if any(c for c in clips["clip_id"].to_pylist() for s in stages if (c, s.version) not in reused):
        check_models(cfg)  # a missing folder is one line naming the key, not a traceback from a worker
    schema, layout = schema_of(TABLE), SHARDED[TABLE]
    facts = _facts(stages)
    summary = StageSummary(stage="estimate_attributes", version=facts["version"], n_reused=len(reused))
    fresh: list[pa.Table] = []
    with DatasetWriter(out_dir, corpora=src.corpora, synthetic=src.synthetic, stages=src.stages) as writer:
        writer.record_stage("estimate_attributes", facts)
        for stage in stages:
            ids = {c for c in clips["clip_id"].to_pylist() if (c, stage.version) not in reused}
            if not ids:
                log.info("%s: nothing new to estimate", stage.name)
                continue
            inputs = writer.tmp / f".inputs-{stage.spec.name}.parquet"
            n = feature_inputs(src, ids, list(stage.input_columns), inputs, stage.batch_size)
            if n != len(ids):
                raise RuntimeError(
                    f"the features have {n} of the {len(ids)} clips to estimate: rerun extract_features"
                )
            log.info("%s: %d clips to estimate", stage.name, n)
            settings = executor.settings_for(params, "estimate_attributes", run_id)
            with executor.executing(stage, inputs, settings) as (batches, ex):
                fresh += [schemas.conform(b, schema) for b in batches]
                summary.executor, summary.workers = ex.kind, max(summary.workers, ex.workers)
            inputs.unlink()
        table = None
        if stages:
            new = pa.concat_tables(fresh) if fresh else schema.empty_table()
            summary.n_processed = new.num_rows
            sink = writer.shard_writer(TABLE)
            streams = [iter([shards.sort_rows(new, layout)])]
            if carry is not None and carry.partial:
                streams.append(shards.carried_rows(carry, schema, layout))
            for chunk in shards.merge_sorted(streams, layout.keys, chunk=1024):
                sink.write(chunk)
            written = sink.close()
            kept = carry.kept if carry else []
            writer.add_shards(TABLE, written, kept_from=prev, kept=kept)
            parts = [shards.read_shard(writer.tmp / TABLE, s, schema) for s in [*written, *kept]]
            table = pa.concat_tables(parts) if parts else schema.empty_table()
            if table.num_rows != clips.num_rows * len(stages):
                raise RuntimeError(
                    f"estimate_attributes produced {table.num_rows} rows for {clips.num_rows} clips x {len(stages)}"
                )
            summary.extra = {"shards_written": len(written), "shards_kept": len(kept)}
        writer.pass_through(src, [n for n in src.manifest.get("tables", {}) if n != TABLE])
        summary.n_rows = table.num_rows if table is not None else 0
        errors = [e for e in table["error"].to_pylist() if e] if table is not None else []
        summary.n_errors, summary.errors = len(errors), dict(sorted(Counter(errors).items()))
        verdicts: list[str] = []
        if table is not None:
            _, tables = audit.audit_tables(clips, table, writer.manifest["stages"], params.validate)
            verdicts = audit.summary_lines(tables.get("instrument_audit"))
            reasons = Counter(r for r in table["abstain_reason"].to_pylist() if r)
            summary.extra |= {"estimators": sorted(versions), "abstained": dict(sorted(reasons.items()))}
        summary.extra["instrument_audit"] = verdicts
        summary.seconds = timer.seconds
        writer.write_json(SUMMARY_FILE, summary.to_dict())
        writer.commit()
    log.info("%s", summary.line())
    for line in verdicts:
        log.info("instrument audit: %s", line)
    return summary
