"""Probe media with a real decoder (FFmpeg through PyAV): duration, fps, size, frames, audio, codecs."""

from __future__ import annotations

import logging
import os
import pathlib
import stat
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.sources.base import MAX_DETAIL_CHARS, InvalidInput, printable
from emopipe.stages.base import Stage

log = logging.getLogger(__name__)

PROBE_COLUMNS = (
    "duration_s", "fps", "width", "height", "n_frames", "codec", "has_video", "has_audio",
    "audio_sample_rate", "audio_channels", "audio_codec", "frame_hash",
)  # fmt: skip
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}
MAX_SIDE = 8192  # larger frames (an 8K UHD frame is 7680 x 4320) are refused from the metadata: one RGB copy of a
# 30000 x 30000 frame is 2.7 GB, which a hostile file could otherwise make every stage allocate


def _check_size(width: int | None, height: int | None) -> None:
    if (width or 0) > MAX_SIDE or (height or 0) > MAX_SIDE:
        raise InvalidInput("frame_too_large", f"{width} x {height} pixels, more than {MAX_SIDE} on a side")


@dataclass(frozen=True)
class ProbeLimits:
    """What a media file must be to serve as a sample; checked from the container's metadata, before decoding.

    A clip outside these limits is quarantined by the probe with its own reason (too_long, too_short,
    fps_out_of_range, too_few_frames, frame_too_small), so one such clip no longer fails the gate for the whole
    dataset; the gate keeps the same thresholds as dataset-wide checks. None switches a limit off.

    Args:
        min_duration_s: shortest clip (validate.min_duration_s).
        max_duration_s: longest clip (validate.max_duration_s); a longer one is never decoded.
        min_fps: lowest video frame rate (validate.min_fps).
        max_fps: highest video frame rate (validate.max_fps).
        min_frames: fewest video frames, or images of a frame folder (extract_features.n_frames: fewer would
            repeat frames in the sample).
        min_side: narrowest video frame, in pixels, on either side (validate.min_frame_side).
    """

    min_duration_s: float | None = None
    max_duration_s: float | None = None
    min_fps: float | None = None
    max_fps: float | None = None
    min_frames: int | None = None
    min_side: int | None = None

    @classmethod
    def from_params(cls, params: Any) -> ProbeLimits:
        """The limits a run's params set: `validate:` durations and frame rates, `extract_features.n_frames`."""
        v = params.validate
        frames = params.extract_features.n_frames
        return cls(v.min_duration_s, v.max_duration_s, v.min_fps, v.max_fps, frames, v.min_frame_side)


def check_limits(probed: dict[str, Any], limits: ProbeLimits | None) -> None:
    """Raise InvalidInput when probed stream facts put a clip outside `limits`; facts still unknown are not judged.

    The duration is the container's (or the video stream's) and, failing both, frames / fps. Checked in the order
    that saves the most work: a too-long clip is refused before anything else is looked at.
    """
    if limits is None:
        return
    duration, fps, frames = probed.get("duration_s"), probed.get("fps"), probed.get("n_frames")
    if duration is None and fps and frames:
        duration = frames / fps
    if duration is not None:
        if limits.max_duration_s is not None and duration > limits.max_duration_s:
            raise InvalidInput("too_long", f"{duration:.1f} s, longer than max_duration_s {limits.max_duration_s:g}")
        if limits.min_duration_s is not None and duration < limits.min_duration_s:
            raise InvalidInput("too_short", f"{duration:.3f} s, shorter than min_duration_s {limits.min_duration_s:g}")
    if probed.get("has_video") and fps is not None:
        low = limits.min_fps if limits.min_fps is not None else 0.0
        high = limits.max_fps if limits.max_fps is not None else float("inf")
        if not low <= fps <= high:
            raise InvalidInput("fps_out_of_range", f"{fps:g} fps, outside {low:g}..{high:g}")
    if probed.get("has_video") and frames is not None and limits.min_frames is not None and frames < limits.min_frames:
        raise InvalidInput("too_few_frames", f"{frames} frames, fewer than the {limits.min_frames} sampled per clip")
    width, height = probed.get("width"), probed.get("height")
    if probed.get("has_video") and limits.min_side is not None and width is not None and height is not None:
        if min(width, height) < limits.min_side:
            raise InvalidInput(
                "frame_too_small", f"{width} x {height} pixels, less than min_frame_side {limits.min_side} on a side"
            )


