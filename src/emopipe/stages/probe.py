"""Probe media with a real decoder (FFmpeg through PyAV): duration, fps, size, frames, audio, codecs."""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.sources.base import InvalidInput
from emopipe.stages.base import Stage

log = logging.getLogger(__name__)

PROBE_COLUMNS = (
    "duration_s", "fps", "width", "height", "n_frames", "codec", "has_video", "has_audio",
    "audio_sample_rate", "audio_channels", "audio_codec", "frame_hash",
)  # fmt: skip
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}


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


def probe_frames(folder: pathlib.Path) -> dict[str, Any]:
    """A folder of frame images (DFEW clip_224x224): frame count, size and codec of the first image, its hash."""
    import av

    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
    if not images:
        raise InvalidInput("no_streams", "frame folder holds no .jpg or .png images")
    out: dict[str, Any] = dict.fromkeys(PROBE_COLUMNS)
    try:
        with av.open(str(images[0])) as container:
            frame = next(container.decode(video=0))
            out["codec"] = container.streams.video[0].codec_context.name
            out["width"], out["height"] = frame.width, frame.height
            out["frame_hash"] = average_hash(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError, StopIteration) as err:
        raise InvalidInput("unreadable_media", f"{images[0].name}: {type(err).__name__}: {err}") from err
    out.update({"has_video": True, "has_audio": False, "n_frames": len(images)})
    return out


def probe_file(path: pathlib.Path) -> dict[str, Any]:
    """Open a media file, decode its first video frame and first audio frame, and read its stream facts.

    Raises InvalidInput(unreadable_media) when FFmpeg cannot open or decode it, InvalidInput(no_streams)
    when it holds neither video nor audio.
    """
    import av  # heavy: loaded once per worker process

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
            out["frame_hash"] = _decode_first(container, video=bool(vstreams), audio=bool(astreams))
            if out["n_frames"] is None and vstreams:
                out["n_frames"] = _count_frames(path)
            out["duration_s"] = duration
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
    """The streams found must match what the corpus says the file holds."""
    expected = {"audio-visual": (True, True), "video-only": (True, False), "audio-only": (False, True)}
    want = expected.get(row.get("modality") or "")
    if want and (probed["has_video"], probed["has_audio"]) != want:
        got = f"video={probed['has_video']}, audio={probed['has_audio']}"
        raise InvalidInput("modality_mismatch", f"{row['modality']} file has {got}")


def probe_rows(rows: list[dict[str, Any]], roots: pathlib.Path | dict[str, pathlib.Path]) -> list[dict[str, Any]]:
    """Fill the probe columns of clip rows; a row that fails keeps its data and gets `error` plus `error_detail`.

    `roots` is one corpus root, or corpus name -> root for tables that mix corpora.
    """
    out = []
    for source in rows:
        row = dict(source)
        root = pathlib.Path(roots[row["corpus"]] if isinstance(roots, dict) else roots)
        try:
            path = root / row["media_path"]
            probed = probe_frames(path) if row.get("media_form") == "frames" else probe_file(path)
            check_modality(row, probed)
            row.update(probed)
            row["error"], row["error_detail"] = None, None
        except InvalidInput as err:
            row["error"], row["error_detail"] = err.reason, err.detail
        except Exception as err:  # noqa: BLE001 — per-row boundary: one broken file must not lose the batch
            log.exception("unexpected failure probing %s", row["media_path"])
            row["error"], row["error_detail"] = "unreadable_media", f"{type(err).__name__}: {err}"
        out.append(row)
    return out


PROBE_CODE_VERSION = "2"  # bump when what probe_rows records changes
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
    """

    name = "probe_clips"
    input_columns = tuple(schemas.CLIPS.names)
    output_schema = PROBED
    failure_code = "unreadable_media"

    def __init__(self, roots: dict[str, str], batch_size: int = 64) -> None:
        self.roots = {c: str(r) for c, r in roots.items()}
        self.batch_size = batch_size

    @property
    def version(self) -> str:
        return f"probe-{PROBE_CODE_VERSION}"

    def setup(self) -> None:
        import av  # noqa: F401 - load FFmpeg once per worker, not per batch

    def process(self, batch: pa.Table) -> pa.Table:
        roots = {c: pathlib.Path(r) for c, r in self.roots.items()}
        rows = probe_rows(schemas.conform(batch, schemas.CLIPS).to_pylist(), roots)
        return schemas.from_rows(rows, PROBED)
