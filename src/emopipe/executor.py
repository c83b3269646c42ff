"""Executors: run any stage (emopipe.stages.base.Stage) over a table of input rows, and nothing else builds a pool.

- `InProcessExecutor`: the stage in this process, batch by batch (tests, small refreshes, the CLI on a few clips).
- `RayExecutor`: a Ray Data actor pool (local Ray: the run's shared head; or a cluster). Pool size, GPUs per actor,
  memory, back-pressure (Ray Data's streaming executor: a few batches in flight per actor), order (preserved) and
  fault handling live here. An actor whose process dies is restarted by Ray Data and its batch retried; a batch
  that already killed a worker is retried row by row, and a row that was being processed when a worker died again
  becomes an error row (`worker_died`) instead of killing workers forever, so the rest of the run goes on.
- `run_stage`: the incremental part every stage shares: carry over output rows whose (key, content hash, stage
  version) are unchanged and error-free, compute only the rest, and report one summary shape. A stage with no rows
  to compute costs nothing: no pool, no model load.

`choose_executor` picks in-process for small work (below `ray.local_below_rows` rows, no GPU asked, no cluster
configured): Ray's fixed cost of seconds is not worth paying for a handful of clips.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import logging
import math
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from emopipe.config import RayConfig
from emopipe.stages.base import Stage

log = logging.getLogger(__name__)

MAX_SETUP_DEATHS = 2  # workers of a pool that may die in the stage's setup before the pool gives up
NODE_COLUMN = "_ray_node_id"  # added to each output batch by the Ray worker, counted, never written


class ExecutorFailed(RuntimeError):
    """The executor could not run a stage (its workers could not start, the cluster went away); one-line message."""


def _batches(rows: pa.Table, size: int) -> list[pa.Table]:
    n = max(1, math.ceil(rows.num_rows / size))
    return [rows.slice(i * size, size) for i in range(n)] if rows.num_rows else []


Rows = pa.Table | pathlib.Path  # input rows in memory, or a Parquet file of them (large inputs: features columns)


def _n_rows(rows: Rows) -> int:
    if isinstance(rows, pa.Table):
        return rows.num_rows
    import pyarrow.parquet as pq

    return pq.ParquetFile(rows).metadata.num_rows


class Executor(abc.ABC):
    """Runs a stage over input rows and yields its output rows, one batch at a time, in input order."""

    kind: str = "?"
    workers: int = 1

    def __init__(self) -> None:
        self.nodes: dict[str, int] = {}

    @abc.abstractmethod
    def map(self, stage: Stage, rows: Rows) -> Iterator[pa.Table]:
        """Output batches of `stage` over `rows` (already reduced to the columns the stage reads)."""


class InProcessExecutor(Executor):
    """The stage in this process: `setup()` once (only if there are rows), then `process` per batch."""

    kind = "in-process"

    def __init__(self) -> None:
        super().__init__()
        self._ready: set[int] = set()

    def map(self, stage: Stage, rows: Rows) -> Iterator[pa.Table]:
        if _n_rows(rows) == 0:
            return
        if id(stage) not in self._ready:
            stage.setup()
            self._ready.add(id(stage))
        if isinstance(rows, pa.Table):
            batches: Iterator[pa.Table] = iter(_batches(rows, stage.batch_size))
        else:
            import pyarrow.parquet as pq

            batches = (
                pa.Table.from_batches([b]) for b in pq.ParquetFile(rows).iter_batches(batch_size=stage.batch_size)
            )
        for batch in batches:
            yield stage.process_safely(batch)


def _key(stage: Stage, batch: pa.Table) -> str:
    h = hashlib.sha256(stage.name.encode())
    for column in stage.key_columns:
        if column in batch.column_names:
            h.update("\0".join(map(str, batch[column].to_pylist())).encode())
    return h.hexdigest()


class _Attempts:
    """A Ray actor that remembers which batches and rows a pool's workers started, so a retry after a worker death
    can tell which row killed it."""

    def __init__(self) -> None:
        self.batches: dict[str, int] = {}
        self.rows: set[str] = set()
        self.setups_started = self.setups_done = 0

    def start_setup(self, allowed: int) -> bool:
        """Count a worker starting the stage's setup; False once more setups started than finished, by more than
        `allowed`: workers die while loading the stage (a crash in native model code), and Ray would restart them
        forever."""
        if self.setups_started - self.setups_done >= allowed:
            return False
        self.setups_started += 1
        return True

    def end_setup(self) -> None:
        self.setups_done += 1

    def setup_deaths(self, workers: int) -> int:
        """Setups that never finished beyond the `workers` that may be running one now."""
        return max(0, self.setups_started - self.setups_done - workers)

    def begin(self, key: str) -> int:
        self.batches[key] = self.batches.get(key, 0) + 1
        return self.batches[key]

    def start_row(self, key: str) -> bool:
        """Mark a row as being processed; False when an earlier attempt started it and never finished."""
        if key in self.rows:
            return False
        self.rows.add(key)
        return True

    def end_row(self, key: str) -> None:
        self.rows.discard(key)


class _StageWorker:
    """One actor of a pool: the stage, set up once, applied to batches; row isolation on a retried batch."""

    def __init__(self, stage: Stage, attempts: Any, workers: int = 1) -> None:
        import ray

        self.stage, self.attempts = stage, attempts
        if not ray.get(attempts.start_setup.remote(workers + MAX_SETUP_DEATHS)):
            raise ExecutorFailed(f"{stage.name}: workers keep dying while setting the stage up; giving up")
        self.stage.setup()
        ray.get(attempts.end_setup.remote())
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        import ray

        key = _key(self.stage, batch)
        attempt = ray.get(self.attempts.begin.remote(key))
        if attempt == 1:
            out = self.stage.process_safely(batch)
        else:  # this batch's worker died before: go row by row, and skip the row it died on
            parts = []
            for i in range(batch.num_rows):
                row = batch.slice(i, 1)
                row_key = f"{key}:{i}"
                if not ray.get(self.attempts.start_row.remote(row_key)):
                    log.error("%s: a worker died processing %s; recorded as an error row", self.stage.name, row_key)
                    detail = f"the worker process died twice while processing this row (attempt {attempt})"
                    parts.append(self.stage.error_rows(row, "worker_died", detail))
                    continue
                parts.append(self.stage.process_safely(row))
                ray.get(self.attempts.end_row.remote(row_key))
            out = pa.concat_tables(parts)
        return out.append_column(NODE_COLUMN, pa.array([self.node] * out.num_rows, pa.string()))


class RayExecutor(Executor):
    """A Ray Data actor pool. The caller holds the Ray connection (emopipe.raycluster.session).

    Args:
        num_workers: actors in the pool (fewer when there are fewer batches).
        gpus: GPUs per actor, overriding the stage's declaration ("auto": one per actor when the cluster has GPUs,
            a share when it has fewer than the pool); None: the stage's own.
    """

    kind = "ray"

    def __init__(self, num_workers: int, gpus: float | str | None = None) -> None:
        super().__init__()
        self.num_workers, self.gpus = num_workers, gpus

    def _gpus(self, stage: Stage) -> float:
        import ray

        if self.gpus is None:
            return stage.resources.gpus
        if self.gpus != "auto":
            return float(self.gpus)
        available = float(ray.cluster_resources().get("GPU", 0.0))
        return min(1.0, available / self.num_workers) if available else 0.0

    def map(self, stage: Stage, rows: Rows) -> Iterator[pa.Table]:
        import ray
        from ray.data import ActorPoolStrategy

        n_rows = _n_rows(rows)
        if n_rows == 0:
            return
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        n_batches = math.ceil(n_rows / stage.batch_size)
        self.workers = min(self.num_workers, n_batches)
        if isinstance(rows, pa.Table):
            # Metadata-sized input: the driver hands Ray ready blocks. Reading in Ray tasks instead needs a CPU the
            # actor pool may hold, which deadlocks a 2-core machine.
            source = ray.data.from_arrow(_batches(rows, stage.batch_size))
        else:
            # Large input (features columns): read by Ray in zero-CPU tasks (the v1 Parquet path; v2 lists files in
            # a 1-CPU task that waits behind an actor pool holding every core).
            context.use_datasource_v2 = False
            source = ray.data.read_parquet(str(rows), num_cpus=0)
        attempts = ray.remote(num_cpus=0)(_Attempts).remote()
        res = stage.resources
        gpus = self._gpus(stage)
        log.info("%s: %d rows on %d Ray actors (%s GPU each)", stage.name, n_rows, self.workers, gpus)
        plan = source.map_batches(
            _StageWorker,
            fn_constructor_kwargs={"stage": stage, "attempts": attempts, "workers": self.workers},
            batch_format="pyarrow",
            batch_size=stage.batch_size,
            compute=ActorPoolStrategy(size=self.workers),
            num_cpus=res.cpus,
            num_gpus=gpus,
            memory=res.memory_mb * 2**20 if res.memory_mb else None,
        )
        try:
            for batch in plan.iter_batches(batch_format="pyarrow", batch_size=None):
                for node in batch[NODE_COLUMN].to_pylist():
                    self.nodes[node] = self.nodes.get(node, 0) + 1
                yield batch.drop_columns([NODE_COLUMN])
        except ray.exceptions.RayError as err:
            with contextlib.suppress(ray.exceptions.RayError):
                if died := ray.get(attempts.setup_deaths.remote(self.workers), timeout=30):
                    raise ExecutorFailed(
                        f"{stage.name}: the Ray pool failed: {died} workers died while setting the stage up (loading "
                        "its models or libraries), before any row; nothing was computed"
                    ) from err
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExecutorFailed(f"{stage.name}: the Ray pool failed ({type(err).__name__}): {first[:300]}") from err
        finally:
            ray.kill(attempts)


def choose_executor(
    n_rows: int, stage: Stage, *, num_workers: int, gpus: float | str | None, mode: str, local_below: int,
    cluster: bool,
) -> Executor:  # fmt: skip
    """The executor for `n_rows` new rows of `stage`.

    Args:
        n_rows: rows to compute.
        stage: the stage (its declared GPUs count: a GPU stage goes to Ray).
        num_workers: pool size for Ray.
        gpus: GPUs per actor from the stage's config ("auto", a number, or None for the stage's declaration).
        mode: "auto", "ray" or "in-process" (params `ray.executor`).
        local_below: with "auto", fewer rows than this run in-process.
        cluster: a Ray cluster is configured (then "auto" always uses it).
    """
    if mode == "in-process" or n_rows == 0:
        return InProcessExecutor()
    wants_gpu = (gpus not in (None, "auto", 0, 0.0)) or stage.resources.gpus > 0
    if mode == "auto" and not cluster and not wants_gpu and n_rows < local_below:
        return InProcessExecutor()
    return RayExecutor(num_workers, gpus)


@dataclass(frozen=True)
class Settings:
    """How a run executes one stage (from params: the stage's section and `ray:`).

    Args:
        run_dir: the run's folder (where its local Ray head is recorded).
        address: a Ray cluster to join; None: the run's local head.
        num_workers: Ray actor pool size.
        num_cpus: local Ray's CPU count; None: all.
        gpus: GPUs per actor ("auto", a number) or None for the stage's declaration.
        mode: "auto", "ray" or "in-process".
        local_below: with "auto", fewer new rows than this are computed in-process.
        idle_s: the run's local Ray head stops after this long unused.
    """

    run_dir: pathlib.Path
    address: str | None = None
    num_workers: int = 2
    num_cpus: int | None = None
    gpus: float | str | None = None
    mode: str = "auto"
    local_below: int = RayConfig.model_fields["local_below_rows"].default  # params' defaults, never a second copy
    idle_s: float = RayConfig.model_fields["local_idle_s"].default


def settings_for(params: Any, section: str, run_id: str) -> Settings:
    """The Settings of one stage section of params (`probe_clips`, `extract_features`, `label_clips`) in a run."""
    cfg = getattr(params, section)
    return Settings(
        run_dir=params.run_dir(run_id),
        address=cfg.ray_address,
        num_workers=cfg.num_workers,
        num_cpus=cfg.num_cpus,
        gpus=getattr(cfg, "num_gpus", None),
        mode=params.ray.executor,
        local_below=params.ray.local_below_rows,
        idle_s=params.ray.local_idle_s,
    )


@contextlib.contextmanager
def executing(stage: Stage, rows: Rows, settings: Settings) -> Iterator[tuple[Iterator[pa.Table], Executor]]:
    """The stage's output batches over `rows` and the executor that computes them, Ray connected when used."""
    from emopipe import raycluster

    n_rows = _n_rows(rows)
    executor = choose_executor(
        n_rows, stage, num_workers=settings.num_workers, gpus=settings.gpus, mode=settings.mode,
        local_below=settings.local_below, cluster=settings.address is not None,
    )  # fmt: skip
    if n_rows == 0:
        yield iter(()), executor
    elif isinstance(executor, RayExecutor):
        with raycluster.session(settings.address, settings.run_dir, settings.num_cpus, settings.idle_s):
            yield executor.map(stage, rows), executor
    else:
        yield executor.map(stage, rows), executor


def reuse_mask(previous: pa.Table, current: dict[str, str], version_column: str, version: str) -> pa.Array:
    """Rows of a previous output table that can be carried over: same clip and sha256, same stage version, no error.

    Args:
        previous: the earlier table (at least clip_id, sha256, the version column, error).
        current: clip_id -> sha256 of the clips of this run.
        version_column: the column holding the stage version of each row.
        version: the current stage version.
    """
    ids, shas = previous["clip_id"].to_pylist(), previous["sha256"].to_pylist()
    versions, errors = previous[version_column].to_pylist(), previous["error"].to_pylist()
    return pa.array(
        [
            current.get(c) == s and v == version and e is None
            for c, s, v, e in zip(ids, shas, versions, errors, strict=True)
        ],
        pa.bool_(),
    )


def write_summary(path: pathlib.Path, summary: Any) -> None:
    from emopipe import io

    io.write_json(path, summary.to_dict())