def average_hash(rgb: Any) -> str:
    """64-bit average hash of an RGB frame (8x8 grey, each bit = pixel above the mean), as 16 hex digits."""
    import numpy as np

    grey = np.asarray(rgb, dtype=np.float32).mean(axis=2)
    h, w = grey.shape
    ys, xs = np.linspace(0, h, 9).astype(int), np.linspace(0, w, 9).astype(int)
    cells = np.array(
        [
            [grey[ys[i] : max(ys[i + 1], ys[i] + 1), xs[j] : max(xs[j + 1], xs[j] + 1)].mean() for j in range(8)]
            for i in range(8)
        ]
    )
    bits = "".join("1" if b else "0" for b in (cells > cells.mean()).flatten())
    return f"{int(bits, 2):016x}"


def _regular(path: pathlib.Path) -> bool:
    """A regular file (following symlinks): never hand a FIFO or a device to the decoder, it would block or not end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def probe_frames(folder: pathlib.Path, limits: ProbeLimits | None = None) -> dict[str, Any]:
    """A folder of frame images (DFEW clip_224x224): frame count, size and codec of the first image, its hash."""
    import av

    images = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and _regular(p))
        if folder.is_dir()
        else []
    )
    if not images:
        raise InvalidInput("no_streams", "frame folder holds no .jpg or .png images")
    check_limits({"has_video": True, "n_frames": len(images)}, limits)
    out: dict[str, Any] = dict.fromkeys(PROBE_COLUMNS)
    try:
        with av.open(str(images[0])) as container:
            ctx = container.streams.video[0].codec_context
            _check_size(ctx.width, ctx.height)
            frame = next(container.decode(video=0))
            out["codec"] = container.streams.video[0].codec_context.name
            out["width"], out["height"] = frame.width, frame.height
            out["frame_hash"] = average_hash(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError, StopIteration, IndexError) as err:
        raise InvalidInput("unreadable_media", f"{images[0].name}: {type(err).__name__}: {err}") from err
    out.update({"has_video": True, "has_audio": False, "n_frames": len(images)})
    check_limits(out, limits)  # the frame size, now known
    return out


def probe_file(path: pathlib.Path, limits: ProbeLimits | None = None) -> dict[str, Any]:
    """Open a media file, decode its first video frame and first audio frame, and read its stream facts.

    Raises InvalidInput(unreadable_media) when FFmpeg cannot open or decode it, InvalidInput(no_streams)
    when it holds neither video nor audio, InvalidInput(not_a_file) for a FIFO or device, and the reasons of
    `check_limits` when the container's metadata puts it outside `limits` (decided before decoding anything).
    """
    import av  # heavy: loaded once per worker process

    if path.exists() and not _regular(path):
        raise InvalidInput("not_a_file", "not a regular file (a FIFO, socket, device or folder); never opened")
    try:
        with av.open(str(path)) as container:
            vstreams, astreams = container.streams.video, container.streams.audio
            if not vstreams and not astreams:
                raise InvalidInput("no_streams", "no video or audio stream")
            out: dict[str, Any] = dict.fromkeys(PROBE_COLUMNS)
            out["has_video"], out["has_audio"] = bool(vstreams), bool(astreams)
            duration = container.duration / 1_000_000 if container.duration else None
            if vstreams:
                v = vstreams[0]
                out["codec"] = v.codec_context.name
                out["width"], out["height"] = v.codec_context.width, v.codec_context.height
                rate = v.average_rate or v.guessed_rate
                out["fps"] = float(rate) if rate else None
                if v.duration and v.time_base:
                    duration = float(v.duration * v.time_base)
                out["n_frames"] = v.frames or None
            if astreams:
                a = astreams[0]
                out["audio_codec"] = a.codec_context.name
                out["audio_sample_rate"] = a.codec_context.sample_rate
                out["audio_channels"] = a.codec_context.channels
            out["duration_s"] = duration
            _check_size(out["width"], out["height"])
            check_limits(out, limits)  # from the metadata alone: a 30-minute clip is refused undecoded
            out["frame_hash"] = _decode_first(container, video=bool(vstreams), audio=bool(astreams))
            if out["n_frames"] is None and vstreams:
                out["n_frames"] = _count_frames(path)  # packets, not decoded frames
                check_limits(out, limits)
            return out
    except InvalidInput:
        raise
    except (av.error.FFmpegError, OSError, ValueError, StopIteration) as err:
        raise InvalidInput("unreadable_media", f"{type(err).__name__}: {err}") from err


def _decode_first(container: Any, *, video: bool, audio: bool) -> str | None:
    """Decode until one frame of each present stream came out; return the first video frame's average hash.

    Raises ValueError if a present stream never yields a frame.
    """
    want = {"video"} if video else set()
    if audio:
        want.add("audio")
    frame_hash = None
    streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
    for packet in container.demux(streams):
        for frame in packet.decode():
            if packet.stream.type == "video" and frame_hash is None:
                frame_hash = average_hash(frame.to_ndarray(format="rgb24"))
            want.discard("video" if packet.stream.type == "video" else "audio")
        if not want:
            return frame_hash
    raise ValueError(f"no decodable frame in the {' and '.join(sorted(want))} stream")


def _count_frames(path: pathlib.Path) -> int:
    """Count video packets when the container does not store a frame count (e.g. some AVI and MKV)."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(container.streams.video[0]) if p.size)


