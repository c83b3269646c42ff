"""Video-LLM labeler, prompted as R1-Omni: a local multimodal chat checkpoint that watches the clip and listens to it.

The model sees the clip's sampled frames (features `frames_jpeg`) and, where it takes audio, its 16 kHz track
(`audio_pcm16`), with R1-Omni's prompt. Its `<think>` text is kept as the rationale, its `<answer>` mapped onto the
taxonomy by `llm_output.parse_llm_output`; an unparseable, out-of-taxonomy or cut-off answer is an abstention with
the raw output kept, never a guess. Decoding is greedy, so a rerun gives the same labels.

Which model code runs is decided by the checkpoint's config.json `model_type` (`FAMILIES`): Qwen2.5-Omni and
Qwen3-Omni (their thinker only: text out, the talker is never loaded; frames and audio in), Qwen2.5-VL and Qwen3-VL
(frames only). Checkpoints whose code is not in transformers (R1-Omni and HumanOmni ship their own) run through a
plug-in named in `model_class` (see `VideoLLMBackend`); the labeler, prompt, parser and output rows stay the same.

Clips are labelled in batches of `batch_size` (left padding, one `generate` per batch); per clip the labels row
records the generated tokens and its share of the batch's seconds. The frames are already sampled by
extract_features, so this module does not sample again: it resizes them to the checkpoint's patch grid
(`FramesVideoProcessor`, numpy and PIL; transformers' own video processors need torchvision, which this stack
cannot install) and hands them, with the audio, to the family's transformers processor, which builds the prompt's
placeholder tokens, timestamps and audio features exactly as it does for the model's own inputs.

The labeler version is the checkpoint folder's hash plus a hash of everything else that changes the replies: the
prompt, the system prompt, the chat template, the token budget, the dtype, the engine and the frame preprocessing.
A new prompt therefore relabels every clip. On GPU nodes the same labeler can run through Ray Data LLM and vLLM
instead (`engine: vllm`, `emopipe.labelers.vllm_engine`).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import pathlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emopipe.config import LabelerSpec
from emopipe.labelers.base import Labeler, LabelerError, LabelResult, folder_version
from emopipe.labelers.llm_output import R1_OMNI_PROMPT, parse_llm_output

log = logging.getLogger(__name__)

# Bump when FramesVideoProcessor or the message layout changes what the model is shown: it is part of the version.
FRAMES_VERSION = "1"
# Entry-point group under which installed packages register video-LLM plug-ins (name -> "module:Class").
ENTRY_POINT_GROUP = "emopipe.video_llm"
# The frame rate Qwen's processors assume for pre-sampled frames when nothing better is known.
DEFAULT_FPS = 2.0
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Family:
    """How one transformers model family is loaded and fed.

    Args:
        model_class: the transformers class that loads the checkpoint.
        processor_class: the transformers processor class that builds its inputs.
        thinker: the checkpoint is a full Omni model (thinker + talker + vocoder): only its thinker, which writes
            text, is loaded (`model_class` with the full config's thinker_config, weights under `thinker.`).
        audio: the model takes an audio track.
        patch_size: default vision patch size (the checkpoint's video_preprocessor_config.json wins).
        resize: "frame" (Qwen2-VL: the pixel bounds apply per frame) or "clip" (Qwen3-VL: to frames x pixels).
        mean: default normalisation mean.
        std: default normalisation std.
        generate_kwargs: extra keyword arguments of the model's `generate`.
    """

    model_class: str
    processor_class: str
    patch_size: int
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    thinker: bool = False
    audio: bool = False
    generate_kwargs: tuple[tuple[str, Any], ...] = ()


_QWEN2_PIXELS = {"patch_size": 14, "resize": "frame", "mean": OPENAI_CLIP_MEAN, "std": OPENAI_CLIP_STD}
_QWEN3_PIXELS = {"patch_size": 16, "resize": "clip", "mean": HALF, "std": HALF}
# Qwen3-Omni reads frames with Qwen2-VL's video processor (per-frame bounds) and Qwen3's patch size
_OMNI3_PIXELS = {**_QWEN3_PIXELS, "resize": "frame"}
# audio as its own input after the video, not interleaved with it (R1-Omni's layout)
_OMNI = {"audio": True, "generate_kwargs": (("use_audio_in_video", False),)}
# config.json model_type -> family
FAMILIES: dict[str, Family] = {
    "qwen2_5_omni": Family(
        "Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniProcessor", thinker=True, **_OMNI, **_QWEN2_PIXELS
    ),
    "qwen2_5_omni_thinker": Family(
        "Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniProcessor", **_OMNI, **_QWEN2_PIXELS
    ),
    "qwen3_omni_moe": Family(
        "Qwen3OmniMoeThinkerForConditionalGeneration", "Qwen3OmniMoeProcessor", thinker=True, **_OMNI, **_OMNI3_PIXELS
    ),
    "qwen3_omni_moe_thinker": Family(
        "Qwen3OmniMoeThinkerForConditionalGeneration", "Qwen3OmniMoeProcessor", **_OMNI, **_OMNI3_PIXELS
    ),
    "qwen2_5_vl": Family("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor", **_QWEN2_PIXELS),
    "qwen3_vl": Family("Qwen3VLForConditionalGeneration", "Qwen3VLProcessor", **_QWEN3_PIXELS),
}
# Pixel bounds of a family's video processor (transformers' processor defaults), by patch size.
_DEFAULT_SIZE = {14: (128 * 28 * 28, 768 * 28 * 28), 16: (128 * 32 * 32, 768 * 32 * 32)}
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
_TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",))


# --- what a model is given and what it returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One clip as a video LLM is shown it.

    Args:
        frames: the sampled frames, uint8 RGB [T, H, W, 3]; None for an audio-only clip.
        fps: the frame rate of the sampled frames (from their timestamps; `DEFAULT_FPS` when unknown).
        audio: the audio track as float32 samples at 16 kHz; None when the clip has none or the model is not given it.
    """

    frames: np.ndarray | None
    fps: float
    audio: np.ndarray | None


@dataclass(frozen=True)
class Generation:
    """One reply.

    Args:
        text: the decoded reply (special tokens removed).
        n_tokens: tokens generated, the end-of-turn token included.
        finished: the reply ended with an end-of-turn token; False when the token budget ran out first.
    """

    text: str
    n_tokens: int
    finished: bool


class VideoLLMBackend(Protocol):
    """What a video-LLM plug-in provides (`LabelerSpec.model_class`), e.g. for R1-Omni's HumanOmni code.

    The class is constructed once per actor as `Class(path, device, dtype)` (the checkpoint folder, a torch device
    such as "cpu" or "cuda", and the configured dtype name) and must offer:

    - `takes_audio` (class attribute, bool): whether `Clip.audio` is given to it;
    - `generate(clips, prompt, system_prompt, max_new_tokens) -> list[Generation]`: one greedy reply per clip, in
      order; `prompt` is the question (R1-Omni's unless configured), `system_prompt` may be None;
    - optionally `version` (class attribute, str): anything else that changes its replies (its own prompt template,
      preprocessing); it goes into the labeler version, next to the folder's hash.

    The labeler does the rest: decoding the features, batching (`batch_size` clips per call), timing, parsing the
    replies and writing the rows. A plug-in registers under the `emopipe.video_llm` entry-point group, or is named
    directly as "package.module:Class".
    """

    takes_audio: bool

    def generate(
        self, clips: list[Clip], prompt: str, system_prompt: str | None, max_new_tokens: int
    ) -> list[Generation]: ...


# --- the checkpoint folder -----------------------------------------------------------------------------------------


def read_config(path: str | pathlib.Path) -> dict[str, Any]:
    """The checkpoint's config.json as a dict (raises LabelerError naming the folder if it cannot be read)."""
    file = pathlib.Path(path) / "config.json"
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelerError(f"checkpoint {path}: config.json unreadable ({err})") from err


def chat_template(path: str | pathlib.Path) -> str | None:
    """The checkpoint's chat template: chat_template.jinja, chat_template.json, else tokenizer_config.json's."""
    folder = pathlib.Path(path)
    if (jinja := folder / "chat_template.jinja").is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        file = folder / name
        if not file.is_file():
            continue
        try:
            value = json.loads(file.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, list):  # named templates: [{"name": "default", "template": ...}, ...]
            value = next((t.get("template") for t in value if t.get("name") == "default"), None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def load_plugin(name: str) -> type:
    """The plug-in class named "package.module:Class", or registered under `ENTRY_POINT_GROUP` as `name`."""
    target = name
    if ":" not in name:
        points = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        if name not in points:
            known = ", ".join(sorted(points)) or "none installed"
            raise LabelerError(
                f"model_class {name!r} is neither 'module:Class' nor an {ENTRY_POINT_GROUP} entry point ({known})"
            )
        target = points[name].value
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise LabelerError(f"model_class {name!r}: cannot import {target} ({err})") from err
    if not callable(getattr(cls, "generate", None)) or not isinstance(getattr(cls, "takes_audio", None), bool):
        raise LabelerError(f"model_class {name!r}: {target} needs a `generate` method and a `takes_audio` bool")
    return cls


def family_of(path: str | pathlib.Path) -> Family:
    """The family of a checkpoint folder, from config.json `model_type` (LabelerError if unsupported)."""
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        archs = ", ".join(config.get("architectures") or []) or "none listed"
        raise LabelerError(
            f"checkpoint {path}: unsupported architecture model_type={model_type!r} ({archs}); video_llm loads "
            f"{', '.join(sorted(FAMILIES))}, or set model_class to a plug-in"
        )
    return FAMILIES[model_type]


def check(spec: LabelerSpec) -> None:
    """Fail early, in one line naming the folder and what is wrong, if this labeler cannot be loaded.

    Runs on the driver before any actor starts (label_clips, the CLI's exit 2). Checks the folder, its config.json
    and architecture, weights, tokenizer, chat template and (for audio models) feature-extractor settings, the
    plug-in class when one is named, and that vLLM is installed for `engine: vllm`. It reads file names and small
    JSON files only; no weights are loaded.
    """
    where = f"label_clips.labelers[{spec.name}]"
    folder = pathlib.Path(spec.path or "")
    if not folder.is_dir():
        raise LabelerError(f"{where}: checkpoint folder {folder} does not exist")
    try:
        if spec.model_class:
            load_plugin(spec.model_class)
            return
        if not (folder / "config.json").is_file():
            raise LabelerError(f"checkpoint {folder}: missing config.json")
        family = family_of(folder)
        names = {p.name for p in folder.iterdir()}
        missing = []
        if not any(n.endswith((".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")) for n in names):
            missing.append("weights (*.safetensors or *.bin)")
        if not any(set(group) <= names for group in _TOKENIZER_FILES):
            missing.append("tokenizer (tokenizer.json, or vocab.json + merges.txt)")
        if chat_template(folder) is None:
            missing.append(f"a chat template ({' or '.join(_TEMPLATE_FILES)}, or tokenizer_config.json)")
        if family.audio and "preprocessor_config.json" not in names:
            missing.append("preprocessor_config.json (the audio feature extractor)")
        if missing:
            raise LabelerError(f"checkpoint {folder}: missing {'; '.join(missing)}")
        if spec.engine == "vllm":
            require_vllm()
    except LabelerError as err:
        raise LabelerError(f"{where}: {err}") from None


def require_vllm() -> None:
    """LabelerError unless vLLM and Ray Data LLM can be imported here."""
    if importlib.util.find_spec("vllm") is None:
        raise LabelerError("engine vllm needs vLLM, which is not installed: pip install 'emopipe[llm]' on GPU nodes")


def version_of(spec: LabelerSpec) -> str:
    """The labeler version without loading the model: `<folder hash>.<settings hash>`.

    The settings hash covers what changes the replies besides the weights: prompt, system prompt, chat template,
    token budget, dtype, engine, audio on/off, the frame preprocessing (`FRAMES_VERSION`) and the plug-in with its
    `version`. Batch size is left out: a batch gives the same rows as its clips one by one.
    """
    settings: dict[str, Any] = {
        "prompt": spec.prompt or R1_OMNI_PROMPT,
        "system_prompt": spec.system_prompt,
        "max_new_tokens": spec.max_new_tokens,
        "dtype": spec.dtype,
        "engine": spec.engine,
        "use_audio": spec.use_audio,
        "frames": FRAMES_VERSION,
    }
    if spec.model_class:
        cls = load_plugin(spec.model_class)
        settings["plugin"] = [spec.model_class, str(getattr(cls, "version", ""))]
    else:
        settings["chat_template"] = chat_template(spec.path)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{folder_version(spec.path)}.{digest}"


def messages(prompt: str, system_prompt: str | None, video: bool, audio: bool) -> list[dict[str, Any]]:
    """The chat: an optional system turn, then the user turn with the clip's video, its audio, then the question.

    The order follows R1-Omni's training data (`<video>\\n<audio>\\n` before the question).
    """
    content: list[dict[str, Any]] = []
    if video:
        content.append({"type": "video"})
    if audio:
        content.append({"type": "audio"})
    content.append({"type": "text", "text": prompt})
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*turns, {"role": "user", "content": content}]


def render_prompt(tokenizer: Any, template: str, chat: list[dict[str, Any]]) -> str:
    """The chat rendered through the checkpoint's template, ending with the assistant's turn."""
    return tokenizer.apply_chat_template(chat, chat_template=template, tokenize=False, add_generation_prompt=True)


# --- frames -> patches ---------------------------------------------------------------------------------------------


def _round_by(x: float, factor: int) -> int:
    return max(factor, round(x / factor) * factor)


def target_size(t: int, h: int, w: int, *, factor: int, bounds: tuple[int, int], rule: str) -> tuple[int, int]:
    """Height and width (multiples of `factor`) that keep the aspect ratio within the pixel bounds.

    Qwen2-VL's rule bounds each frame's pixels; Qwen3-VL's bounds frames x pixels ("clip"). Same arithmetic as
    transformers' `smart_resize` of either family.

    Args:
        t: frames (already padded to the temporal patch size).
        h: frame height.
        w: frame width.
        factor: patch size x merge size.
        bounds: (min, max) pixels.
        rule: "frame" or "clip".
    """
    lo, hi = bounds
    if max(h, w) / min(h, w) > 200:
        raise ValueError(f"frame aspect ratio {w}x{h} is beyond 200:1")
    scale_t = t if rule == "clip" else 1
    hb, wb = _round_by(h, factor), _round_by(w, factor)
    if scale_t * hb * wb > hi:
        beta = math.sqrt(scale_t * h * w / hi)
        hb, wb = (
            max(factor, math.floor(h / beta / factor) * factor),
            max(factor, math.floor(w / beta / factor) * factor),
        )
    elif scale_t * hb * wb < lo:
        beta = math.sqrt(lo / (scale_t * h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def _frames_processor_base() -> type:
    from transformers.video_processing_utils import VideoProcessorMixin

    return VideoProcessorMixin


class FramesVideoProcessor:
    """Pre-sampled frames -> `pixel_values_videos` + `video_grid_thw`, as Qwen's video processors lay them out.

    Frames are padded to a multiple of the temporal patch size (last frame repeated), resized with PIL bicubic to
    the patch grid the checkpoint's bounds give (`target_size`), scaled to 0..1, normalised, and cut into
    `temporal x patch x patch` patches in the order the vision tower reads them. Built by `make_frames_processor`,
    which adds transformers' VideoProcessorMixin as a base so the family processors accept it.

    Args:
        patch_size: spatial patch size.
        temporal_patch_size: frames per temporal patch.
        merge_size: patches merged per vision token (per side).
        bounds: (min, max) pixels (`size.shortest_edge`, `size.longest_edge` in transformers' terms).
        mean: normalisation mean per channel.
        std: normalisation std per channel.
        rule: "frame" or "clip" (see `target_size`).
    """

    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def __init__(
        self,
        *,
        patch_size: int,
        temporal_patch_size: int,
        merge_size: int,
        bounds: tuple[int, int],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        rule: str,
    ) -> None:
        super().__init__()  # transformers' VideoProcessorMixin, when make_frames_processor mixed it in
        self.patch_size, self.temporal_patch_size, self.merge_size = patch_size, temporal_patch_size, merge_size
        self.bounds, self.rule = bounds, rule
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)

    def patches(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """One clip's patches [grid_t * grid_h * grid_w, 3 * temporal * patch * patch] and its [t, h, w] grid."""
        from PIL import Image

        tp, ps, ms = self.temporal_patch_size, self.patch_size, self.merge_size
        if pad := -len(frames) % tp:
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
        t, h, w = frames.shape[:3]
        th, tw = target_size(t, h, w, factor=ps * ms, bounds=self.bounds, rule=self.rule)
        resized = np.stack([np.asarray(Image.fromarray(f).resize((tw, th), Image.BICUBIC)) for f in frames])
        x = (resized.astype(np.float32).transpose(0, 3, 1, 2) / 255.0 - self.mean) / self.std  # [T, C, H, W]
        gt, gh, gw = t // tp, th // ps, tw // ps
        x = x.reshape(gt, tp, 3, gh // ms, ms, ps, gw // ms, ms, ps)
        x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # t, h-block, w-block, h-in, w-in, C, temporal, ph, pw
        return np.ascontiguousarray(x.reshape(gt * gh * gw, 3 * tp * ps * ps)), [gt, gh, gw]

    def __call__(self, videos: list[np.ndarray], video_metadata: list[Any] | None = None, **_: Any) -> Any:
        """The family processor's call: every clip's patches concatenated, their grids, and the metadata back."""
        import torch
        from transformers.image_processing_utils import BatchFeature

        out, grids = [], []
        for video in videos:
            patches, grid = self.patches(np.asarray(video))
            out.append(patches)
            grids.append(grid)
        data = {"pixel_values_videos": torch.from_numpy(np.concatenate(out)), "video_grid_thw": torch.tensor(grids)}
        if video_metadata is not None:
            data["video_metadata"] = list(video_metadata)
        return BatchFeature(data=data)

    preprocess = __call__


def make_frames_processor(path: str | pathlib.Path, family: Family) -> FramesVideoProcessor:
    """A frames processor with the checkpoint's settings: video_preprocessor_config.json, else the patch and
    normalisation settings of preprocessor_config.json (whose pixel bounds are for still images) and the family's
    video pixel bounds."""
    folder = pathlib.Path(path)
    settings: dict[str, Any] = {}
    if (video := folder / "video_preprocessor_config.json").is_file():
        settings = json.loads(video.read_text(encoding="utf-8"))
    elif (still := folder / "preprocessor_config.json").is_file():
        keep = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
        settings = {k: v for k, v in json.loads(still.read_text(encoding="utf-8")).items() if k in keep}
    patch = int(settings.get("patch_size", family.patch_size))
    size = settings.get("size") or {}
    lo, hi = _DEFAULT_SIZE.get(patch, _DEFAULT_SIZE[14])
    bounds = (
        int(settings.get("min_pixels", size.get("shortest_edge", lo))),
        int(settings.get("max_pixels", size.get("longest_edge", hi))),
    )
    cls = type("FramesVideoProcessor", (FramesVideoProcessor, _frames_processor_base()), {})
    return cls(
        patch_size=patch,
        temporal_patch_size=int(settings.get("temporal_patch_size", 2)),
        merge_size=int(settings.get("merge_size", 2)),
        bounds=bounds,
        mean=tuple(settings.get("image_mean", family.mean)),
        std=tuple(settings.get("image_std", family.std)),
        rule=family.resize,
    )


# --- the transformers backend --------------------------------------------------------------------------------------


def _dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return "auto"
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class TransformersBackend:
    """A Qwen-family checkpoint through transformers: load once, then batched greedy generation.

    Args:
        path: the checkpoint folder.
        device: torch device.
        dtype: "auto" (the checkpoint's), "float32", "bfloat16" or "float16".
    """

    def __init__(self, path: str, device: str = "cpu", dtype: str = "auto") -> None:
        import transformers
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        self.family = family_of(path)
        self.takes_audio = self.family.audio
        self.device = device
        self.template = chat_template(path)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        self.video = make_frames_processor(path, self.family)
        parts: dict[str, Any] = {
            "image_processor": Qwen2VLImageProcessorPil(
                patch_size=self.video.patch_size, merge_size=self.video.merge_size
            ),
            "video_processor": self.video,
            "tokenizer": self.tokenizer,
            "chat_template": self.template,
        }
        if self.family.audio:
            parts["feature_extractor"] = transformers.AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
        self.processor = _accepting_frames(getattr(transformers, self.family.processor_class))(**parts)
        model_cls = getattr(transformers, self.family.model_class)
        extra: dict[str, Any] = {}
        if self.family.thinker:  # a full Omni checkpoint: load its thinker's weights only, never the talker's
            full = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            extra = {"config": full.thinker_config, "key_mapping": {r"^thinker\.": ""}}
        model = model_cls.from_pretrained(path, local_files_only=True, dtype=_dtype(dtype), **extra)
        self.model = model.to(device).eval()
        self.generation_config = copy.deepcopy(model.generation_config)
        eos = self.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos]) | {self.tokenizer.eos_token_id}
        self.eos.discard(None)

    def inputs(self, clips: list[Clip], prompt: str, system_prompt: str | None) -> dict[str, Any]:
        """The model inputs of a batch: prompts rendered and expanded by the family's processor, left-padded."""
        from transformers.video_utils import VideoMetadata

        texts, videos, metas, audio = [], [], [], []
        for clip in clips:
            chat = messages(prompt, system_prompt, clip.frames is not None, clip.audio is not None)
            texts.append(render_prompt(self.tokenizer, self.template, chat))
            if clip.frames is not None:
                videos.append(clip.frames)
                n = len(clip.frames)
                metas.append(VideoMetadata(total_num_frames=n, fps=clip.fps, frames_indices=list(range(n))))
            if clip.audio is not None:
                audio.append(clip.audio)
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if videos:
            kwargs["videos"] = videos
            kwargs["videos_kwargs"] = {"video_metadata": metas, "return_metadata": True}
        if audio:
            kwargs["audio"] = audio
        inputs = dict(self.processor(**kwargs))
        inputs.pop("video_metadata", None)
        if "video_second_per_grid" in inputs:
            # The Omni processors give every video of a call one fps; each clip's own rate sets its time positions.
            import torch

            per_grid = [self.video.temporal_patch_size / c.fps for c in clips if c.frames is not None]
            inputs["video_second_per_grid"] = torch.tensor(per_grid, dtype=torch.float32)
        return inputs

    def generate(
        self, clips: list[Clip], prompt: str, system_prompt: str | None, max_new_tokens: int
    ) -> list[Generation]:
        """One greedy `generate` over the batch; replies cut at their first end-of-turn token."""
        import torch

        inputs = self.inputs(clips, prompt, system_prompt)
        dtype = self.model.dtype
        moved = {
            k: v.to(self.device, dtype=dtype)
            if torch.is_tensor(v) and v.is_floating_point()
            else v.to(self.device)
            if torch.is_tensor(v)
            else v
            for k, v in inputs.items()
        }
        config = copy.deepcopy(self.generation_config)
        config.update(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=None,
        )
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id
        with torch.inference_mode():
            out = self.model.generate(**moved, generation_config=config, **dict(self.family.generate_kwargs))
        new = out[:, moved["input_ids"].shape[1] :].tolist()
        return [reply(ids, self.eos, max_new_tokens, self.tokenizer) for ids in new]


def reply(ids: list[int], eos: set[int], max_new_tokens: int, tokenizer: Any) -> Generation:
    """A generated id row (padded after the end) -> the reply: cut after its first end-of-turn token.

    Args:
        ids: the generated ids of one row, padding included.
        eos: the end-of-turn token ids.
        max_new_tokens: the budget (a row without an end-of-turn token used all of it).
        tokenizer: decodes the kept ids, special tokens removed.
    """
    end = next((i for i, t in enumerate(ids) if t in eos), None)
    kept = ids[: end + 1] if end is not None else ids[:max_new_tokens]
    return Generation(tokenizer.decode(kept, skip_special_tokens=True), len(kept), end is not None)


def _accepting_frames(base: type) -> type:
    """The family processor class, accepting FramesVideoProcessor as its video processor.

    transformers checks every component against the class it registered for it; the video processor registry is
    only filled when torchvision is installed, which this stack cannot be. The frames processor fills the same role.
    """

    class FramesProcessor(base):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
            if isinstance(argument, FramesVideoProcessor):
                return type(argument)
            return super().check_argument_for_proper_class(argument_name, argument)

    FramesProcessor.__name__ = f"Frames{base.__name__}"
    return FramesProcessor


# --- features rows -> clips ----------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """A list column's value as a list: None -> [], and Ray Data's numpy arrays of row values -> lists."""
    if value is None:
        return []
    return list(value)


def clip_fps(times: list[float] | None, n: int) -> float:
    """The rate of the sampled frames from their timestamps; `DEFAULT_FPS` when there are fewer than two."""
    if not times or n < 2 or len(times) != n:
        return DEFAULT_FPS
    span = float(times[-1]) - float(times[0])
    return (n - 1) / span if span > 0 else DEFAULT_FPS


def to_clip(row: dict[str, Any], audio: bool) -> Clip | None:
    """A features row -> what the model is shown; None when it has nothing the model can take.

    Args:
        row: features columns `frames_jpeg`, `frame_times_s`, `audio_pcm16` (any may be null).
        audio: the model is given audio.
    """
    from emopipe.labelers.base import decode_jpegs
    from emopipe.stages.audio import from_pcm16

    frames = decode_jpegs(as_list(row.get("frames_jpeg")))
    pcm = row.get("audio_pcm16") if audio else None
    track = from_pcm16(bytes(pcm)) if pcm is not None and len(pcm) else None
    if not frames and track is None:
        return None
    stack = np.stack(frames) if frames else None
    times = as_list(row.get("frame_times_s"))
    return Clip(stack, clip_fps(times or None, len(frames)), track)


def n_inputs(clip: Clip) -> int:
    """Inputs shown: the frames, plus 1 when the audio track was given."""
    return (0 if clip.frames is None else len(clip.frames)) + (clip.audio is not None)


def to_result(gen: Generation, inputs: int, seconds: float | None, taxonomy: Any) -> LabelResult:
    """A reply -> the clip's label or abstention (truncated, no_answer, ...), rationale and raw output kept.

    Args:
        gen: the reply.
        inputs: `n_inputs` of the clip.
        seconds: time spent on the clip, None when unknown.
        taxonomy: maps the answer words.
    """
    parsed = parse_llm_output(gen.text, taxonomy, truncated=not gen.finished)
    return LabelResult(
        label=parsed.label,
        rationale=parsed.rationale,
        raw_output=gen.text,
        abstain_reason=parsed.abstain_reason,
        n_inputs=inputs,
        generated_tokens=gen.n_tokens,
        seconds=None if seconds is None else round(seconds, 6),
    )


class VideoLLMLabeler(Labeler):
    """R1-Omni-style labelling with a local video(+audio) chat model (transformers family or plug-in).

    Args:
        spec: `path` is the checkpoint folder; `max_new_tokens`, `batch_size`, `dtype`, `prompt`,
            `system_prompt`, `use_audio` and `model_class` as in LabelerSpec.
        device: torch device.
    """

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        check(spec)
        cls = load_plugin(spec.model_class) if spec.model_class else TransformersBackend
        self.backend: VideoLLMBackend = cls(spec.path, device, spec.dtype)
        self.prompt = spec.prompt or R1_OMNI_PROMPT
        self.version = version_of(spec)

    @classmethod
    def check(cls, spec: LabelerSpec) -> None:
        check(spec)

    @classmethod
    def spec_version(cls, spec: LabelerSpec) -> str | None:
        return version_of(spec)

    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        audio = self.spec.use_audio and bool(self.backend.takes_audio)
        clips = [to_clip(row, audio) for row in rows]
        out: list[LabelResult | None] = [
            None if c is not None else LabelResult(abstain_reason="no_frames", n_inputs=0) for c in clips
        ]
        todo = [i for i, c in enumerate(clips) if c is not None]
        size = self.spec.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            batch = [clips[i] for i in chunk]
            began = time.perf_counter()
            gens = self.backend.generate(batch, self.prompt, self.spec.system_prompt, self.spec.max_new_tokens)
            share = (time.perf_counter() - began) / len(chunk)
            if len(gens) != len(chunk):
                raise RuntimeError(f"{self.labeler}: {len(gens)} replies for {len(chunk)} clips")
            for i, gen in zip(chunk, gens, strict=True):
                out[i] = to_result(gen, n_inputs(clips[i]), share, self.taxonomy)
            log.info(
                "%s: %d clips, %d tokens, %.2f s",
                self.labeler,
                len(chunk),
                sum(g.n_tokens for g in gens),
                share * len(chunk),
            )
        return [r for r in out if r is not None]
