"""The extract_features Ray job: every clip once, sorted, and a rerun extracts only what is new or changed."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from emopipe.pipelines.stage_dir import StageDir

from emopipe.config import ExtractConfig
from emopipe.pipelines import extract_features, ingest
from emopipe.stages.extract import extractor_version

CFG = ExtractConfig(num_workers=2, batch_size=4, num_cpus=2, n_frames=4, frame_size=48)


@pytest.fixture
def ingested(tiny_corpus, tmp_path):
    ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1")
    return StageDir(tmp_path / "ingest")


def _subset(src: StageDir, dest, n: int) -> StageDir:
    """A copy of an ingest folder holding only its first n clips, as before new footage arrived."""
    out = StageDir(dest)
    return StageDir(out.write(src.clips().slice(0, n), src.quarantine(), src.source()))


@pytest.mark.ray
def test_rerun_after_adding_clips_extracts_only_the_new_ones(ingested, tmp_path):
    clips = ingested.clips()
    first_in = _subset(ingested, tmp_path / "first-in", 10)
    out = tmp_path / "extract"
    first = extract_features.run(CFG, first_in.path, out, "r1")
    assert (first.n_extracted, first.n_reused, first.n_clips) == (10, 0, 10)
    # ingest without probe lets the demo's truncated file through: it becomes an error row, not a crash
    assert first.errors == {"decode_failed": 1}
    before = {r["clip_id"]: r for r in pq.read_table(out / "features.parquet").to_pylist() if r["error"] is None}

    second = extract_features.run(CFG, ingested.path, out, "r2")  # same out folder: its rows are reused
    # the new clips, plus the failed one (failures are retried); the 9 good rows are reused
    assert (second.n_extracted, second.n_reused, second.n_clips) == (clips.num_rows - 9, 9, clips.num_rows)
    table = pq.read_table(out / "features.parquet")
    ids = table["clip_id"].to_pylist()
    assert ids == sorted(clips["clip_id"].to_pylist())  # every clip exactly once, in clip_id order
    after = {r["clip_id"]: r for r in table.to_pylist()}
    assert all(after[cid] == row for cid, row in before.items())  # carried over untouched
    assert set(pc.unique(table["extractor_version"]).to_pylist()) == {extractor_version(CFG)}
    assert StageDir(out).clips().num_rows == clips.num_rows  # the folder is a whole dataset for the gate

    third = extract_features.run(CFG, ingested.path, out, "r3")
    assert (third.n_extracted, third.n_reused) == (second.n_errors, clips.num_rows - second.n_errors)


def test_changed_bytes_or_extractor_settings_are_extracted_again(ingested, tmp_path):
    clips = ingested.clips()
    version = extractor_version(CFG)
    rows = [
        {"clip_id": c, "sha256": s, "extractor_version": version, "error": None}
        for c, s in zip(clips["clip_id"].to_pylist(), clips["sha256"].to_pylist(), strict=True)
    ]
    rows[1]["error"] = "decode_failed"  # failed rows are retried
    prev = tmp_path / "features.parquet"
    pq.write_table(pa.Table.from_pylist(rows), prev)
    changed = clips.set_column(
        clips.schema.get_field_index("sha256"), "sha256", pa.array(["f" * 64] + clips["sha256"].to_pylist()[1:])
    )
    keep = extract_features.reusable(prev, changed, version)
    assert clips["clip_id"][0].as_py() not in keep and clips["clip_id"][1].as_py() not in keep
    assert len(keep) == clips.num_rows - 2
    other = extractor_version(ExtractConfig(n_frames=8))
    assert other != version and extract_features.reusable(prev, clips, other) == set()
    assert extract_features.reusable(tmp_path / "absent.parquet", clips, version) == set()
