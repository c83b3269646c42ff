"""The video_llm labeler on GPU nodes: Ray Data LLM batch inference with the vLLM engine (`engine: vllm`).

Same prompt, same parser, same labels rows as the transformers path (`video_llm`): each features row becomes one
vLLM request (the chat rendered through the checkpoint's own template with its placeholders left for vLLM's
processor to expand, the frames as a uint8 [T, H, W, 3] array, the 16 kHz audio track as float32 samples, greedy
sampling with `max_new_tokens`), and each reply becomes one labels row through `video_llm.to_result`. Rows with
nothing the model can take never reach the engine: they are abstentions (`no_frames`) on the CPU side.

Needs the `llm` extra (`pip install 'emopipe[llm]'`: ray[llm] and vLLM, pinned to the version Ray 2.60's own `llm`
extra pins) on the GPU nodes; `check` fails in one line where vLLM is missing. Ray Data LLM builds its own engine
actors (one per `label_clips.num_workers`, each holding `engine_kwargs.tensor_parallel_size` GPUs); the
request/reply functions here are plain functions over rows and are tested without vLLM. This path has not run
here: the machines that built it have no GPU and cannot install vLLM.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from emopipe.config import LabelerSpec
from emopipe.labelers.base import LabelResult
from emopipe.labelers.llm_output import R1_OMNI_PROMPT

# vLLM's own defaults for what this labeler sends: one video and one audio item per request, reproducible runs.
ENGINE_DEFAULTS: dict[str, Any] = {"limit_mm_per_prompt": {"video": 1, "audio": 1}, "seed": 0}
LABEL_COLUMNS = ("clip_id", "corpus", "sha256")


def prompts(spec: LabelerSpec) -> dict[str, str]:
    """The rendered prompt for each input layout ("video+audio", "video", "audio"), as vLLM is given it.

    The checkpoint's tokenizer and chat template render the same chat as the transformers path; the multimodal
    placeholders stay one per item (vLLM's processor expands them).
    """
    from transformers import AutoTokenizer

    from emopipe.labelers import video_llm

    tokenizer = AutoTokenizer.from_pretrained(spec.path, local_files_only=True)
    template = video_llm.chat_template(spec.path)
    question = spec.prompt or R1_OMNI_PROMPT
    layouts = {"video+audio": (True, True), "video": (True, False), "audio": (False, True)}
    return {
        name: video_llm.render_prompt(tokenizer, template, video_llm.messages(question, spec.system_prompt, v, a))
        for name, (v, a) in layouts.items()
    }


def layout(clip: Any) -> str:
    """The prompt layout of a clip: which of its frames and audio the model is given."""
    return "+".join(name for name, part in (("video", clip.frames), ("audio", clip.audio)) if part is not None)


def request(row: dict[str, Any], rendered: dict[str, str], spec: LabelerSpec, takes_audio: bool) -> dict[str, Any]:
    """One features row -> one Ray Data LLM request row (the clip's key columns carried through).

    Args:
        row: a features row with usable inputs (see `usable`).
        rendered: `prompts(spec)`.
        spec: the labeler.
        takes_audio: the checkpoint's family takes audio.
    """
    from emopipe.labelers import video_llm

    clip = video_llm.to_clip(row, spec.use_audio and takes_audio)
    if clip is None:
        raise ValueError(f"{row.get('clip_id')}: no frames or audio to send (filter rows with `usable` first)")
    data: dict[str, Any] = {}
    if clip.frames is not None:
        data["video"] = clip.frames
    if clip.audio is not None:
        data["audio"] = clip.audio  # a bare array is taken at the processor's rate: 16 kHz, as extracted
    mm_kwargs: dict[str, Any] = {"fps": clip.fps}
    if takes_audio:
        mm_kwargs["use_audio_in_video"] = False
    return {
        **{k: row[k] for k in LABEL_COLUMNS},
        "prompt": rendered[layout(clip)],
        "multimodal_data": data,
        "mm_processor_kwargs": mm_kwargs,
        # greedy, as the transformers path; the token budget is the same max_new_tokens
        "sampling_params": {"temperature": 0.0, "max_tokens": spec.max_new_tokens, "skip_special_tokens": True},
        "n_inputs": video_llm.n_inputs(clip),
    }


def usable(row: dict[str, Any], spec: LabelerSpec, takes_audio: bool) -> bool:
    """Whether a features row has frames, or audio the model is given."""
    from emopipe.labelers.video_llm import as_list

    pcm = row.get("audio_pcm16")
    has_audio = pcm is not None and len(pcm) > 0 and spec.use_audio and takes_audio
    has_frames = any(f is not None for f in as_list(row.get("frames_jpeg")))
    return has_frames or has_audio


def finished(tokens: list[int], eos: set[int], max_new_tokens: int) -> bool:
    """Whether a reply ended on its own: it ends with an end-of-turn token, or is shorter than the budget."""
    return bool(tokens) and tokens[-1] in eos or len(tokens) < max_new_tokens


def seconds(metrics: dict[str, Any] | None) -> float | None:
    """The engine's time for one request (first scheduled to finished), when vLLM reports it."""
    if not metrics:
        return None
    start = metrics.get("first_scheduled_time") or metrics.get("arrival_time")
    end = metrics.get("finished_time") or metrics.get("last_token_time")
    return float(end) - float(start) if start is not None and end is not None else None


def result(row: dict[str, Any], spec: LabelerSpec, eos: set[int], labeler: str) -> dict[str, Any]:
    """One Ray Data LLM reply row -> one labels row, parsed as the transformers path parses its replies.

    Args:
        row: the reply: `generated_text`, `generated_tokens`, `num_generated_tokens`, optional `metrics`, and the
            carried `clip_id`, `corpus`, `sha256`, `n_inputs`.
        spec: the labeler.
        eos: the checkpoint's end-of-turn token ids.
        labeler: `name@version`.
    """
    from emopipe import schemas
    from emopipe.labelers import video_llm

    tokens = [int(t) for t in (row.get("generated_tokens") or [])]
    n = int(row.get("num_generated_tokens") or len(tokens))
    gen = video_llm.Generation(str(row.get("generated_text") or ""), n, finished(tokens, eos, spec.max_new_tokens))
    res = video_llm.to_result(gen, int(row["n_inputs"]), seconds(row.get("metrics")), schemas.taxonomy())
    return _row(row, labeler, res)


def _row(row: dict[str, Any], labeler: str, res: LabelResult) -> dict[str, Any]:
    return {
        **{k: row[k] for k in LABEL_COLUMNS},
        "labeler": labeler,
        **{k: v for k, v in vars(res).items() if k != "extra"},
    }


def eos_ids(path: str) -> set[int]:
    """The checkpoint's end-of-turn token ids (generation_config.json, else config.json)."""
    for name in ("generation_config.json", "config.json"):
        file = pathlib.Path(path) / name
        if file.is_file():
            value = json.loads(file.read_text(encoding="utf-8")).get("eos_token_id")
            if value is not None:
                return set(value if isinstance(value, list) else [value])
    return set()


def processor_config(spec: LabelerSpec, num_workers: int) -> Any:
    """The Ray Data LLM vLLM processor config: the checkpoint, its engine settings, our own templating."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine = {**ENGINE_DEFAULTS, "max_model_len": 32768, **spec.engine_kwargs}
    if spec.dtype != "auto":
        engine["dtype"] = spec.dtype
    return vLLMEngineProcessorConfig(
        model_source=spec.path,
        engine_kwargs=engine,
        batch_size=spec.batch_size,
        concurrency=num_workers,
        # the prompt is rendered here with the checkpoint's template, and vLLM tokenizes and detokenizes it
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
    )


def label_dataset(rows: Any, spec: LabelerSpec, num_workers: int = 1) -> Any:
    """Label a Ray Dataset of features rows with vLLM: a Ray Dataset of labels rows, one per input row.

    Args:
        rows: features rows (the columns `video_llm` reads and the clip keys).
        spec: a video_llm labeler with `engine: vllm`.
        num_workers: vLLM engine replicas (each holds `engine_kwargs.tensor_parallel_size` GPUs).
    """
    import pyarrow as pa
    from ray.data.llm import build_processor

    from emopipe import schemas
    from emopipe.labelers import video_llm

    video_llm.require_vllm()
    takes_audio = video_llm.family_of(spec.path).audio
    labeler = f"{spec.name}@{video_llm.version_of(spec)}"
    rendered, eos = prompts(spec), eos_ids(spec.path)
    labels = schemas.load_schema("labels")

    def conform(batch: pa.Table) -> pa.Table:
        return schemas.from_rows(batch.to_pylist(), labels)

    def abstain(row: dict[str, Any]) -> dict[str, Any]:
        return _row(row, labeler, LabelResult(abstain_reason="no_frames", n_inputs=0))

    processor = build_processor(
        processor_config(spec, num_workers),
        preprocess=lambda row: request(row, rendered, spec, takes_audio),
        postprocess=lambda row: result(row, spec, eos, labeler),
    )
    sent = processor(rows.filter(lambda row: usable(row, spec, takes_audio)))
    skipped = rows.filter(lambda row: not usable(row, spec, takes_audio)).map(abstain)
    return sent.union(skipped).map_batches(conform, batch_format="pyarrow")
