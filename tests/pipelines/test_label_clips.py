"""The label_clips Ray job: every clip gets one row per labeler, agreement with the human labels is reported,
and a rerun relabels only clips whose bytes changed."""

import pytest
from tests import tiny_models
from tests.conftest import write_params

from emopipe.config import load_params
from emopipe.dataset import Dataset
from emopipe.labelers.stage import labeler_version
from emopipe.pipelines import extract_features, ingest, label_clips

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def extracted(tiny_corpus_template, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labelling")
    ingest.run("ravdess", tiny_corpus_template, tmp / "ingest", "r1")
    params = load_params(write_params(tmp / "cfg", ray={"executor": "in-process"}))
    extract_features.run(params, tmp / "ingest", tmp / "ext", "r1")
    return tmp / "ext"


def _params(tmp_path, **label):
    section = {"num_workers": 2, "num_cpus": 2, "batch_size": 8, **label}
    return load_params(write_params(tmp_path / "cfg", ray={"executor": "ray"}, label_clips=section))


def test_label_job_labels_every_clip_and_reports_war_uar(extracted, tmp_path):
    params = _params(tmp_path)
    first = label_clips.run(params, extracted, tmp_path / "lab", "r1")
    assert first.executor == "ray"
    out = Dataset(tmp_path / "lab")
    clips = out.clips
    labels = out.labels.to_pylist()
    assert len(labels) == clips.num_rows == first.n_rows == first.n_processed
    assert {r["labeler"] for r in labels} == {labeler_version(params.label_clips.labelers[0])}
    for row in labels:  # a label or a reason, never both, never neither
        assert (row["label"] is None) != (row["abstain_reason"] is None), row
    reasons = {r["abstain_reason"] for r in labels}
    assert "no_face" in reasons  # the audio-only .wav clips have no face crops
    assert any(r["label"] for r in labels)
    # the demo's one face is a smiling photograph: the model's labels agree with few of the acted emotions
    agreement = {r["corpus"]: r for r in first.extra["agreement"]}
    ravdess = agreement["ravdess"]
    assert ravdess["n_clips"] == sum(1 for r in clips.to_pylist() if r["label"])
    assert 0 < ravdess["coverage"] < 1 and 0 <= ravdess["war"] <= 1
    assert out.has("features") and out.files("features") == [
        tmp_path / "lab" / "features" / p.name for p in Dataset(extracted).files("features")
    ]  # passed through: the same shard files

    assert (tmp_path / "lab" / "reports" / "agreement.json").is_file()
    assert (tmp_path / "lab" / "reports" / "confusion" / "fer__ravdess.png").read_bytes()[:4] == b"\x89PNG"
    fused = out.fused_labels.to_pylist()
    assert len(fused) == clips.num_rows
    assert all(r["train_label_source"] == ("human" if r["human_label"] else r["train_label_source"]) for r in fused)

    second = label_clips.run(params, extracted, tmp_path / "lab", "r2")
    assert (second.n_processed, second.n_reused, second.executor) == (0, first.n_rows, "none")  # no model loaded
    again = Dataset(tmp_path / "lab")
    assert [p.name for p in again.files("labels")] == [p.name for p in out.files("labels")]
    assert again.agreement.to_pylist() == out.agreement.to_pylist()


def test_tiny_transformers_models_label_through_ray_actors(extracted, tmp_path):
    video = tiny_models.videomae(tmp_path / "videomae")
    audio = tiny_models.wav2vec2(tmp_path / "wav2vec2")
    params = _params(
        tmp_path,
        labelers=[
            {"name": "vmae", "kind": "hf_video", "path": str(video),
             "label_map": {"Happy": "happiness", "Sad": "sadness", "Bored": "neutral"}},
            {"name": "w2v", "kind": "hf_audio", "path": str(audio), "label_map": {"ang": "anger", "hap": "happiness"}},
        ],
        fusion_labeler="w2v",
        min_confidence=0.0,
    )  # fmt: skip
    summary = label_clips.run(params, extracted, tmp_path / "lab", "r1")
    labels = Dataset(tmp_path / "lab").labels.to_pylist()
    clips = Dataset(extracted).clips.to_pylist()
    assert len(labels) == 2 * len(clips) and summary.n_errors == 0
    by = {(r["clip_id"], r["labeler"].split("@")[0]): r for r in labels}
    broken = {r["clip_id"] for r in Dataset(extracted).extraction.to_pylist() if r["error"]}
    assert broken  # the demo's truncated download: extraction recorded an error, labelling abstains on it
    for clip in clips:
        video_row, audio_row = by[(clip["clip_id"], "vmae")], by[(clip["clip_id"], "w2v")]
        if clip["media_form"] == "audio" or clip["clip_id"] in broken:
            assert video_row["abstain_reason"] == "no_frames"
        else:
            assert video_row["label"] in {"happiness", "sadness", "neutral"}
        assert audio_row["label"] in {"anger", "happiness"} or audio_row["abstain_reason"] == "no_audio"
    assert {a["labeler"].split("@")[0] for a in summary.extra["agreement"]} == {"vmae", "w2v"}