def check_modality(row: dict[str, Any], probed: dict[str, Any]) -> None:
    """The streams found must match what the corpus says the file holds: its declared modality, and a video at
    all where the clip is a video (an audio-only .mp4 in a footage drop would fail extraction, not serve)."""
    expected = {"audio-visual": (True, True), "video-only": (True, False), "audio-only": (False, True)}
    want = expected.get(row.get("modality") or "")
    got = f"video={probed['has_video']}, audio={probed['has_audio']}"
    if want and (probed["has_video"], probed["has_audio"]) != want:
        raise InvalidInput("modality_mismatch", f"{row['modality']} file has {got}")
    if row.get("media_form") == "video" and not probed["has_video"]:
        raise InvalidInput("modality_mismatch", f"a video clip whose file has no video stream ({got})")


def probe_rows(
    rows: list[dict[str, Any]],
    roots: pathlib.Path | dict[str, pathlib.Path],
    limits: ProbeLimits | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Fill the probe columns of clip rows; a row that fails keeps its data and gets `error` plus `error_detail`.

    Args:
        rows: clips-table rows (`corpus`, `media_path`, `media_form`, `modality` are read).
        roots: one corpus root, or corpus name -> root for tables that mix corpora.
        limits: what a clip must be to serve as a sample (ProbeLimits, or its fields as a dict); a clip outside
            them gets that reason as its `error` (too_long, too_short, fps_out_of_range, too_few_frames).
    """
    if isinstance(limits, dict):
        limits = ProbeLimits(**limits)
    out = []
    for source in rows:
        row = dict(source)
        root = pathlib.Path(roots[row["corpus"]] if isinstance(roots, dict) else roots)
        try:
            path = root / row["media_path"]
            if row.get("media_form") == "frames":
                probed = probe_frames(path, limits)
            else:
                probed = probe_file(path, limits)
            check_modality(row, probed)
            row.update(probed)
            row["error"], row["error_detail"] = None, None
        except InvalidInput as err:
            row["error"], row["error_detail"] = err.reason, printable(err.detail, MAX_DETAIL_CHARS)
        except Exception as err:  # noqa: BLE001 — per-row boundary: one broken file must not lose the batch
            log.exception("unexpected failure probing %s", printable(row["media_path"]))
            detail = printable(f"{type(err).__name__}: {err}", MAX_DETAIL_CHARS)
            row["error"], row["error_detail"] = "unreadable_media", detail
        out.append(row)
    return out


PROBE_CODE_VERSION = "3"  # bump when what probe_rows records changes
PROBED = schemas.CLIPS.append(
    pa.field("error_detail", pa.string(), nullable=True, metadata={"doc": "What the probe found wrong, for error."})
)


class ProbeStage(Stage):
    """Probe every clip's media (PyAV): a clips row in, the same row with its probe columns out.

    A row whose media cannot be probed keeps its data and gets `error` (a quarantine reason code) and
    `error_detail`; the pipeline moves such rows to the quarantine.

    Args:
        roots: corpus name -> the root its rows' `media_path` is relative to (shared paths on a cluster).
        batch_size: clips per worker call.
        limits: what a clip's media must be to serve as a sample (ProbeLimits); None checks no limits.
    """

    name = "probe_clips"
    input_columns = tuple(schemas.CLIPS.names)
    output_schema = PROBED
    failure_code = "unreadable_media"

    def __init__(self, roots: dict[str, str], batch_size: int = 64, limits: ProbeLimits | None = None) -> None:
        self.roots = {c: str(r) for c, r in roots.items()}
        self.batch_size = batch_size
        self.limits = limits

    @property
    def version(self) -> str:
        """The probe code version and the limits it checks (new limits probe again)."""
        import dataclasses
        import hashlib
        import json

        facts = json.dumps(dataclasses.asdict(self.limits) if self.limits else None, sort_keys=True)
        return f"probe-{PROBE_CODE_VERSION}+{hashlib.sha256(facts.encode()).hexdigest()[:8]}"

    def setup(self) -> None:
        import av  # noqa: F401 - load FFmpeg once per worker, not per batch

    def process(self, batch: pa.Table) -> pa.Table:
        roots = {c: pathlib.Path(r) for c, r in self.roots.items()}
        rows = probe_rows(schemas.conform(batch, schemas.CLIPS).to_pylist(), roots, self.limits)
        return schemas.from_rows(rows, PROBED)
