"""The extraction stage through its pipeline: every clip once, sorted; a rerun extracts only what is new or changed
and keeps every features shard whose rows it reuses (same file); in-process and Ray give the same table."""

import hashlib

import pyarrow as pa
import pytest
from tests.conftest import write_params

from emopipe import schemas
from emopipe.config import load_params
from emopipe.dataset import Dataset, DatasetWriter
from emopipe.pipelines import extract_features, ingest
from emopipe.stages.extract import extractor_version

EXTRACT = {"num_workers": 2, "batch_size": 4, "num_cpus": 2, "n_frames": 4, "frame_size": 48}


@pytest.fixture
def ingested(tiny_corpus, tmp_path):
    return ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1")


def _params(tmp_path, executor="in-process", **extract):
    return load_params(
        write_params(tmp_path / "cfg", ray={"executor": executor}, extract_features={**EXTRACT, **extract})
    )


def _subset(src: Dataset, dest, n: int) -> Dataset:
    """A copy of an ingest folder holding only its first n clips, as before new footage arrived."""
    with DatasetWriter(dest, corpora=src.corpora) as w:
        w.write_table("clips", src.clips.sort_by("clip_id").slice(0, n))
        w.write_table("quarantine", src.quarantine)
        return w.commit()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rerun_after_adding_clips_extracts_only_the_new_ones_and_keeps_old_shards(ingested, tmp_path):
    params = _params(tmp_path)
    clips = ingested.clips
    first_in = _subset(ingested, tmp_path / "first-in", 10)
    out = tmp_path / "extract"
    first = extract_features.run(params, first_in.path, out, "r1")
    assert (first.n_processed, first.n_reused, first.n_rows) == (10, 0, 10)
    # ingest without probe lets the demo's truncated file through: it becomes an error row, not a crash
    assert first.errors == {"decode_failed": 1}
    ds = Dataset(out)
    shards_before = {p.name: _sha(p) for p in ds.files("features")}
    before = {r["clip_id"]: r for b in ds.iter_batches("features") for r in b.to_pylist() if r["error"] is None}

    second = extract_features.run(params, ingested.path, out, "r2")  # same out folder: its rows are reused
    # the new clips, plus the failed one (failures are retried); the 9 good rows are reused
    assert (second.n_processed, second.n_reused, second.n_rows) == (clips.num_rows - 9, 9, clips.num_rows)
    ds = Dataset(out)
    table = pa.concat_tables(list(ds.iter_batches("features")))
    ids = table["clip_id"].to_pylist()
    assert sorted(ids) == sorted(clips["clip_id"].to_pylist()) and len(set(ids)) == len(ids)  # every clip once
    after = {r["clip_id"]: r for r in table.to_pylist()}
    assert all(after[cid] == row for cid, row in before.items())  # carried over untouched
    assert set(table["extractor_version"].to_pylist()) == {extractor_version(params.extract_features)}
    assert ds.clips.num_rows == clips.num_rows  # the folder is a whole dataset for the gate
    assert ds.extraction.num_rows == clips.num_rows
    # the first shard held a failed row: it was rewritten; its good rows moved into new shards
    assert not set(shards_before) & {p.name for p in ds.files("features")}

    third = extract_features.run(params, ingested.path, out, "r3")
    assert (third.n_processed, third.n_reused) == (second.n_errors, clips.num_rows - second.n_errors)
    kept = {p.name: _sha(p) for p in Dataset(out).files("features")}
    fourth = extract_features.run(params, ingested.path, out, "r4")
    assert (fourth.n_processed, fourth.executor) == (fourth.n_errors, "in-process" if fourth.n_errors else "none")
    # a shard whose every row is reused is the same file, name and bytes
    now = {p.name: _sha(p) for p in Dataset(out).files("features")}
    unchanged = [n for n in kept if n in now]
    assert unchanged and all(now[n] == kept[n] for n in unchanged)


def test_changed_bytes_or_extractor_settings_are_extracted_again(ingested, tmp_path):
    params = _params(tmp_path)
    out = tmp_path / "extract"
    extract_features.run(params, ingested.path, out, "r1")
    prev = Dataset(out)
    clips = ingested.clips.sort_by("clip_id")
    changed = clips.set_column(
        clips.schema.get_field_index("sha256"), "sha256", pa.array(["f" * 64] + clips["sha256"].to_pylist()[1:])
    )
    version = extractor_version(params.extract_features)
    keep = {k[0] for k in extract_features.plan(changed, prev, version).keys}
    assert clips["clip_id"][0].as_py() not in keep
    failed = {r["clip_id"] for r in prev.extraction.to_pylist() if r["error"]}
    assert failed and not failed & keep  # failed rows are retried
    assert len(keep) == clips.num_rows - 1 - len(failed)
    other = extractor_version(params.extract_features.model_copy(update={"n_frames": 8}))
    assert other != version and extract_features.plan(clips, prev, other).keys == set()
    assert extract_features.plan(clips, None, version) is None


@pytest.mark.ray
def test_in_process_and_ray_give_identical_tables(ingested, tmp_path):
    local = extract_features.run(_params(tmp_path / "a"), ingested.path, tmp_path / "local", "r1")
    on_ray = extract_features.run(_params(tmp_path / "b", "ray"), ingested.path, tmp_path / "ray", "r1")
    assert (local.executor, on_ray.executor) == ("in-process", "ray")
    a, b = Dataset(tmp_path / "local"), Dataset(tmp_path / "ray")
    assert [p.name for p in a.files("features")] == [p.name for p in b.files("features")]  # same rows, same bytes
    assert a.digest == b.digest
    schemas.conform(pa.concat_tables(list(b.iter_batches("features"))), schemas.load_schema("features"))
