"""Per-clip feature extraction: sampled frames, faces and crops, 16 kHz audio, log-mel, eGeMAPS.

`ClipExtractor` is the callable class a Ray Data actor pool maps over batches of the clips table: the face
detector and openSMILE load once per actor. Every clip yields exactly one features row; what fails is an
`error` code on that row (and the parts that worked are kept), never an exception that loses the batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
import time
from typing import Any

import numpy as np
import pyarrow as pa

from emopipe import schemas
from emopipe.config import ExtractConfig
from emopipe.stages import audio, frames
from emopipe.stages.base import Resources, Stage

log = logging.getLogger(__name__)

FEATURES = schemas.load_schema("features")
EXTRACTION = schemas.load_schema("extraction")
# Bump when the code changes what a row holds; settings that change the output are hashed in as well.
EXTRACTOR_CODE_VERSION = "2"  # 2: tracked MTCNN (face_box_sources), decoder setting
INPUT_COLUMNS = ("clip_id", "corpus", "sha256", "media_path", "media_form", "width", "height")


def extractor_version(cfg: ExtractConfig) -> str:
    """`<code version>+<hash of the settings that change the output>`, e.g. `2+3fa2c9d0`.

    Raises:
        frames.DecoderUnavailable: the configured decoder cannot load on this machine. Checked here because every
            run asks for the version on the driver before an actor starts, so a missing library is one line there,
            not an actor's traceback.
    """
    frames.check_decoder(cfg.decoder)
    keys = ("n_frames", "frame_size", "crop_size", "keep_frames", "jpeg_quality", "face_detector", "face_weights")
    keys += ("min_face_size", "min_face_fraction", "redetect_every", "track_min_score", "decoder", "audio")
    keys += ("max_audio_s",)
    settings = json.dumps({k: str(getattr(cfg, k)) for k in keys}, sort_keys=True)
    return f"{EXTRACTOR_CODE_VERSION}+{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def extraction_rows(batch: pa.Table) -> pa.Table:
    """The `extraction` rows of a batch of features rows: what the gate checks, without the media columns."""
    import pyarrow.compute as pc

    mel = batch["log_mel"]
    first_mel = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(mel), 0), mel, None), 0)
    return schemas.conform(
        pa.table(
            {
                "clip_id": batch["clip_id"],
                "corpus": batch["corpus"],
                "extractor_version": batch["extractor_version"],
                "n_sampled": pc.list_value_length(batch["frame_indices"]),
                "face_share": batch["face_share"],
                "n_log_mel_bins": pc.list_value_length(first_mel),
                "n_egemaps": pc.list_value_length(batch["egemaps"]),
                "audio_reason": batch["audio_reason"],
                "error": batch["error"],
            }
        ),
        EXTRACTION,
    )


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes from the features table -> uint8 RGB array."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return bgr[..., ::-1].copy()


class ClipExtractor:
    """Extract the features of a batch of clips (a Ray Data callable class; also usable in one process).

    Args:
        cfg: the `extract_features:` section.
        roots: corpus name -> root folder that the clips' media_path is relative to.
        device: torch device for the face detector; None picks cuda when this actor was given a GPU.
    """

    def __init__(self, cfg: ExtractConfig, roots: dict[str, str], device: str | None = None) -> None:
        import torch

        from emopipe.stages.faces import make_detector

        torch.set_num_threads(cfg.torch_threads)  # one actor per core: more intra-op threads would fight over it
        if device is None:
            device = "cuda" if cfg.num_gpus and torch.cuda.is_available() else "cpu"
        self.cfg, self.roots, self.device = cfg, {c: pathlib.Path(r) for c, r in roots.items()}, device
        self.version = extractor_version(cfg)
        self.detector = make_detector(
            cfg.face_detector,
            cfg.face_weights,
            device,
            cfg.min_face_size,
            min_face_fraction=cfg.min_face_fraction,
            redetect_every=cfg.redetect_every,
            track_min_score=cfg.track_min_score,
        )
        self.detector_name = f"{cfg.face_detector}:{cfg.face_weights or 'packaged'}"
        if cfg.audio:
            audio.egemaps_names()  # load openSMILE now, not inside the first clip's timing

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = [self.extract(row) for row in batch.select(list(INPUT_COLUMNS)).to_pylist()]
        return schemas.from_rows(rows, FEATURES)

    def extract(self, clip: dict[str, Any]) -> dict[str, Any]:
        """One features row for one clip; failures become `error` / `audio_reason`, never exceptions."""
        started = time.perf_counter()
        row: dict[str, Any] = {k: clip[k] for k in ("clip_id", "corpus", "sha256")}
        row["extractor_version"] = self.version
        path = self.roots[clip["corpus"]] / clip["media_path"]
        if not path.exists():
            return {**row, "error": "missing_media", "error_detail": f"{path} does not exist"}
        try:
            if clip["media_form"] != "audio":
                self._video(row, path, (clip.get("width"), clip.get("height")))
            if self.cfg.audio:
                self._audio(row, path)
        except Exception as err:  # noqa: BLE001 - an unforeseen failure belongs to this clip, not the batch
            log.exception("extract %s failed", clip["clip_id"])
            row.setdefault("error", "extract_failed")
            row.setdefault("error_detail", f"{type(err).__name__}: {err}"[:500])
        log.debug("extract %s: %.3f s", clip["clip_id"], time.perf_counter() - started)
        return row

    def _video(self, row: dict[str, Any], path: pathlib.Path, size: tuple[Any, Any]) -> None:
        from emopipe.stages.faces import align_crop

        cfg = self.cfg
        try:
            sampled = frames.read_frames(path, cfg.n_frames, cfg.frame_size, size if all(size) else None, cfg.decoder)
        except frames.FrameError as err:
            row.update(error=err.code, error_detail=err.detail)
            return
        found = self.detector.detect(sampled.frames)
        row.update(
            n_source_frames=sampled.n_source_frames,
            frame_indices=sampled.indices,
            frame_times_s=[None if np.isnan(t) else t for t in sampled.times_s],
            frame_height=int(sampled.frames.shape[1]),
            frame_width=int(sampled.frames.shape[2]),
            face_detector=self.detector_name,
            face_boxes=[
                None if f is None else dict(zip(("x1", "y1", "x2", "y2"), f.box, strict=True), score=f.score)
                for f in found
            ],
            face_box_sources=[None if f is None else f.source for f in found],
            face_landmarks=[
                None if f is None or f.landmarks is None else [c for pt in f.landmarks for c in pt] for f in found
            ],
            face_crops_jpeg=[
                None if f is None else encode_jpeg(align_crop(frame, f, cfg.crop_size), cfg.jpeg_quality)
                for frame, f in zip(sampled.frames, found, strict=True)
            ],
            face_share=sum(f is not None for f in found) / len(found),
        )
        if cfg.keep_frames:
            row["frames_jpeg"] = [encode_jpeg(f, cfg.jpeg_quality) for f in sampled.frames]

    def _audio(self, row: dict[str, Any], path: pathlib.Path) -> None:
        """Audio columns of one clip: the first `max_audio_s` seconds (decoding stops there), as numpy, not lists.

        The row holds the log-mel as a list of per-frame numpy rows and eGeMAPS as an array, which Arrow converts
        without making a Python float per value; PCM, log-mel and eGeMAPS all cover the same kept window, and
        `audio_duration_s` is its length (shorter than the clip's `duration_s` when the track was cut).
        """
        try:
            signal = audio.read_audio(path, max_seconds=self.cfg.max_audio_s)
        except audio.AudioError as err:
            row["audio_reason"] = err.code
            if err.code != "no_audio_stream":  # a silent video is a fact; a broken track is an error
                row.setdefault("error", err.code)
                row.setdefault("error_detail", err.detail)
            return
        row.update(
            audio_sample_rate=audio.SAMPLE_RATE,
            audio_pcm16=audio.to_pcm16(signal),
            audio_duration_s=signal.size / audio.SAMPLE_RATE,
            log_mel=list(audio.log_mel(signal)),
            egemaps=audio.egemaps(signal),
        )


class ExtractStage(Stage):
    """The extraction stage: a clips row in, its features row out (frames, faces, crops, audio, log-mel, eGeMAPS).

    Args:
        cfg: the `extract_features:` section.
        roots: corpus name -> root folder that the clips' media_path is relative to.
    """

    name = "extract_features"
    input_columns = INPUT_COLUMNS
    output_schema = FEATURES
    failure_code = "extract_failed"
    resources = Resources(cpus=1.0)

    def __init__(self, cfg: ExtractConfig, roots: dict[str, str]) -> None:
        self.cfg, self.roots = cfg, {c: str(r) for c, r in roots.items()}
        self.batch_size = cfg.batch_size
        self._inner: ClipExtractor | None = None

    @property
    def version(self) -> str:
        return extractor_version(self.cfg)

    def setup(self) -> None:
        self._inner = ClipExtractor(self.cfg, self.roots)

    def process(self, batch: pa.Table) -> pa.Table:
        if self._inner is None:
            self.setup()
        return self._inner(batch)

    def error_rows(self, batch: pa.Table, code: str, detail: str) -> pa.Table:
        rows = [
            {"clip_id": r["clip_id"], "corpus": r["corpus"], "sha256": r["sha256"], "extractor_version": self.version,
             "error": code, "error_detail": detail}
            for r in batch.to_pylist()
        ]  # fmt: skip
        return schemas.from_rows(rows, FEATURES)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_inner": None}  # the detector is loaded on the worker, never shipped
