"""The stage contract: what every processing stage (probe, extract, each labeler, each estimator) declares and does.

After NeMo Curator's `ProcessingStage` and datatrove's `PipelineStep`: a stage is a small class that declares its
name, version, the input columns it reads, its output schema, the resources one of its workers needs and its batch
size; `setup()` loads what is expensive (models, decoders) once per worker and only when there are rows to process;
`process(batch)` turns a batch of input rows into exactly one output row per input row, in order, with an `error`
code on a row that failed instead of an exception. Executors (emopipe.executor) run any stage, in-process or on a
Ray actor pool; no stage builds a pool itself.

Incremental reuse keys on (row content hash, stage version): an output row is carried over to the next run while
the input it was computed from (the media's sha256) and the stage's `version` are unchanged and it has no error.
"""

from __future__ import annotations

import abc
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from emopipe import schemas

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs.

    Args:
        cpus: CPU cores per worker.
        gpus: GPUs per worker (a share is allowed); 0 runs on CPU.
        memory_mb: memory per worker that the scheduler should reserve; None leaves it to the cluster.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int | None = None


@dataclass
class StageSummary:
    """What one run of a stage did; every stage reports this one shape (written as `<stage>.json`).

    Args:
        stage: the stage's name.
        version: the stage version that produced the new rows.
        n_rows: output rows in the table after this run (new + carried).
        n_processed: rows computed in this run.
        n_reused: rows carried over from an earlier run.
        n_errors: rows of the table with an error code.
        errors: error code -> rows.
        seconds: wall time of the stage.
        executor: where the new rows were computed: none (nothing to do), in-process or ray.
        workers: how many workers computed them.
        extra: stage-specific facts (mean face share, abstentions, agreement, ...).
    """

    stage: str
    version: str
    n_rows: int = 0
    n_processed: int = 0
    n_reused: int = 0
    n_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    executor: str = "none"
    workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """The summary as one sentence for a log or a terminal."""
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        where = "nothing to compute" if self.n_processed == 0 else f"{self.executor}, {self.workers} worker(s)"
        return (
            f"{self.stage} {self.version}: {self.n_rows} rows ({self.n_processed} computed, {self.n_reused} reused; "
            f"{where}); errors: {errors}; {self.seconds:.1f} s"
        )


class Stage(abc.ABC):
    """A processing stage. Subclasses set the class attributes and implement `process` (and `setup` if needed).

    A stage object is built on the driver from its configuration and shipped to workers (it must pickle): keep
    models out of `__init__` and load them in `setup`.
    """

    name: ClassVar[str]
    input_columns: tuple[str, ...] = ()
    output_schema: pa.Schema
    key_columns: tuple[str, ...] = ("clip_id",)
    failure_code: str = ""  # the error code of a row whose processing raised; default `<name>_failed`
    batch_size: int = 16
    resources: Resources = Resources()

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """What reuse keys on: the code version plus a hash of the settings that change the output."""

    def setup(self) -> None:  # noqa: B027 - optional hook, nothing to load by default
        """Load models and decoders; called once per worker before its first batch, never for an empty stage."""

    @abc.abstractmethod
    def process(self, batch: pa.Table) -> pa.Table:
        """One output row (conformed to `output_schema`) per input row, in order; a bad row gets an error code."""

    def error_rows(self, batch: pa.Table, code: str, detail: str) -> pa.Table:
        """Output rows for input rows that could not be processed at all (the worker raised or died on them)."""
        rows = [
            {**{k: row.get(k) for k in self.output_schema.names if k in row}, "error": code, "error_detail": detail}
            for row in batch.to_pylist()
        ]
        return schemas.from_rows(rows, self.output_schema)

    def process_safely(self, batch: pa.Table) -> pa.Table:
        """`process`, but an exception on the batch is retried row by row, and a row that still raises becomes an
        error row: one bad row never loses the rest of its batch."""
        try:
            return self.process(batch)
        except Exception as err:  # noqa: BLE001 - the per-batch boundary; rows are retried one by one below
            log.warning("%s failed on a batch of %d rows (%s); retrying row by row", self.name, batch.num_rows, err)
        out = []
        for i in range(batch.num_rows):
            row = batch.slice(i, 1)
            try:
                out.append(self.process(row))
            except Exception as err:  # noqa: BLE001 - the per-row boundary: the error is this row's
                detail = f"{type(err).__name__}: {err}"[:500]
                out.append(self.error_rows(row, self.failure_code or f"{self.name}_failed", detail))
        return pa.concat_tables(out) if out else self.output_schema.empty_table()

    def summarize(self, table: pa.Table, summary: StageSummary) -> StageSummary:
        """Fill the counts of a summary from the stage's whole output table (override to add `extra`)."""
        errors = [e for e in table["error"].to_pylist() if e] if "error" in table.column_names else []
        summary.n_rows = table.num_rows
        summary.n_errors = len(errors)
        summary.errors = dict(Counter(errors))
        return summary


class Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)
