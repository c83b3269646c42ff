"""The stage contract and the executors: one output row per input row, error rows instead of lost batches, a worker
that dies is replaced and every row comes out once, nothing is loaded when there is nothing to do, and the
in-process and Ray executors give the same rows."""

import os
import pathlib
import sys
import warnings

import pyarrow as pa
import pytest

from emopipe import executor, schemas
from emopipe.stages.base import Resources, Stage

OUT = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("value", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("error_detail", pa.string()),
    ]
)


class SquareStage(Stage):
    """A toy stage: value = n * n; `bad` rows raise; `die` rows kill the worker process while a marker file says so.

    Args:
        marks: a folder where setup() leaves a file per call (to count model loads) and where kill markers live.
    """

    name = "square"
    input_columns = ("clip_id", "n")
    output_schema = OUT
    batch_size = 3
    resources = Resources(cpus=1.0)

    def __init__(self, marks: str) -> None:
        self.marks = marks

    @property
    def version(self) -> str:
        return "square-1"

    def setup(self) -> None:
        pathlib.Path(self.marks, f"setup-{os.getpid()}-{os.urandom(4).hex()}").touch()

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            if row["n"] < 0:
                raise ValueError(f"negative {row['n']}")
            kill = pathlib.Path(self.marks, f"kill-{row['clip_id']}")
            if kill.exists():
                if kill.read_text() == "once":
                    kill.unlink()  # the next worker survives this row
                os._exit(1)  # a worker process dying mid-batch, as a segfaulting decoder would
            rows.append({"clip_id": row["clip_id"], "value": row["n"] * row["n"]})
        return schemas.from_rows(rows, OUT)


def _rows(values: list[int]) -> pa.Table:
    return pa.table({"clip_id": [f"c{i:02d}" for i in range(len(values))], "n": values})


def _setups(marks: pathlib.Path) -> int:
    return len(list(marks.glob("setup-*")))


@pytest.fixture(autouse=True)
def _ship_this_module():
    """Ray workers receive this module's toy stage by value (tests/ is not an installed package)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_failing_row_becomes_an_error_row_and_the_rest_of_its_batch_is_kept(tmp_path):
    stage = SquareStage(str(tmp_path))
    out = pa.concat_tables(list(executor.InProcessExecutor().map(stage, _rows([1, 2, -3, 4, 5]))))
    assert out["clip_id"].to_pylist() == ["c00", "c01", "c02", "c03", "c04"]
    assert out["value"].to_pylist() == [1, 4, None, 16, 25]
    assert out["error"].to_pylist() == [None, None, "square_failed", None, None]
    assert "negative -3" in out["error_detail"][2].as_py()


def test_nothing_to_do_loads_nothing(tmp_path):
    stage = SquareStage(str(tmp_path))
    settings = executor.Settings(run_dir=tmp_path / "run", mode="auto")
    with executor.executing(stage, _rows([]), settings) as (batches, ex):
        assert list(batches) == []
    assert _setups(tmp_path) == 0 and not (tmp_path / "run" / "ray-head.json").exists()  # no model, no Ray
    assert isinstance(executor.choose_executor(5, stage, num_workers=2, gpus=None, mode="auto", local_below=32,
                                               cluster=False), executor.InProcessExecutor)  # fmt: skip
    assert isinstance(executor.choose_executor(50, stage, num_workers=2, gpus=None, mode="auto", local_below=32,
                                               cluster=False), executor.RayExecutor)  # fmt: skip
    assert isinstance(executor.choose_executor(5, stage, num_workers=2, gpus=1, mode="auto", local_below=32,
                                               cluster=False), executor.RayExecutor)  # fmt: skip


@pytest.mark.ray
def test_ray_and_in_process_give_the_same_rows_and_a_dead_worker_loses_nothing(tmp_path):
    values = [1, 2, -3, 4, 5, 6, 7, 8]
    (tmp_path / "a").mkdir()
    local = pa.concat_tables(list(executor.InProcessExecutor().map(SquareStage(str(tmp_path / "a")), _rows(values))))
    marks = tmp_path / "b"
    marks.mkdir()
    (marks / "kill-c04").write_text("once")  # the worker dies on c04 once: Ray restarts it, the batch is retried
    (marks / "kill-c06").write_text("always")  # c06 kills every worker that tries it: it becomes an error row
    settings = executor.Settings(run_dir=tmp_path / "run", mode="ray", num_workers=2, num_cpus=2)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")  # pyproject ignores DeprecationWarning: see every warning here
            with executor.executing(SquareStage(str(marks)), _rows(values), settings) as (batches, ex):
                remote = pa.concat_tables(list(batches))
        assert ex.kind == "ray" and ex.workers == 2 and sum(ex.nodes.values()) == len(values)
        # emopipe's own use of Ray Data is the current API: no deprecation Ray announces for a coming release
        deprecated = [str(w.message) for w in seen if "Deprecat" in type(w.message).__name__ + w.category.__name__]
        assert not [m for m in deprecated if "ray" in m.lower()], deprecated
    finally:
        from emopipe import raycluster

        raycluster.stop_head(tmp_path / "run")
    assert remote["clip_id"].to_pylist() == local["clip_id"].to_pylist()  # every row once, in order
    died = remote["error"].to_pylist().index("worker_died")
    assert remote["clip_id"][died].as_py() == "c06"
    expected = local.to_pylist()
    for i, row in enumerate(remote.to_pylist()):
        if i != died:
            assert row == expected[i]


class DoomedStage(SquareStage):
    """Every worker process dies while loading its model (a decoder library that segfaults on import)."""

    def setup(self) -> None:
        os._exit(1)


def test_a_pool_whose_every_worker_dies_is_one_line_and_leaves_no_partial_output(tmp_path):
    from emopipe.dataset import DatasetWriter

    settings = executor.Settings(run_dir=tmp_path / "run", mode="ray", num_workers=2, num_cpus=2)
    out = tmp_path / "out"
    try:
        with pytest.raises(executor.ExecutorFailed) as err:
            with DatasetWriter(out, corpora={}) as writer:
                sink = writer.shard_writer("features")
                with executor.executing(DoomedStage(str(tmp_path)), _rows([1, 2, 3, 4]), settings) as (batches, _):
                    for batch in batches:
                        sink.write(batch)
                writer.commit()
    finally:
        from emopipe import raycluster

        raycluster.stop_head(tmp_path / "run")
    message = str(err.value)
    assert "\n" not in message and message.startswith("square: the Ray pool failed"), message
    assert "died while setting the stage up" in message, message
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))  # no temporary or partial file
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out") and p.name != ".out.lock"]
    assert not left, left  # the writer's temporary folder is gone (the lock file of the folder stays, as flock's do)
