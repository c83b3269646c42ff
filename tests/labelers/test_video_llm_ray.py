"""The video-LLM labeler through the label_clips Ray job: tiny Qwen2.5-Omni (hears) and Qwen2.5-VL (frames only)
checkpoints loaded in a Ray actor pool, batched, generated, parsed, written; two runs agree; a batch of 4 writes the
rows of batches of 1. And the vLLM path's request rows through Ray Data (vLLM itself is not installed here)."""

import pathlib

import numpy as np
import pytest

from emopipe.config import ExtractConfig, LabelConfig, LabelerSpec, Params, RayConfig
from emopipe.dataset import Dataset
from emopipe.labelers import video_llm, vllm_engine
from emopipe.labelers.stage import labeler_version
from emopipe.pipelines import extract_features, ingest, label_clips
from tests import tiny_models

pytestmark = pytest.mark.ray
REPLY = "<think>Her eyes crinkle and the tone is bright.</think><answer>happy</answer>"
RUN = "llm"  # every job of the module is one run: they share its local Ray head, stopped at the end


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from emopipe import raycluster

    root = tmp_path_factory.mktemp("llm-labelling")
    yield root
    raycluster.stop_head(_params(root).run_dir(RUN))


def _params(root: pathlib.Path, label: LabelConfig | None = None) -> Params:
    return Params(
        work_dir=root / "work",
        extract_features=ExtractConfig(num_workers=2, num_cpus=2, n_frames=4, frame_size=72),
        label_clips=label or LabelConfig(),
        ray=RayConfig(executor="ray"),  # through the Ray actor pool, however few the clips
    )


@pytest.fixture(scope="module")
def extracted(tiny_corpus_template, work):
    ingest.run("ravdess", tiny_corpus_template, work / "ingest", RUN)
    extract_features.run(_params(work), work / "ingest", work / "ext", RUN)
    return work / "ext"


@pytest.fixture(scope="module")
def models(work):
    omni = tiny_models.steer(tiny_models.qwen2_5_omni_thinker(work / "omni"), REPLY)
    return {"omni": omni, "vl": tiny_models.qwen2_5_vl(work / "vl")}


def _cfg(models, batch: int) -> LabelConfig:
    specs = (
        LabelerSpec(name="omni", kind="video_llm", path=str(models["omni"]), max_new_tokens=32, batch_size=batch),
        LabelerSpec(name="vl", kind="video_llm", path=str(models["vl"]), max_new_tokens=8, batch_size=batch),
    )
    return LabelConfig(num_workers=2, num_cpus=2, batch_size=8, labelers=specs, fusion_labeler="omni")


def _content(path: pathlib.Path) -> list[dict]:
    rows = Dataset.open(path).labels.to_pylist()
    return sorted(
        ({k: v for k, v in r.items() if k != "seconds"} for r in rows), key=lambda r: (r["clip_id"], r["labeler"])
    )


@pytest.mark.slow  # minutes: in `make test-slow`
def test_video_llms_label_every_clip_through_the_ray_pool(extracted, models, work):
    cfg = _cfg(models, batch=4)
    summary = label_clips.run(_params(work, cfg), extracted, work / "a", RUN)
    assert summary.executor == "ray" and summary.workers == 2
    src = Dataset.open(extracted)
    clips = {c["clip_id"]: c for c in src.clips.to_pylist()}
    broken = {f["clip_id"] for f in src.extraction.to_pylist() if f["error"]}
    assert broken  # the demo's truncated download
    labels = Dataset.open(work / "a").labels.to_pylist()
    assert len(labels) == 2 * len(clips) == summary.n_rows and summary.n_errors == 0
    assert {r["labeler"] for r in labels} == {labeler_version(s) for s in cfg.labelers}
    by = {(r["clip_id"], r["labeler"].split("@")[0]): r for r in labels}
    for clip_id, clip in clips.items():
        omni, vl = by[(clip_id, "omni")], by[(clip_id, "vl")]
        if clip_id in broken:
            assert omni["abstain_reason"] == vl["abstain_reason"] == "no_frames"
            continue
        # the steered Omni model answers happy, from frames + audio, or from the audio of an audio-only clip
        assert (omni["label"], omni["rationale"]) == ("happiness", "Her eyes crinkle and the tone is bright.")
        assert omni["generated_tokens"] > 0 and omni["seconds"] >= 0 and omni["raw_output"] == REPLY
        if clip["media_form"] == "audio":
            assert omni["n_inputs"] == 1
            assert (vl["abstain_reason"], vl["n_inputs"]) == ("no_frames", 0)  # frames-only model, no frames
        else:
            assert omni["n_inputs"] == 4 + 1  # 4 frames and the audio track
            assert vl["n_inputs"] == 4 and vl["label"] is None and vl["raw_output"]  # garbage: abstains
            assert 1 <= vl["generated_tokens"] <= 8
    agreement = {(a["labeler"].split("@")[0], a["corpus"]): a for a in summary.extra["agreement"]}
    ravdess = agreement[("omni", "ravdess")]
    happy = sum(1 for c in clips.values() if c["label"] == "happiness")
    assert ravdess["war"] == pytest.approx(happy / ravdess["n_clips"])  # "happy" is right exactly on happy clips
    table = (work / "a" / "reports" / "agreement_table.md").read_text()
    assert "| R1-Omni (published) | 65.83 | 56.27 | 57.68 | 40.04 | 43.00 | 44.69 |" in table
    assert f"| {labeler_version(cfg.labelers[0])} | – | – | – | – | " in table

    # a second run from scratch, in batches of 1, writes the same rows (and the same labeler versions)
    label_clips.run(_params(work, _cfg(models, batch=1)), extracted, work / "b", RUN)
    assert _content(work / "a") == _content(work / "b")

    # rerunning into the same folder reuses every row: the versions match what the workers reported
    again = label_clips.run(_params(work, cfg), extracted, work / "a", RUN)
    assert (again.n_processed, again.n_reused) == (0, 2 * len(clips))


