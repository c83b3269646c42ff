"""The labeler interface, the registry of kinds, and the Ray Data worker that runs every configured labeler.

A labeler turns a batch of features rows (frames, face crops, audio) into one `labels` row per clip. It
never guesses: a clip it cannot label gets a null label and an `abstain_reason`, an exception inside the
model becomes `error` on that clip's row.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import importlib
import json
import logging
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emopipe import schemas
from emopipe.config import LabelerSpec

log = logging.getLogger(__name__)

LABELS = schemas.load_schema("labels")
# kind -> "module:class"; imported only when a labeler of that kind is configured
KINDS = {
    "fer": "emopipe.labelers.classifiers:FERLabeler",
    "hf_video": "emopipe.labelers.classifiers:HFVideoLabeler",
    "hf_audio": "emopipe.labelers.classifiers:HFAudioLabeler",
    "video_llm": "emopipe.labelers.video_llm:VideoLLMLabeler",
}
# features columns each kind reads
INPUTS = {
    "fer": ("face_crops_jpeg",),
    "hf_video": ("frames_jpeg",),
    "hf_audio": ("audio_pcm16",),
    "video_llm": ("frames_jpeg", "frame_times_s", "audio_pcm16"),
}


class LabelerError(ValueError):
    """A configured labeler cannot run (missing or unsupported checkpoint, missing extra): one line, exit 2."""


def decode_jpegs(values: list[bytes | None] | None) -> list[np.ndarray]:
    """A features row's JPEG list (frames or face crops) as RGB arrays, skipping the frames without one."""
    from emopipe.stages.extract import decode_jpeg

    return [decode_jpeg(v) for v in values or [] if v is not None]


@dataclass
class LabelResult:
    """One clip's label from one labeler (the `labels` columns a labeler fills)."""

    label: str | None = None
    probabilities: dict[str, float] | None = None
    confidence: float | None = None
    rationale: str | None = None
    raw_output: str | None = None
    abstain_reason: str | None = None
    n_inputs: int | None = None
    generated_tokens: int | None = None
    seconds: float | None = None
    error: str | None = None
    error_detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def folder_version(path: str | pathlib.Path) -> str:
    """A short content hash of a model folder's config and weight files: the labeler's version.

    Each file's sha256 is remembered by (path, size, modification time) in the user's cache
    (emopipe.weights.cache_dir()), so a 15 GB checkpoint is read once, not by the driver and every worker of
    every run.
    """
    from emopipe.sources import hashcache
    from emopipe.weights import cache_dir

    cache = cache_dir() / "file-sha256.parquet"
    known = hashcache.load(cache)
    digest = hashlib.sha256()
    seen: dict[str, hashcache.Record] = {}
    for f in sorted(pathlib.Path(path).rglob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".pt", ".model", ".txt"}:
            st = f.stat()
            key = str(f.resolve())
            hit = known.get(key)
            if hit is not None and (hit[0], hit[1]) == (st.st_size, st.st_mtime_ns):
                sha = hit[2]
            else:
                h = hashlib.sha256()
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                sha = h.hexdigest()
            seen[key] = (st.st_size, st.st_mtime_ns, sha)
            digest.update(f.relative_to(path).as_posix().encode() + b"\0" + sha.encode())
    if any(known.get(k) != v for k, v in seen.items()):
        with contextlib.suppress(OSError):  # a read-only home: versions are still right, only slower
            kept = {k: v for k, v in {**known, **seen}.items() if pathlib.Path(k).exists()}  # forget deleted files
            hashcache.save(kept, cache)
    return digest.hexdigest()[:12]


class Labeler(abc.ABC):
    """A model that labels clips. Subclasses load their model in `__init__` (once per Ray actor).

    Args:
        spec: the configured name, kind, model path and label map.
        device: torch device ("cpu", "cuda").
    """

    version: str = "0"

    @classmethod
    def check(cls, spec: LabelerSpec) -> None:
        """Raise LabelerError if `spec` cannot be loaded (cheap: no model is loaded). Default: the folder exists."""
        if spec.path is not None and not pathlib.Path(spec.path).is_dir():
            raise LabelerError(f"label_clips.labelers[{spec.name}]: model folder {spec.path} does not exist")

    @classmethod
    def spec_version(cls, spec: LabelerSpec) -> str | None:
        """The version computed from the spec alone, or None: then it is the model folder's hash."""
        return None

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        self.spec, self.device = spec, device
        self.taxonomy = schemas.taxonomy()

    @property
    def labeler(self) -> str:
        return f"{self.spec.name}@{self.version}"

    def to_canonical(self, model_class: str) -> str | None:
        """A model class name -> canonical class: the configured label_map, else the taxonomy's synonyms."""
        if self.spec.label_map:
            return self.spec.label_map.get(model_class)
        return self.taxonomy.from_word(model_class)

    def from_probabilities(self, classes: list[str], probs: np.ndarray, n_inputs: int) -> LabelResult:
        """Label = the model's most probable class, mapped; probabilities summed per canonical class."""
        canonical: dict[str, float] = {}
        for name, p in zip(classes, probs.tolist(), strict=True):
            if (target := self.to_canonical(name)) is not None:
                canonical[target] = canonical.get(target, 0.0) + float(p)
        top = int(np.argmax(probs))
        label = self.to_canonical(classes[top])
        raw = json.dumps({c: round(float(p), 6) for c, p in zip(classes, probs.tolist(), strict=True)})
        if label is None:
            return LabelResult(
                probabilities=canonical, raw_output=raw, abstain_reason="unmapped_class", n_inputs=n_inputs
            )
        return LabelResult(label, canonical, float(probs[top]), raw_output=raw, n_inputs=n_inputs)

    @abc.abstractmethod
    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        """One result per features row, in order."""


def _kind_class(spec: LabelerSpec) -> type[Labeler]:
    module, _, cls = KINDS[spec.kind].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_labeler(spec: LabelerSpec, device: str = "cpu") -> Labeler:
    return _kind_class(spec)(spec, device)


def check(spec: LabelerSpec) -> None:
    """Raise LabelerError, naming the labeler, its folder and what is wrong, if `spec` cannot be loaded.

    Cheap (file names and small JSON files): call it before any actor starts. Each kind checks itself
    (`Labeler.check`); kinds without their own check only need an existing model folder.
    """
    _kind_class(spec).check(spec)


def spec_version(spec: LabelerSpec) -> str | None:
    """The version a kind computes from its spec alone (no model loaded), or None where it is the folder's hash."""
    return _kind_class(spec).spec_version(spec)
