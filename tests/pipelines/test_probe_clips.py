"""The probe stage through its pipeline: on local Ray, in-process, and incrementally."""

import pytest
from tests.conftest import write_params

from emopipe.config import load_params
from emopipe.dataset import Dataset
from emopipe.pipelines import ingest, probe_clips


@pytest.fixture
def ingested(tiny_corpus, tmp_path):
    return ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1")


def _params(tmp_path, executor):
    return load_params(write_params(tmp_path / "cfg", ray={"executor": executor}))


@pytest.mark.ray
def test_probe_on_ray_probes_every_clip_and_quarantines_broken_media(ingested, tmp_path):
    n_in, q_in = ingested.clips.num_rows, ingested.quarantine.num_rows
    summary = probe_clips.run(_params(tmp_path, "ray"), ingested.path, tmp_path / "probe", "r1")
    assert summary.executor == "ray" and summary.n_processed == n_in
    out = Dataset.open(tmp_path / "probe")
    clips, quarantine = out.clips, out.quarantine
    # nothing lost: every ingested clip is either a probed clip or a new quarantine row
    assert clips.num_rows + quarantine.num_rows - q_in == n_in
    assert set(clips["error"].to_pylist()) == {None}
    assert all(d is not None and d > 0 for d in clips["duration_s"].to_pylist())
    by_path = {r["path"]: r for r in quarantine.to_pylist()}
    truncated = by_path["Actor_02/01-01-04-02-01-02-02.mp4"]
    assert (truncated["stage"], truncated["reason"]) == ("probe_clips", "unreadable_media")
    assert truncated["sha256"] and len(truncated["sha256"]) == 64
    assert {r["reason"] for r in quarantine.to_pylist()} == {
        "bad_name", "code_out_of_range", "empty_file", "unreadable_media"
    }  # fmt: skip
    assert clips["clip_id"].to_pylist() == sorted(clips["clip_id"].to_pylist())


def test_in_process_probe_gives_the_same_table_and_a_rerun_probes_nothing(ingested, tmp_path):
    first = probe_clips.run(_params(tmp_path, "in-process"), ingested.path, tmp_path / "probe", "r1")
    assert first.executor == "in-process" and first.n_reused == 0
    before = Dataset(tmp_path / "probe")
    again = probe_clips.run(_params(tmp_path, "in-process"), ingested.path, tmp_path / "probe", "r2")
    assert (again.n_processed, again.executor) == (0, "none")  # not even the broken file is opened again
    after = Dataset(tmp_path / "probe")
    assert after.digest == before.digest
    assert [p.name for p in after.files("clips")] == [p.name for p in before.files("clips")]


def test_a_changed_file_is_probed_again(ingested, tiny_corpus, tmp_path):
    params = _params(tmp_path, "in-process")
    probe_clips.run(params, ingested.path, tmp_path / "probe", "r1")
    target = sorted(tiny_corpus.glob("Actor_01/03-*.wav"))[0]
    other = sorted(tiny_corpus.glob("Actor_01/03-*.wav"))[1]
    target.write_bytes(other.read_bytes())  # new bytes under the same name
    again = ingest.run("ravdess", tiny_corpus, tmp_path / "ingest2", "r2")
    summary = probe_clips.run(params, again.path, tmp_path / "probe", "r2")
    assert summary.n_processed == 1 and summary.n_reused == ingested.clips.num_rows - 1
