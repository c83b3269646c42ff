"""The label_clips Ray job: every clip gets one row per labeler, agreement with the human labels is reported,
and a rerun relabels only clips whose bytes changed."""

import pyarrow.parquet as pq
import pytest

from emopipe.config import ExtractConfig, LabelConfig
from emopipe.pipelines import extract_features, ingest, label_clips

pytestmark = pytest.mark.ray


def test_label_job_labels_every_clip_and_reports_war_uar(tiny_corpus, tmp_path):
    ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1")
    ext = ExtractConfig(num_workers=2, num_cpus=2, n_frames=4, frame_size=72)
    extract_features.run(ext, tmp_path / "ingest", tmp_path / "ext", "r1")
    cfg = LabelConfig(num_workers=2, num_cpus=2, batch_size=8)
    first = label_clips.run(cfg, tmp_path / "ext", tmp_path / "lab", "r1")
    clips = pq.read_table(tmp_path / "lab" / "clips.parquet")
    labels = pq.read_table(tmp_path / "lab" / "labels.parquet").to_pylist()
    assert len(labels) == clips.num_rows == first.n_rows == first.n_labelled
    assert {r["labeler"] for r in labels} == {label_clips.labeler_version(cfg.labelers[0])}
    for row in labels:  # a label or a reason, never both, never neither
        assert (row["label"] is None) != (row["abstain_reason"] is None), row
    reasons = {r["abstain_reason"] for r in labels}
    assert "no_face" in reasons  # the audio-only .wav clips have no face crops
    assert any(r["label"] for r in labels)
    # the demo's one face is a smiling photograph: the model's labels agree with few of the acted emotions
    agreement = {r["corpus"]: r for r in first.agreement}
    ravdess = agreement["ravdess"]
    assert ravdess["n_clips"] == sum(1 for r in clips.to_pylist() if r["label"])
    assert 0 < ravdess["coverage"] < 1 and 0 <= ravdess["war"] <= 1
    assert (tmp_path / "lab" / "features.parquet").is_file()

    second = label_clips.run(cfg, tmp_path / "ext", tmp_path / "lab", "r2")
    assert (second.n_labelled, second.n_reused) == (0, first.n_rows)
