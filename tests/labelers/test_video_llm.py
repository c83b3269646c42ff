"""The video-LLM labeler through real transformers models: tiny Qwen checkpoints of every supported family, built
from a config with random weights and saved to a folder, loaded back by the labeler, batched, generated, parsed.

A random model writes garbage, so most replies abstain; `tiny_models.steer` makes a checkpoint's greedy reply a
known R1-Omni answer through its own generation_config.json (the model still computes every step), which exercises
the parse of real answers and the token budget."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from emopipe.config import LabelerSpec
from emopipe.labelers import video_llm
from emopipe.labelers.base import LabelerError, check, make_labeler
from emopipe.labelers.llm_output import ABSTAIN_REASONS, R1_OMNI_PROMPT
from emopipe.stages.audio import to_pcm16
from emopipe.stages.extract import encode_jpeg
from tests import tiny_models
from tests.corpora import face_frames, tone

FAMILIES = ["qwen2_5_omni_thinker", "qwen2_5_vl", "qwen3_vl", "qwen3_omni_moe_thinker"]
AUDIO_FAMILIES = {"qwen2_5_omni_thinker", "qwen3_omni_moe_thinker"}
REPLY = "<think>The woman smiles and her voice is bright.</think><answer>happy</answer>"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("video-llms")
    return {name: getattr(tiny_models, name)(root / name) for name in FAMILIES}


@pytest.fixture(scope="module")
def steered(checkpoints, tmp_path_factory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("steered")
    out = {}
    for name in ("qwen2_5_omni_thinker", "qwen2_5_vl"):
        out[name] = tiny_models.steer(pathlib.Path(shutil.copytree(checkpoints[name], root / name)), REPLY)
    return out


def _row(clip_id: str, n_frames: int | None, audio_s: float | None, width: int = 96) -> dict:
    frames = [encode_jpeg(f, 90) for f in face_frames(n_frames, (width, 72))] if n_frames else None
    return {
        "clip_id": clip_id,
        "corpus": "test",
        "sha256": clip_id * 8,
        "frames_jpeg": frames,
        "frame_times_s": [0.25 * i for i in range(n_frames)] if n_frames else None,
        "audio_pcm16": to_pcm16(tone(audio_s, hz=220, rate=16000)) if audio_s else None,
    }


ROWS = [
    _row("av", 6, 1.0),  # frames and audio
    _row("silent", 6, None),  # a video without an audio track
    _row("audio", None, 1.0),  # an audio-only clip (RAVDESS .wav)
    _row("empty", None, None),  # a clip whose extraction failed
]


def _spec(path, **kw) -> LabelerSpec:
    return LabelerSpec(**{"name": "llm", "kind": "video_llm", "path": str(path), "max_new_tokens": 12, **kw})


def _content(results) -> list[dict]:
    """Everything a labels row says about the clip, without the wall-clock seconds."""
    return [{k: v for k, v in vars(r).items() if k != "seconds"} for r in results]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_labels_frames_and_audio_and_abstains_on_garbage(checkpoints, family):
    labeler = make_labeler(_spec(checkpoints[family]))
    av, silent, audio, empty = labeler.label_batch(ROWS)
    hears = family in AUDIO_FAMILIES
    assert av.n_inputs == 6 + hears  # the audio track counts as one input where the model takes it
    assert silent.n_inputs == 6  # no audio: labelled from the frames, not an error
    for res in (av, silent) + ((audio,) if hears else ()):
        # a random model's reply is no emotion word: an abstention with the raw text kept, never a guess
        assert res.label is None and res.abstain_reason in ABSTAIN_REASONS, res
        assert res.raw_output and res.error is None
        assert 1 <= res.generated_tokens <= 12 and res.seconds >= 0
        if res.abstain_reason == "truncated":  # cut by the budget, not ended by the model
            assert res.generated_tokens == 12
    if hears:
        assert audio.n_inputs == 1  # an audio-only clip is heard
    else:
        assert (audio.abstain_reason, audio.n_inputs, audio.generated_tokens) == ("no_frames", 0, None)
    assert (empty.label, empty.abstain_reason, empty.n_inputs) == (None, "no_frames", 0)
    assert labeler.labeler == f"llm@{video_llm.version_of(labeler.spec)}"


@pytest.mark.parametrize("family", ["qwen2_5_omni_thinker", "qwen2_5_vl"])
def test_a_steered_reply_is_parsed_into_label_and_rationale(steered, family):
    labeler = make_labeler(_spec(steered[family], max_new_tokens=64))
    av, silent = labeler.label_batch(ROWS[:2])
    n_tokens = len(labeler.backend.tokenizer.encode(REPLY)) + 1  # and the end-of-turn token
    for res in (av, silent):
        assert (res.label, res.abstain_reason) == ("happiness", None)
        assert res.rationale == "The woman smiles and her voice is bright."
        assert res.raw_output == REPLY
        assert res.generated_tokens == n_tokens


def test_a_reply_cut_by_the_token_budget_abstains_as_truncated(steered):
    path = steered["qwen2_5_omni_thinker"]
    n = len(make_labeler(_spec(path)).backend.tokenizer.encode(REPLY))
    cut = make_labeler(_spec(path, max_new_tokens=n - 1)).label_batch(ROWS[:1])[0]  # "...<answer>happy</" at most
    assert (cut.label, cut.abstain_reason, cut.generated_tokens) == (None, "truncated", n - 1)
    assert cut.rationale == "The woman smiles and her voice is bright."
    assert REPLY.startswith(cut.raw_output)
    # the closing tag made it, but not the end of turn: the answer is whole, so it counts
    whole = make_labeler(_spec(path, max_new_tokens=n)).label_batch(ROWS[:1])[0]
    assert (whole.label, whole.abstain_reason, whole.generated_tokens) == ("happiness", None, n)


@pytest.mark.parametrize("family", ["qwen2_5_omni_thinker", "qwen3_vl"])
def test_a_batch_of_4_gives_the_rows_of_4_batches_of_1_and_reruns_agree(checkpoints, family):
    rows = [_row("a", 6, 1.5), _row("b", 4, None, width=128), _row("c", 8, 0.5), _row("d", 5, 2.0, width=80)]
    spec = _spec(checkpoints[family], batch_size=4)
    four = make_labeler(spec).label_batch(rows)
    ones = make_labeler(spec.model_copy(update=dict(batch_size=1))).label_batch(rows)
    again = make_labeler(spec).label_batch(rows)  # a fresh load: greedy decoding, same rows
    assert _content(four) == _content(ones) == _content(again)
    assert len({r.raw_output for r in four}) > 1  # different clips, different (garbage) replies


def test_a_full_omni_checkpoint_loads_only_its_thinker(checkpoints, tmp_path):
    full = tiny_models.qwen2_5_omni(tmp_path / "omni")
    assert json.loads((full / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    thinker_only = make_labeler(_spec(checkpoints["qwen2_5_omni_thinker"])).label_batch(ROWS)
    labeler = make_labeler(_spec(full))
    assert _content(labeler.label_batch(ROWS)) == _content(thinker_only)
    assert not hasattr(labeler.backend.model, "talker")


def test_the_version_changes_with_the_prompt_and_template_but_not_the_batch_size(checkpoints, tmp_path):
    from emopipe.labelers.stage import labeler_version

    path = pathlib.Path(shutil.copytree(checkpoints["qwen2_5_vl"], tmp_path / "vl"))
    spec = _spec(path)
    base = video_llm.version_of(spec)
    assert labeler_version(spec) == f"llm@{base}" == make_labeler(spec).labeler  # computed without the model too
    assert base.startswith(video_llm.folder_version(path) + ".")
    assert video_llm.version_of(spec.model_copy(update=dict(batch_size=1))) == base
    changed = [
        spec.model_copy(update=dict(prompt=R1_OMNI_PROMPT + " Answer in one word.")),
        spec.model_copy(update=dict(system_prompt="You are an emotion expert.")),
        spec.model_copy(update=dict(max_new_tokens=13)),
        spec.model_copy(update=dict(dtype="bfloat16")),
        spec.model_copy(update=dict(use_audio=False)),
    ]
    assert len({video_llm.version_of(s) for s in changed} | {base}) == len(changed) + 1
    (path / "chat_template.jinja").write_text((path / "chat_template.jinja").read_text().replace("helpful", "kind"))
    assert video_llm.version_of(spec) != base  # the template is not one of folder_version's files, yet it counts


def test_the_prompt_is_r1_omnis_with_the_video_then_the_audio(checkpoints):
    backend = make_labeler(_spec(checkpoints["qwen2_5_omni_thinker"])).backend
    chat = video_llm.messages(R1_OMNI_PROMPT, None, video=True, audio=True)
    text = video_llm.render_prompt(backend.tokenizer, backend.template, chat)
    assert text.endswith(f"<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>"
                         f"{R1_OMNI_PROMPT}<|im_end|>\n<|im_start|>assistant\n")  # fmt: skip
    clip = video_llm.to_clip(ROWS[0], audio=True)
    inputs = backend.inputs([clip], R1_OMNI_PROMPT, None)
    ids = inputs["input_ids"][0].tolist()
    audio_id, video_id = backend.tokenizer.convert_tokens_to_ids(["<|AUDIO|>", "<|VIDEO|>"])
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert ids.count(video_id) == t * h * w // 4  # one token per 2x2 merged patch
    assert ids.count(audio_id) == 25  # 1 s of 16 kHz audio: 100 mel frames, 4x downsampled
    assert inputs["video_second_per_grid"].tolist() == [pytest.approx(2 / 4.0)]  # 2 frames per grid at 4 fps


def test_frames_are_cut_into_qwen_patches():
    proc = video_llm.FramesVideoProcessor(patch_size=14, temporal_patch_size=2, merge_size=2,
                                          bounds=(4 * 28 * 28, 6 * 28 * 28), mean=(0.0,) * 3, std=(1.0,) * 3,
                                          rule="frame")  # fmt: skip
    frames = np.zeros((3, 56, 84, 3), np.uint8)
    frames[:, :28, :28, 0] = 255  # the top-left merged block of every frame is red
    patches, grid = proc.patches(frames)
    assert grid == [2, 4, 6]  # 3 frames padded to 4; 56x84 already within the bounds
    assert patches.shape == (2 * 4 * 6, 3 * 2 * 14 * 14)
    first = patches[:4].reshape(4, 3, 2, 14, 14)  # the 4 patches of the first merged block, frames 0-1
    assert np.allclose(first[:, 0], 1.0) and np.allclose(first[:, 1:], 0.0)
    assert np.allclose(patches[4:].reshape(-1, 3, 2, 14, 14)[: 4 * 5, 0], 0.0)  # the rest of time step 0
    assert video_llm.target_size(16, 224, 398, factor=28, bounds=(128 * 28 * 28, 768 * 28 * 28), rule="frame") == (
        252, 448)  # fmt: skip
    # Qwen3-VL bounds frames x pixels: 16 frames of 224x398 is above 768 patches of 32 px per clip
    h, w = video_llm.target_size(16, 224, 398, factor=32, bounds=(128 * 32 * 32, 768 * 32 * 32), rule="clip")
    assert h * w * 16 <= 768 * 32 * 32 and h % 32 == w % 32 == 0


# --- bad input: one line naming the folder and what is wrong, before anything loads ---------------------------------


@pytest.mark.parametrize(
    ("remove", "words"),
    [
        (["model.safetensors"], "weights"),
        (["tokenizer.json"], "tokenizer"),
        (["chat_template.jinja"], "chat template"),
        (["preprocessor_config.json"], "preprocessor_config.json"),
        (["model.safetensors", "tokenizer.json"], "weights (*.safetensors or *.bin); tokenizer"),
        (["config.json"], "missing config.json"),
    ],
)
def test_a_checkpoint_missing_files_is_refused_naming_the_folder_and_the_files(checkpoints, tmp_path, remove, words):
    path = pathlib.Path(shutil.copytree(checkpoints["qwen2_5_omni_thinker"], tmp_path / "ckpt"))
    for name in remove:
        (path / name).unlink()
    with pytest.raises(LabelerError) as err:
        check(_spec(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith("label_clips.labelers[llm]: checkpoint ")
    assert str(path) in message and words in message
    with pytest.raises(LabelerError):  # the labeler itself refuses the same way, before loading anything
        make_labeler(_spec(path))


def test_an_unsupported_architecture_or_missing_folder_is_refused(tmp_path):
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama",
                                                                 "architectures": ["LlamaForCausalLM"]}))  # fmt: skip
    with pytest.raises(LabelerError, match=r"unsupported architecture model_type='llama' \(LlamaForCausalLM\)"):
        check(_spec(tmp_path / "llama"))
    with pytest.raises(LabelerError, match="does not exist"):
        check(_spec(tmp_path / "nowhere"))


def test_the_vllm_engine_without_vllm_is_one_clear_line(checkpoints):
    pytest.importorskip("ray")
    if video_llm.importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(LabelerError) as err:
        check(_spec(checkpoints["qwen2_5_omni_thinker"], engine="vllm"))
    assert str(err.value) == (
        "label_clips.labelers[llm]: engine vllm needs vLLM, which is not installed: pip install 'emopipe[llm]' on GPU "
        "nodes"
    )


def test_the_cli_exits_2_on_a_broken_checkpoint_before_ray_starts(tmp_path, capsys):
    import ray

    from emopipe import cli
    from tests.conftest import write_params

    broken = tmp_path / "r1-omni"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "humanomni_qwen2"}))
    labelers = [{"name": "r1", "kind": "video_llm", "path": str(broken)}]
    params = write_params(tmp_path, label_clips={"labelers": labelers, "fusion_labeler": "r1"})
    assert cli.main(["-q", "--params", str(params), "label", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emopipe label: label_clips.labelers[r1]: checkpoint ") and "\n" not in err
    assert "humanomni_qwen2" in err and "model_class" in err
    assert not ray.is_initialized()


# --- the plug-in point (R1-Omni / HumanOmni code that transformers does not ship) -----------------------------------


class EchoPlugin:
    """A plug-in as a HumanOmni wrapper would be written: it reports what it was shown and answers from it."""

    takes_audio = True
    version = "echo-1"

    def __init__(self, path: str, device: str, dtype: str) -> None:
        self.path, self.device, self.dtype = path, device, dtype
        self.calls: list[int] = []

    def generate(self, clips, prompt, system_prompt, max_new_tokens):
        self.calls.append(len(clips))
        out = []
        for clip in clips:
            frames = 0 if clip.frames is None else len(clip.frames)
            heard = 0.0 if clip.audio is None else clip.audio.size / 16000
            answer = "happy" if clip.audio is not None else "contemptuous"
            asked = prompt.split(";")[0]  # the prompt itself names the tags, which would end the reasoning early
            text = f"<think>{frames} frames at {clip.fps:.1f} fps, {heard:.1f} s of audio; {asked}</think>"
            out.append(video_llm.Generation(f"{text}<answer>{answer}</answer>", 7, True))
        return out


def test_a_plugin_class_runs_through_the_same_labeler_prompt_and_parser(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    spec = _spec(tmp_path, model_class="tests.labelers.test_video_llm:EchoPlugin", batch_size=2)
    labeler = make_labeler(spec)
    av, silent, audio, empty = labeler.label_batch(ROWS)
    assert labeler.backend.calls == [2, 1]  # batches of batch_size; the empty clip never reaches the model
    assert (av.label, av.n_inputs, av.generated_tokens) == ("happiness", 7, 7)
    assert av.rationale == "6 frames at 4.0 fps, 1.0 s of audio; As an emotional recognition expert"
    assert (silent.label, silent.n_inputs) == ("contempt", 6)  # R1-Omni's word for MAFW's contempt
    assert (audio.label, audio.n_inputs) == ("happiness", 1)
    assert empty.abstain_reason == "no_frames"
    assert labeler.backend.path == str(tmp_path) and labeler.backend.dtype == "auto"
    other = video_llm.version_of(spec.model_copy(update=dict(model_class="tests.labelers.test_video_llm:OtherPlugin")))
    assert labeler.version != other  # the plug-in and its own version are part of the labeler version


class OtherPlugin(EchoPlugin):
    version = "other-1"


def test_a_plugin_registered_as_an_entry_point_is_found_by_name(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "emopipe_echo_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: emopipe-echo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[emopipe.video_llm]\necho = tests.labelers.test_video_llm:EchoPlugin\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert video_llm.load_plugin("echo") is EchoPlugin
    with pytest.raises(LabelerError, match=r"model_class 'humanomni' is neither .* \(echo\)"):
        video_llm.load_plugin("humanomni")
    with pytest.raises(LabelerError, match="needs a `generate` method"):
        video_llm.load_plugin("tests.labelers.test_video_llm:ROWS")
    with pytest.raises(LabelerError, match="cannot import"):
        video_llm.load_plugin("humanomni.model:HumanOmniQwen2ForCausalLM")


# --- rows written: the labels table, its gate, its digest -----------------------------------------------------------


def test_label_rows_pass_the_labels_gate_and_the_digest_ignores_seconds(steered, checkpoints, tmp_path):
    import pyarrow as pa

    from emopipe.config import Params
    from emopipe.dataset import Dataset, DatasetWriter
    from emopipe.labelers.stage import LabelStage, labeler_version
    from emopipe.quality.validate import validate_tables

    specs = (
        _spec(steered["qwen2_5_omni_thinker"], name="omni", max_new_tokens=64),
        _spec(steered["qwen2_5_vl"], name="cut", max_new_tokens=4),  # every reply truncated
        _spec(checkpoints["qwen3_vl"], name="garbage"),
    )
    parts = []
    for spec in specs:  # each labeler is its own stage; its workers call process() on batches of features rows
        stage = LabelStage(spec, batch_size=4)
        stage.setup()
        parts.append(stage.process(pa.Table.from_pylist(ROWS).select(list(stage.input_columns))))
    table = pa.concat_tables(parts)
    rows = {(r["clip_id"], r["labeler"].split("@")[0]): r for r in table.to_pylist()}
    assert rows[("av", "omni")]["label"] == "happiness" and rows[("av", "omni")]["generated_tokens"] > 0
    assert rows[("av", "omni")]["labeler"] == labeler_version(specs[0])
    assert {rows[(c, "cut")]["abstain_reason"] for c in ("av", "silent")} == {"truncated"}
    result = validate_tables({"labels": table}, Params(work_dir=tmp_path), run_name="t")
    assert result.success, result.blocking_failures
    # the same labels measured at another speed are the same dataset
    seconds = table.column_names.index("seconds")
    slower = table.set_column(seconds, "seconds", pa.array([9.0] * len(table), pa.float32()))
    digests = []
    for name, labels in (("a", table), ("b", slower)):
        with DatasetWriter(tmp_path / name, corpora={"test": str(tmp_path)}) as writer:
            writer.write_table("labels", labels)
            writer.commit()
        digests.append(Dataset.open(tmp_path / name).digest)
    assert digests[0] == digests[1]
    other = table.set_column(table.column_names.index("label"), "label", pa.array([None] * len(table), pa.string()))
    with DatasetWriter(tmp_path / "c", corpora={"test": str(tmp_path)}) as writer:
        writer.write_table("labels", other)
        writer.commit()
    assert Dataset.open(tmp_path / "c").digest != digests[0]  # while the labels themselves count


def test_params_yaml_settings_of_a_video_llm_labeler(tmp_path):
    import yaml

    from emopipe.config import load_params

    item = {"name": "qwen-omni", "kind": "video_llm", "path": "models/omni", "max_new_tokens": 256, "batch_size": 4,
            "dtype": "bfloat16", "engine": "vllm", "engine_kwargs": {"tensor_parallel_size": 2}, "prompt": None,
            "system_prompt": "You are an emotion expert.", "use_audio": False}  # fmt: skip
    section = {"labelers": [item], "fusion_labeler": "qwen-omni"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"label_clips": section}))
    spec = load_params(tmp_path / "params.yaml").label_clips.labelers[0]
    assert (spec.path, spec.batch_size, spec.dtype, spec.engine) == (str(tmp_path / "models/omni"), 4, "bfloat16",
                                                                     "vllm")  # fmt: skip
    assert spec.engine_kwargs == {"tensor_parallel_size": 2} and spec.use_audio is False
    for bad, words in [
        ({"dtype": "fp8"}, "dtype: must be one of"),
        ({"engine": "tgi"}, "engine: must be one of"),
        ({"batch_size": 0}, "batch_size: must be >= 1"),
        ({"prompt": " "}, "prompt: must not be blank"),
        ({"engine": "vllm", "model_class": "a:B"}, "plug-in runs on the transformers engine only"),
    ]:
        with pytest.raises(ValueError, match=words):
            LabelerSpec(**{"name": "x", "kind": "video_llm", "path": "p", **bad})
    with pytest.raises(ValueError, match="engine: applies to kind video_llm only"):
        LabelerSpec(name="v", kind="hf_video", path="p", engine="vllm")
