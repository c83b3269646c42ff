"""Generated clips whose faces differ in a way the tiny estimators measure: a RAVDESS-layout corpus in which each
actor's face is lit at a brightness of the test's choosing, and footage clips of such faces with or without a
gender sidecar."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from emopipe.demo import write_mp4
from tests.corpora import face_frames, tone

FPS = 10


def lit_face(brightness: float, n: int = 6, size: tuple[int, int] = (128, 96)) -> np.ndarray:
    """n frames of the astronaut photograph (a real face) with every pixel scaled by `brightness`."""
    return np.clip(face_frames(n, size).astype(np.float32) * brightness, 0, 255).astype(np.uint8)


def ravdess_faces(root: pathlib.Path, brightness: dict[int, float], emotions: tuple[int, ...] = tuple(range(1, 9))):
    """`Actor_NN/01-01-EE-II-01-01-NN.mp4` for each actor in `brightness` (odd actors are male, even female, as
    RAVDESS says) and each emotion code, the face lit at the actor's brightness, a tone as the voice."""
    for actor, level in brightness.items():
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = lit_face(level)
        for emotion in emotions:
            intensity = 1 if emotion == 1 else 2
            name = f"01-01-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}.mp4"
            write_mp4(folder / name, frames, FPS, tone(0.6, 200 + 10 * actor + 3 * emotion))  # distinct bytes
    return root


def footage_faces(root: pathlib.Path, clips: dict[str, tuple[float, dict | None]]) -> pathlib.Path:
    """`<name>.mp4` of a face lit at the given brightness, each with its sidecar `<name>.json` when one is given."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, (level, sidecar)) in enumerate(sorted(clips.items())):
        write_mp4(root / f"{name}.mp4", lit_face(level), FPS, tone(0.6, 300 + 7 * i))
        if sidecar is not None:
            (root / f"{name}.json").write_text(json.dumps(sidecar))
    return root