def test_vllm_requests_survive_ray_data_and_replies_parse_as_the_transformers_path(models, work):
    import ray

    from emopipe import raycluster
    from tests.labelers.test_video_llm import ROWS

    spec = LabelerSpec(name="omni", kind="video_llm", path=str(models["omni"]), max_new_tokens=32, engine="vllm")
    rendered = vllm_engine.prompts(spec)
    backend = video_llm.TransformersBackend(str(models["omni"]))
    chat = video_llm.messages(video_llm.R1_OMNI_PROMPT, None, video=True, audio=True)
    assert rendered["video+audio"] == video_llm.render_prompt(backend.tokenizer, backend.template, chat)
    usable = [r for r in ROWS if vllm_engine.usable(r, spec, takes_audio=True)]
    assert [r["clip_id"] for r in usable] == ["av", "silent", "audio"]

    with raycluster.session(None, _params(work).run_dir(RUN), 2):
        ds = ray.data.from_items(usable).map(lambda row: vllm_engine.request(row, rendered, spec, True))
        sent = {r["clip_id"]: r for r in ds.take_all()}
    av, silent, audio = sent["av"], sent["silent"], sent["audio"]
    assert av["prompt"] == rendered["video+audio"] and silent["prompt"] == rendered["video"]
    assert audio["prompt"] == rendered["audio"]
    video = np.asarray(av["multimodal_data"]["video"])
    assert video.shape == (6, 72, 96, 3) and video.dtype == np.uint8
    assert np.asarray(av["multimodal_data"]["audio"]).shape == (16000,)
    assert av["mm_processor_kwargs"] == {"fps": 4.0, "use_audio_in_video": False}
    assert av["sampling_params"] == {"temperature": 0.0, "max_tokens": 32, "skip_special_tokens": True}
    assert (av["n_inputs"], silent["n_inputs"], audio["n_inputs"]) == (7, 6, 1)

    eos = vllm_engine.eos_ids(spec.path)
    ids = backend.tokenizer.encode(REPLY)
    labeler = f"omni@{video_llm.version_of(spec)}"
    done = {**av, "generated_text": REPLY, "generated_tokens": [*ids, min(eos)], "num_generated_tokens": len(ids) + 1}
    row = vllm_engine.result(done, spec, eos, labeler)
    assert (row["label"], row["rationale"], row["n_inputs"], row["labeler"]) == (
        "happiness", "Her eyes crinkle and the tone is bright.", 7, labeler)  # fmt: skip
    assert row["generated_tokens"] == len(ids) + 1 and row["seconds"] is None
    # a reply that used the whole budget without ending its turn or closing its answer
    short = spec.model_copy(update=dict(max_new_tokens=8))
    cut = {**av, "generated_text": backend.tokenizer.decode(ids[:8]), "generated_tokens": ids[:8],
           "num_generated_tokens": 8}  # fmt: skip
    cut_row = vllm_engine.result(cut, short, eos, labeler)
    assert (cut_row["label"], cut_row["abstain_reason"], cut_row["generated_tokens"]) == (None, "truncated", 8)
    assert labeler != f"omni@{video_llm.version_of(spec.model_copy(update=dict(engine='transformers')))}"
