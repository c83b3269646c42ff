"""The probe_clips Ray job on a real local Ray instance."""

import pytest
from emopipe.pipelines.stage_dir import StageDir

from emopipe.config import ProbeConfig
from emopipe.pipelines import ingest, probe_clips

pytestmark = pytest.mark.ray


def test_probe_job_probes_every_clip_and_quarantines_broken_media(tiny_corpus, tmp_path):
    ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1")
    before = StageDir(tmp_path / "ingest")
    n_in, q_in = before.clips().num_rows, before.quarantine().num_rows
    probe_clips.run(
        ProbeConfig(num_workers=2, batch_size=4, num_cpus=2), tmp_path / "ingest", tmp_path / "probe", "r1"
    )
    out = StageDir(tmp_path / "probe")
    clips, quarantine = out.clips(), out.quarantine()
    # nothing lost: every ingested clip is either a probed clip or a new quarantine row
    assert clips.num_rows + quarantine.num_rows - q_in == n_in
    assert set(clips["error"].to_pylist()) == {None}
    assert all(d is not None and d > 0 for d in clips["duration_s"].to_pylist())
    by_path = {r["path"]: r for r in quarantine.to_pylist()}
    truncated = by_path["Actor_02/01-01-04-02-01-02-02.mp4"]
    assert (truncated["stage"], truncated["reason"]) == ("probe_clips", "unreadable_media")
    assert {r["reason"] for r in quarantine.to_pylist()} == {
        "bad_name",
        "code_out_of_range",
        "empty_file",
        "unreadable_media",
    }
    assert clips["clip_id"].to_pylist() == sorted(clips["clip_id"].to_pylist())
