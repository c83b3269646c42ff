"""Uniformly sampled frames, read by one of three decoders that resize at decode time.

`extract_features.decoder` picks the decoder; all three give the same frame indices (counted from the file's
packets, not its header) and the same pixels within a small tolerance (tests/stages/test_frames.py, and the benchmark
compares them side by side):
- decord: `VideoReader(width=…, height=…)` scales inside FFmpeg's filter graph, so full-size frames are
  never converted to RGB; only the sampled indices are fetched (`get_batch`). A file decord fails on is read again
  with PyAV before it counts as `decode_failed` (decord mis-handles some frame sizes FFmpeg decodes).
- pyav (default): counts the packets, then decodes once from the start, converting (and resizing, bilinear as decord's
  swscale) only the sampled frames, and stops after the last one. A frame that is not sampled and that no later
  frame is predicted from (H.264's non-reference B-frames) is not decoded at all (`skip_frame`), so on long-GOP
  H.264 with B-frames PyAV is the fastest of the three (benchmarks/README.md); it is also maintained, where decord
  has had no release since 2021.
- torchcodec (what Hugging Face `datasets` decodes video with): `VideoDecoder` with its `Resize` transform (bilinear
  with anti-aliasing, inside FFmpeg) and `get_frames_at`. It needs FFmpeg's shared libraries on the machine (FFmpeg
  4-7, e.g. Debian's libavcodec59 and friends) and the CPU wheel torchcodec 0.13 (later releases on PyPI are CUDA
  builds); `check_decoder` names what is missing in one line.
For long-GOP H.264 every reference frame has to be decoded whichever decoder runs, which is the floor
(benchmarks/README.md).
A folder of frame images (DFEW's clip_224x224) is sampled the same way by reading only the chosen files.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from emopipe.stages.probe import IMAGE_EXTENSIONS

DECODERS = ("decord", "pyav", "torchcodec")


class DecoderUnavailable(ValueError):
    """The configured decoder cannot run on this machine (a setup problem, not a clip's)."""


def check_decoder(name: str) -> None:
    """Load the decoder `name` now, so that a missing library is one line before any clip is read.

    Raises:
        DecoderUnavailable: unknown name, or the decoder's package or shared libraries are missing.
    """
    if name not in DECODERS:
        raise DecoderUnavailable(f"extract_features.decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    module = {"decord": "decord", "pyav": "av", "torchcodec": "torchcodec.decoders"}[name]
    try:
        __import__(module)
    except ImportError as err:
        pin = {"decord": "decord==0.6.0", "pyav": "av==18.1.0", "torchcodec": "torchcodec==0.13.0"}[name]
        raise DecoderUnavailable(f"extract_features.decoder {name}: {err}; install it with pip install {pin}") from err
    except (RuntimeError, OSError) as err:  # torchcodec: found, but FFmpeg's shared libraries are not
        raise DecoderUnavailable(
            f"extract_features.decoder torchcodec: cannot load FFmpeg's shared libraries (libavutil, libavcodec, "
            f"libavformat, libavfilter, libswscale, libswresample of FFmpeg 4-7; on Debian 12: apt-get install "
            f"libavcodec59 libavformat59 libavutil57 libavfilter8 libswscale6 libswresample4 libavdevice59): "
            f"{str(err).splitlines()[0]}"
        ) from err


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


def read_video(
    path: pathlib.Path,
    n: int,
    short_side: int,
    size_hint: tuple[int, int] | None = None,
    decoder: str = "pyav",
) -> SampledFrames:
    """Sample `n` frames of a video file, resized at decode to `short_side` (aspect kept).

    Args:
        path: the video file.
        n: frames to sample.
        short_side: length of the shorter side of the returned frames.
        size_hint: the probed (width, height), which saves opening the file twice; None reads it from the file.
        decoder: decord, pyav or torchcodec (see the module docstring).

    Raises:
        FrameError: `no_video_stream` when the file has no video, `decode_failed` when decoding breaks or the file
            holds fewer frames than its header lists (a truncated file).
        DecoderUnavailable: an unknown decoder.
    """
    readers = {"decord": _read_decord, "pyav": _read_pyav, "torchcodec": _read_torchcodec}
    if decoder not in readers:
        raise DecoderUnavailable(f"extract_features.decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    hint = size_hint if size_hint is not None and all(size_hint) else None
    try:
        got = readers[decoder](path, n, short_side, hint)
    except FrameError as err:
        if decoder != "decord" or err.code != "decode_failed":
            raise
        # decord 0.6 (no release since 2021) fails on some files FFmpeg itself decodes (e.g. frames 16 px wide):
        # such a file is read with PyAV, the same FFmpeg underneath; a file PyAV cannot decode either stays failed.
        try:
            got = _read_pyav(path, n, short_side, hint)
        except FrameError:
            raise err from None
    if got.frames.shape[0] != n:
        raise FrameError("decode_failed", f"asked {n} frames, got {got.frames.shape[0]}")
    return got


def _read_decord(path: pathlib.Path, n: int, short_side: int, size_hint: tuple[int, int] | None) -> SampledFrames:
    import decord

    try:
        if size_hint is None:
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
        raise _decode_error(err) from err
    return SampledFrames(indices, times, frames, total)


def _truncated(found: int, listed: int | None) -> bool:
    """Fewer frames in the file than its header lists: a cut-off download. AVI headers often count one frame more
    than the packets hold, so a frame in fifty (at least one) is let go."""
    return bool(listed) and found < listed - max(1, listed // 50)


def _decode_error(err: Exception) -> FrameError:
    text = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
    code = "no_video_stream" if "video stream" in text.lower() else "decode_failed"
    return FrameError(code, text)


def _read_pyav(path: pathlib.Path, n: int, short_side: int, size_hint: tuple[int, int] | None) -> SampledFrames:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FrameError("no_video_stream", "the file has no video stream")
            stream = container.streams.video[0]
            listed = stream.frames  # the header's count (0 when the container has none)
            w, h = size_hint or (stream.codec_context.width, stream.codec_context.height)
            # the frame count from the packets themselves (what decord indexes), without decoding them
            stamps = [packet.pts for packet in container.demux(stream) if packet.size]
        total = len(stamps)
        if total < 1 or not w or not h:
            raise FrameError("no_video_stream", "the decoder found no video frames")
        if _truncated(total, listed):
            raise FrameError("decode_failed", f"the file holds {total} of the {listed} frames its header lists")
        tw, th = target_size(w, h, short_side)
        indices = sample_indices(total, n)
        wanted: dict[int, int] = {}  # frame index -> how many times it is sampled (short clips repeat frames)
        for i in indices:
            wanted[i] = wanted.get(i, 0) + 1
        got = None
        if None not in stamps and len(set(stamps)) == total:
            got = _decode(path, wanted, (tw, th), order=sorted(stamps))
        if got is None:  # no distinct timestamps: every frame is decoded and counted in display order
            got = _decode(path, wanted, (tw, th))
    except (av.error.FFmpegError, OSError) as err:
        raise _decode_error(err) from err
    if len(got) != len(wanted):
        raise FrameError("decode_failed", f"decoded {sum(wanted[i] for i in got)} of the {n} sampled frames")
    frames = [got[i][0] for i in indices]
    times = [got[i][1] for i in indices]
    return SampledFrames(indices, times, np.stack(frames), total)


def _rgb(frame: Any, width: int, height: int, scaler: Any) -> tuple[np.ndarray, float]:
    """The frame as RGB at (width, height), by `scaler` (one VideoReformatter per file: it keeps FFmpeg's scaling
    context between frames, where `frame.reformat` builds a new one for every frame, half the time at 360p)."""
    rgb = scaler.reformat(frame, width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
    return rgb, float(frame.time or 0.0)


def _decode(
    path: pathlib.Path, wanted: dict[int, int], size: tuple[int, int], order: list[int] | None = None
) -> dict[int, tuple[np.ndarray, float]] | None:
    """Decode the sampled frames of a file (display index -> RGB and time) in one pass that stops after the last.

    With `order` (the packets' timestamps, sorted), a frame is identified by its timestamp's rank, its display
    index, and the packet of a frame that is not sampled is sent with `skip_frame = NONREF`, so FFmpeg drops it
    unless later frames are predicted from it: in long-GOP H.264 with B-frames (x264's default, RAVDESS-style
    clips) that skips a third of the decoding and leaves every sampled frame bit-identical. Returns None when a
    decoded frame's timestamp is not one of the packets' (the caller then decodes without `order`). Without
    `order`, every frame is decoded and counted in display order.
    """
    import av
    from av.video.reformatter import VideoReformatter

    scaler = VideoReformatter()
    index = {pts: i for i, pts in enumerate(order)} if order is not None else None
    targets = {order[i] for i in wanted} if order is not None else set()
    got: dict[int, tuple[np.ndarray, float]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # one decoding thread per actor, as decord's num_threads=1
        ctx, shown = stream.codec_context, 0
        for packet in container.demux(stream):
            if index is not None and packet.size:
                ctx.skip_frame = "DEFAULT" if packet.pts in targets else "NONREF"
            for frame in ctx.decode(packet):  # the empty packet at the end flushes the decoder
                if index is None:
                    i, shown = shown, shown + 1
                elif (i := index.get(frame.pts)) is None:
                    return None
                if i in wanted and i not in got:
                    got[i] = _rgb(frame, *size, scaler)
            if len(got) == len(wanted):
                break
    return got


def _read_torchcodec(path: pathlib.Path, n: int, short_side: int, size_hint: tuple[int, int] | None) -> SampledFrames:
    check_decoder("torchcodec")
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize

    def open_decoder(size: tuple[int, int] | None) -> Any:
        extra = {"dimension_order": "NHWC", "transforms": [Resize(size)]} if size else {}
        return VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1, **extra)

    try:
        # with the probed size, one open does; otherwise a first open reads the size for the resize
        reader = open_decoder(None) if size_hint is None else None
        w, h = size_hint or (reader.metadata.width, reader.metadata.height)
        if not w or not h:
            raise FrameError("no_video_stream", "the decoder found no video frames")
        tw, th = target_size(w, h, short_side)
        reader = open_decoder((th, tw))
        meta = reader.metadata
        total = meta.num_frames_from_content or 0
        if total < 1:
            raise FrameError("no_video_stream", "the decoder found no video frames")
        listed = meta.num_frames_from_header
        if _truncated(total, listed):
            raise FrameError("decode_failed", f"the file holds {total} of the {listed} frames its header lists")
        indices = sample_indices(total, n)
        batch = reader.get_frames_at(indices)
        frames = batch.data.numpy()
        times = [float(t) for t in batch.pts_seconds]
    except (RuntimeError, ValueError) as err:  # torchcodec raises RuntimeError for what FFmpeg cannot read
        raise _decode_error(err) from err
    return SampledFrames(indices, times, np.ascontiguousarray(frames), total)


def read_frames(
    path: pathlib.Path,
    n: int,
    short_side: int,
    size_hint: tuple[int, int] | None = None,
    decoder: str = "pyav",
) -> SampledFrames:
    """Sampled frames of a video file (read by `decoder`) or a frame folder."""
    if path.is_dir():
        return read_frame_folder(path, n, short_side)
    return read_video(path, n, short_side, size_hint, decoder)
