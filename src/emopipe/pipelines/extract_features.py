"""extract_features: sampled frames, faces, audio features for every clip, on a Ray actor pool, incrementally.

Only clips whose (sha256, extractor_version) has no error-free row in the previous features table are
decoded; the rest are carried over. New rows stream from the actors to a Parquet file on the driver, in
clip_id order, and are merged with the carried rows into `features.parquet` (sorted by clip_id) without
holding either in memory. The clips, quarantine and source files pass through unchanged, so the folder is a
complete dataset for the gate.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import pathlib
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emopipe import io, schemas
from emopipe.config import ExtractConfig, RayConfig
from emopipe.pipelines.stage_dir import StageDir

log = logging.getLogger(__name__)

FEATURES_FILE = "features.parquet"
KEY_COLUMNS = ["clip_id", "sha256", "extractor_version", "error"]
NODE_COLUMN = "_ray_node_id"  # added by RayClipExtractor, counted into extract.json, never written to features


@dataclass(frozen=True)
class ExtractSummary:
    """What one run did (written to extract.json)."""

    extractor_version: str
    n_clips: int
    n_extracted: int
    n_reused: int
    n_errors: int
    errors: dict[str, int]
    audio_reasons: dict[str, int]
    mean_face_share: float | None
    bytes_per_clip: float | None
    seconds: float
    nodes: dict[str, int] | None = None  # Ray node id -> clips it extracted in this run


def resolve_gpus(cfg: ExtractConfig) -> float:
    """GPUs per actor: a configured number, or with "auto" one per actor (a share when the cluster has fewer)."""
    if cfg.num_gpus != "auto":
        return float(cfg.num_gpus)
    import ray

    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    return min(1.0, gpus / cfg.num_workers) if gpus else 0.0


def reusable(previous: pathlib.Path | None, clips: pa.Table, version: str) -> set[str]:
    """clip_ids whose previous row was computed from the same bytes by the same extractor without error."""
    if previous is None or not previous.is_file():
        return set()
    try:
        prev = pq.read_table(previous, columns=KEY_COLUMNS)
    except (pa.ArrowInvalid, OSError) as err:
        log.warning("previous features %s unreadable (%s); extracting everything", previous, err)
        return set()
    ok = prev.filter(pc.and_(pc.is_null(prev["error"]), pc.equal(prev["extractor_version"], version)))
    before = set(zip(ok["clip_id"].to_pylist(), ok["sha256"].to_pylist(), strict=True))
    now = zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True)
    return {cid for cid, sha in now if (cid, sha) in before}


class RayClipExtractor:
    """ClipExtractor on a pool actor: each output row also names the Ray node that extracted it (NODE_COLUMN)."""

    def __init__(self, **kwargs: Any) -> None:
        import ray

        from emopipe.stages.extract import ClipExtractor

        self.inner = ClipExtractor(**kwargs)
        self.node_id = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = self.inner(batch)
        return out.append_column(NODE_COLUMN, pa.array([self.node_id] * out.num_rows, pa.string()))


def build(
    cfg: ExtractConfig, clips: pa.Table, roots: dict[str, str], cluster: RayConfig | None = None
) -> ray.data.Dataset:  # noqa: F821
    """The Ray Data plan: blocks of `batch_size` clips, each extracted by a pool actor, output in input order.

    An actor whose process dies (killed, out of memory, node lost) is restarted up to `cluster.max_restarts`
    times and its batch retried up to `cluster.max_task_retries` times; finite, so that a clip which kills
    every worker fails the job instead of retrying forever.
    """
    import ray
    from ray.data import ActorPoolStrategy

    from emopipe.stages.extract import INPUT_COLUMNS

    cluster = cluster or RayConfig()
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    light = clips.select(list(INPUT_COLUMNS))
    n_blocks = max(1, math.ceil(light.num_rows / cfg.batch_size))
    blocks = [light.slice(i * cfg.batch_size, cfg.batch_size) for i in range(n_blocks)]
    num_gpus = resolve_gpus(cfg)
    log.info("extract_features: %d clips, %d actors, %s GPU each", light.num_rows, cfg.num_workers, num_gpus)
    return ray.data.from_arrow(blocks).map_batches(
        RayClipExtractor,
        fn_constructor_kwargs={"cfg": cfg, "roots": {c: str(r) for c, r in roots.items()}},
        batch_format="pyarrow",
        batch_size=cfg.batch_size,
        compute=ActorPoolStrategy(size=cfg.num_workers),
        num_cpus=1,
        num_gpus=num_gpus,
        max_restarts=cluster.max_restarts,
        max_task_retries=cluster.max_task_retries,
    )


def _rows(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[str, pa.Table]]:
    for batch in batches:
        table = pa.Table.from_batches([batch])
        for i, cid in enumerate(table["clip_id"].to_pylist()):
            yield cid, table.slice(i, 1)


def _merge(streams: list[Iterable[pa.RecordBatch]], dest: pathlib.Path, chunk: int = 32) -> int:
    """Merge streams already sorted by clip_id into one Parquet file sorted by clip_id; return the row count."""
    schema = schemas.load_schema("features")
    tmp = dest.with_name(f".{dest.name}.tmp")
    n, buffer = 0, []
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for _, row in heapq.merge(*(_rows(s) for s in streams), key=lambda item: item[0]):
            buffer.append(row)
            if len(buffer) >= chunk:
                writer.write_table(schemas.conform(pa.concat_tables(buffer), schema))
                n, buffer = n + len(buffer), []
        if buffer:
            writer.write_table(schemas.conform(pa.concat_tables(buffer), schema))
            n += len(buffer)
    os.replace(tmp, dest)
    return n


def _carried(previous: pathlib.Path, keep: set[str]) -> Iterator[pa.RecordBatch]:
    schema = schemas.load_schema("features")
    for batch in pq.ParquetFile(previous).iter_batches(batch_size=64):
        table = schemas.conform(pa.Table.from_batches([batch]), schema)
        yield from table.filter(pc.is_in(table["clip_id"], pa.array(sorted(keep), pa.string()))).to_batches()


def summarize(
    path: pathlib.Path,
    version: str,
    n_extracted: int,
    n_reused: int,
    seconds: float,
    *,
    nodes: dict[str, int] | None = None,
) -> ExtractSummary:
    """Counts and sizes of a features file, read column by column (the media columns are not loaded)."""
    meta = pq.ParquetFile(path).metadata
    keys = pq.read_table(path, columns=["error", "audio_reason", "face_share"])
    shares = [s for s in keys["face_share"].to_pylist() if s is not None]
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return ExtractSummary(
        extractor_version=version,
        n_clips=meta.num_rows,
        n_extracted=n_extracted,
        n_reused=n_reused,
        n_errors=len(keys["error"]) - keys["error"].null_count,
        errors=dict(Counter(e for e in keys["error"].to_pylist() if e)),
        audio_reasons=dict(Counter(r for r in keys["audio_reason"].to_pylist() if r)),
        mean_face_share=round(sum(shares) / len(shares), 4) if shares else None,
        bytes_per_clip=round(size / meta.num_rows) if meta.num_rows else None,
        seconds=round(seconds, 3),
        nodes=nodes,
    )


def run(
    cfg: ExtractConfig,
    in_dir: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    previous: pathlib.Path | None = None,
    *,
    cluster: RayConfig | None = None,
) -> ExtractSummary:
    """Extract features for the clips of a probed folder into out_dir/features.parquet.

    Args:
        cfg: the `extract_features:` section.
        in_dir: a stage folder with clips.parquet (probe_clips output).
        out_dir: where clips/quarantine/source pass through and features.parquet + extract.json are written.
        run_id: the run, for the log.
        previous: an earlier features.parquet whose rows are reused; default: out_dir's own, if any.
        cluster: the `ray:` section (actor restarts and batch retries); default: its defaults.
    """
    from emopipe.raycluster import connect
    from emopipe.stages.extract import extractor_version

    started = time.perf_counter()
    src, dst = StageDir(pathlib.Path(in_dir)), StageDir(pathlib.Path(out_dir))
    clips = src.clips().sort_by("clip_id")
    version = extractor_version(cfg)
    dest = dst.path / FEATURES_FILE
    previous = pathlib.Path(previous) if previous else dest
    keep = reusable(previous, clips, version)
    todo = clips.filter(pc.invert(pc.is_in(clips["clip_id"], pa.array(sorted(keep), pa.string()))))
    log.info(
        "extract_features %s: %d clips, %d reused, %d to extract", run_id, clips.num_rows, len(keep), todo.num_rows
    )
    dst.path.mkdir(parents=True, exist_ok=True)
    fresh = dst.path / ".features.new.parquet"
    schema = schemas.load_schema("features")
    nodes: Counter[str] = Counter()
    with pq.ParquetWriter(fresh, schema, compression="zstd") as writer:
        if todo.num_rows:
            with connect(cfg.ray_address, cfg.num_cpus):
                for batch in build(cfg, todo, src.source()["corpora"], cluster).iter_batches(
                    batch_format="pyarrow", batch_size=None
                ):
                    nodes.update(batch[NODE_COLUMN].to_pylist())
                    writer.write_table(schemas.conform(batch.drop_columns([NODE_COLUMN]), schema))
    n_new = pq.ParquetFile(fresh).metadata.num_rows
    if n_new != todo.num_rows:
        raise RuntimeError(f"extract_features returned {n_new} rows for {todo.num_rows} clips")
    streams = [pq.ParquetFile(fresh).iter_batches(batch_size=64)]
    if keep:
        streams.append(_carried(previous, keep))
    _merge(streams, dest)
    fresh.unlink()
    if src.path.resolve() != dst.path.resolve():
        dst.write(src.clips(), src.quarantine(), src.source())
    summary = summarize(
        dest, version, n_new, len(keep), time.perf_counter() - started, nodes=dict(sorted(nodes.items()))
    )
    io.write_json(dst.path / "extract.json", asdict(summary))
    log.info("extract_features: %s", summary)
    return summary
