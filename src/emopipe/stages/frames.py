"""Uniformly sampled frames: decord decodes only what it must and resizes at decode time.

A video clip is read with `decord.VideoReader(width=…, height=…)`, so the scaler runs inside the decoder and
full-size frames are never converted to RGB; only the sampled indices are fetched (`get_batch`). For long-GOP
H.264 every frame still has to be decoded, which is the floor (see benchmarks/README.md). A folder of frame
images (DFEW's clip_224x224) is sampled the same way by reading only the chosen files.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass

import numpy as np

from emopipe.stages.probe import IMAGE_EXTENSIONS


class FrameError(Exception):
    """A clip's frames could not be read. `code` is the features table's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class SampledFrames:
    """What `read_frames` returns.

    Args:
        indices: 0-based frame indices, uniform over the clip.
        times_s: presentation time of each sampled frame (seconds).
        frames: uint8 RGB array [n, height, width, 3].
        n_source_frames: frames in the clip.
    """

    indices: list[int]
    times_s: list[float]
    frames: np.ndarray
    n_source_frames: int


def sample_indices(n_frames: int, n: int) -> list[int]:
    """`n` frame indices spread uniformly over `n_frames`: the centre of each of `n` equal segments.

    For 160 frames and n=16 that is 5, 15, …, 155. A clip shorter than `n` frames repeats frames (indices
    stay sorted), so every clip yields exactly `n`.
    """
    if n_frames < 1 or n < 1:
        raise ValueError(f"need n_frames >= 1 and n >= 1, got {n_frames}, {n}")
    return [min(n_frames - 1, int((2 * i + 1) * n_frames // (2 * n))) for i in range(n)]


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side at `short_side`, aspect kept, both even; never upscales."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _natural_key(path: pathlib.Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem))


def read_frame_folder(folder: pathlib.Path, n: int, short_side: int) -> SampledFrames:
    """Sample `n` images of a frame folder (files in natural order: 2.jpg before 10.jpg), resized."""
    import cv2

    images = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
    if not images:
        raise FrameError("no_video_stream", "frame folder holds no images")
    indices = sample_indices(len(images), n)
    frames = []
    for i in indices:
        bgr = cv2.imread(str(images[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FrameError("decode_failed", f"{images[i].name}: not a readable image")
        h, w = bgr.shape[:2]
        tw, th = target_size(w, h, short_side)
        if (tw, th) != (w, h):
            bgr = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if len({f.shape for f in frames}) != 1:
        raise FrameError("decode_failed", "frame images differ in size")
    return SampledFrames(indices, [float("nan")] * n, np.stack(frames), len(images))


def _resize_all(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def read_video(path: pathlib.Path, n: int, short_side: int, size_hint: tuple[int, int] | None = None) -> SampledFrames:
    """Sample `n` frames of a video file with decord, resized at decode to `short_side` (aspect kept).

    Args:
        path: the video file.
        n: frames to sample.
        short_side: length of the shorter side of the returned frames.
        size_hint: the probed (width, height), which saves opening the file twice; None reads it from the file.

    Raises:
        FrameError: `no_video_stream` when the file has no video, `decode_failed` when decoding breaks.
    """
    import decord

    try:
        if size_hint is None or not all(size_hint):
            probe = decord.VideoReader(str(path), num_threads=1)
            h, w = probe[0].shape[:2] if len(probe) else (0, 0)
            del probe
        else:
            w, h = size_hint
        if not w or not h:
            raise FrameError("no_video_stream", "the decoder found no video frames")
        tw, th = target_size(w, h, short_side)
        reader = decord.VideoReader(str(path), width=tw, height=th, num_threads=1)
        total = len(reader)
        if total < 1:
            raise FrameError("no_video_stream", "the decoder found no video frames")
        indices = sample_indices(total, n)
        try:
            frames = reader.get_batch(indices).asnumpy()
        except (decord.DECORDError, RuntimeError) as err:
            if "DECORDArrayCopyFromTo" not in str(err):
                raise
            # decord 0.6 mis-sizes some scaled widths (48, 72, …): decode at full size, resize here instead
            reader = decord.VideoReader(str(path), num_threads=1)
            frames = _resize_all(reader.get_batch(indices).asnumpy(), tw, th)
        times = [float(t[0]) for t in reader.get_frame_timestamp(indices)]
    except (decord.DECORDError, RuntimeError) as err:  # decord raises RuntimeError when it cannot open a file
        text = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        code = "no_video_stream" if "video stream" in text.lower() else "decode_failed"
        raise FrameError(code, text) from err
    if frames.shape[0] != n:
        raise FrameError("decode_failed", f"asked {n} frames, got {frames.shape[0]}")
    return SampledFrames(indices, times, frames, total)


def read_frames(
    path: pathlib.Path, n: int, short_side: int, size_hint: tuple[int, int] | None = None
) -> SampledFrames:
    """Sampled frames of a video file or a frame folder."""
    if path.is_dir():
        return read_frame_folder(path, n, short_side)
    return read_video(path, n, short_side, size_hint)
