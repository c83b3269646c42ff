"""probe_clips: probe every clip's media on a Ray actor pool; unreadable media moves to the quarantine."""

from __future__ import annotations

import logging
import math
import pathlib

import pyarrow as pa
import pyarrow.compute as pc

from emopipe import schemas
from emopipe.config import ProbeConfig, RayConfig
from emopipe.pipelines.stage_dir import StageDir

log = logging.getLogger(__name__)


def build(
    cfg: ProbeConfig, clips: pa.Table, roots: dict[str, str], cluster: RayConfig | None = None
) -> ray.data.Dataset:  # noqa: F821
    """The Ray Data plan: the clips table as blocks of `batch_size` rows, each probed in a pool actor.

    The clips table is metadata (a few hundred bytes a clip), so the driver reads it with its declared schema
    and hands Ray ready blocks. Reading it in Ray tasks instead needs a CPU that the actor pool may hold,
    which deadlocks a 2-core machine. A pool actor whose process dies is restarted and its batch retried a
    bounded number of times (`cluster`, the `ray:` section), so a file that kills every decoder fails the job
    instead of retrying forever.
    """
    import ray
    from ray.data import ActorPoolStrategy

    from emopipe.stages.probe import ClipProber

    cluster = cluster or RayConfig()
    n_blocks = max(1, math.ceil(clips.num_rows / cfg.batch_size))
    blocks = [clips.slice(i * cfg.batch_size, cfg.batch_size) for i in range(n_blocks)]
    return ray.data.from_arrow(blocks).map_batches(
        ClipProber,
        fn_constructor_kwargs={"roots": {c: str(r) for c, r in roots.items()}},
        batch_format="pyarrow",
        batch_size=cfg.batch_size,
        compute=ActorPoolStrategy(size=cfg.num_workers),
        num_cpus=1,
        max_restarts=cluster.max_restarts,
        max_task_retries=cluster.max_task_retries,
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


def run(
    cfg: ProbeConfig,
    in_dir: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    *,
    cluster: RayConfig | None = None,
) -> pathlib.Path:
    """Probe the clips of an ingest folder; write the probed clips and the grown quarantine to out_dir."""
    from emopipe.raycluster import connect

    src = StageDir(pathlib.Path(in_dir))
    clips, quarantine, source = src.clips(), src.quarantine(), src.source()
    if clips.num_rows:
        with connect(cfg.ray_address, cfg.num_cpus):
            batches = build(cfg, clips, source["corpora"], cluster).iter_batches(
                batch_format="pyarrow", batch_size=None
            )
            probed = pa.concat_tables(list(batches))  # metadata only: a few hundred bytes a clip
    else:
        probed = clips.append_column("error_detail", pa.array([], pa.string()))
    if probed.num_rows != clips.num_rows:
        raise RuntimeError(f"probe returned {probed.num_rows} rows for {clips.num_rows} clips")
    healthy, failed = split(probed, run_id)
    out = StageDir(pathlib.Path(out_dir)).write(healthy, pa.concat_tables([quarantine, failed]), source)
    log.info("probe_clips: %d healthy, %d quarantined by probe -> %s", healthy.num_rows, failed.num_rows, out)
    return out
