"""The models behind attribute estimators: local transformers checkpoints, loaded from local files only.

- `FaceModel`: an `AutoModelForImageClassification` folder with its image processor (preprocessor_config.json), on
  a clip's aligned face crops (features `face_crops_jpeg`); a clip's probabilities are the mean over its crops.
- `AudioModel`: an `AutoModelForAudioClassification` folder with its feature extractor, on the clip's 16 kHz mono
  audio (features `audio_pcm16`), one clip at a time (padding a batch would change what the model hears).

Both return, per clip, the model's probabilities over its own classes (or None where the clip lacks the input) and
the number of inputs seen; mapping onto a vocabulary is the stage's.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

REQUIRED = {"face": "preprocessor_config.json", "audio": "preprocessor_config.json"}


def check_folder(path: str | pathlib.Path, kind: str) -> str | None:
    """Why a model folder cannot be loaded (None when it looks loadable), without importing transformers."""
    folder = pathlib.Path(path)
    if not folder.is_dir():
        return f"{folder}: no such model folder"
    if not (folder / "config.json").is_file():
        return f"{folder}: no config.json (a transformers model folder, saved with save_pretrained)"
    if not (folder / REQUIRED[kind]).is_file():
        what = "image processor" if kind == "face" else "feature extractor"
        return f"{folder}: no {REQUIRED[kind]} (the model's {what}, saved beside it)"
    return None


def class_names(config: Any) -> list[str]:
    """The model's class names in output order (config.id2label)."""
    return [str(config.id2label[i]) for i in range(config.num_labels)]


class FaceModel:
    """A local image classifier applied to face crops.

    Args:
        path: the model folder (config.json, weights, preprocessor_config.json).
        device: torch device.
    """

    def __init__(self, path: str, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        from transformers.utils import is_torchvision_available

        # without torchvision (never installed beside the CPU torch here) the PIL processors are the ones that work
        backend = None if is_torchvision_available() else "pil"
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend=backend)
        self.model = AutoModelForImageClassification.from_pretrained(path, local_files_only=True)
        self.model.to(device).eval()
        self.device = device
        self.classes = class_names(self.model.config)

    def predict(self, rows: list[dict[str, Any]]) -> list[tuple[np.ndarray | None, int]]:
        """Per row, (mean class probabilities over its face crops or None without any, number of crops)."""
        import torch

        from emopipe.stages.extract import decode_jpeg

        crops = [[decode_jpeg(c) for c in (r.get("face_crops_jpeg") or []) if c is not None] for r in rows]
        flat = [c for clip in crops for c in clip]
        if not flat:
            return [(None, 0) for _ in rows]
        inputs = self.processor(images=flat, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        out, start = [], 0
        for clip in crops:
            if not clip:
                out.append((None, 0))
                continue
            out.append((probs[start : start + len(clip)].mean(axis=0), len(clip)))
            start += len(clip)
        return out


class AudioModel:
    """A local audio classifier applied to the clip's 16 kHz audio.

    Args:
        path: the model folder (config.json, weights, preprocessor_config.json of its feature extractor).
        device: torch device.
    """

    def __init__(self, path: str, device: str = "cpu") -> None:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.extractor = AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForAudioClassification.from_pretrained(path, local_files_only=True)
        self.model.to(device).eval()
        self.device = device
        self.classes = class_names(self.model.config)

    def predict(self, rows: list[dict[str, Any]]) -> list[tuple[np.ndarray | None, int]]:
        """Per row, (class probabilities or None without audio, audio seconds rounded)."""
        import torch

        from emopipe.stages.audio import SAMPLE_RATE, from_pcm16

        out: list[tuple[np.ndarray | None, int]] = []
        for row in rows:
            if not row.get("audio_pcm16"):
                out.append((None, 0))
                continue
            signal = from_pcm16(row["audio_pcm16"])
            inputs = self.extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
            out.append((torch.softmax(logits.float(), dim=-1)[0].cpu().numpy(), round(signal.size / SAMPLE_RATE)))
        return out


def load(kind: str, path: str, device: str = "cpu") -> FaceModel | AudioModel:
    """The model of an estimator of `kind` (face or audio)."""
    return FaceModel(path, device) if kind == "face" else AudioModel(path, device)
