"""extract_features throughput against a naive frame-folder baseline and a decode-only floor; actor memory.

Corpus (generated, files in page cache): `--clips` clips of each kind, 3 s long, each slightly different
(pan offset, tone pitch, grain seed). The picture pans across scikit-image's astronaut photograph (a real
face) with a little grain; the sound is a tone with a harmonic.
- 720p: 1280x720 30 fps H.264 (x264 veryfast, 8 Mbit/s) + AAC 48 kHz in .mp4, like RAVDESS (whose clips
  average ~10 Mbit/s: 24.8 GB over 7356 files). `emopipe.demo.write_mp4` (CRF 28) gives ~0.2 Mbit/s on this
  picture, which decodes ~3x faster than footage at RAVDESS's bitrate, so the writer here targets a bitrate.
- 360p: 640x360 25 fps MPEG-4 Part 2 (1.5 Mbit/s) + MP3 in .avi, like DFEW's movie clips.

Variants, each over the same clips:
- stage: `extract_features.build()` (the Ray Data actor pool running `ClipExtractor`), every batch iterated,
  with 1 and 2 actors. Each is timed on the 360p clips at two sizes so the fixed cost of starting the pool
  (actors import torch, load MTCNN and openSMILE) is separated from the marginal rate: 1 actor on `--small`
  and `--clips` clips, 2 actors on `--clips` and `--rss-clips` (with 2 actors, 16 vs 48 clips, i.e. 1 vs 3
  batches per actor, gave fits that varied 2.6-7.5 s in fixed cost between runs, as the actors start at
  different times). The 720p rate is the marginal one, with that fixed cost taken off. `ray.init` is timed
  on its own.
- naive baseline, the way DFEW/MAFW-style face-frame folders are made: every frame to a JPEG file (no
  ffmpeg binary here: PyAV decodes every frame, cv2.imwrite writes it at quality 95, like `ffmpeg -q:v 2`),
  the audio to a 16 kHz WAV file; MTCNN on every frame image (read back, resized to the stage's 224 px short
  side, in batches of 16), every face crop written as a JPEG; then 16 crops sampled uniformly and read, and
  the same log-mel and eGeMAPS computed from the WAV. Slow, so measured on `--naive-clips` of each kind.
- decode-only floor: what the stage cannot avoid, the 16 sampled frames (decord, resized at decode to 224 px
  short side) and the audio (16 kHz mono), no models.
- stage without models: `ClipExtractor` batches with the face detector swapped for a fixed face in the frame
  centre and eGeMAPS for zeros: decoding, alignment warps, JPEG encoding of frames and crops, log-mel, PCM and
  the Arrow rows, i.e. the stage's own overhead above the floor.
Floor, no-model and naive variants run in `multiprocessing` (spawn) pools of 1 and 2 processes, with one torch
and one BLAS thread per process as in a Ray actor (OMP_NUM_THREADS=1), pool start-up and model loading excluded.

Peak memory per actor is polled with psutil (every 0.25 s, this driver's processes whose command line names
ClipExtractor) during the 2-actor runs, and compared between the 360p clips and those rows repeated to
`--rss-clips`: RSS, and USS (private pages; RSS also counts the Ray object-store pages an actor wrote to).

Targets (reported, not asserted): stage >= 5x the naive baseline at the same core count; the no-model stage
within 1.5x of the floor's time; peak actor RSS flat from `--clips` to `--rss-clips` (within ~20 %).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import multiprocessing
import multiprocessing.pool
import os
import pathlib
import resource
import shutil
import sys
import tempfile
import threading
import time
import types
import wave
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SECONDS = 3.0
AUDIO_RATE = 48_000


class Kind(NamedTuple):
    """One kind of generated clip."""

    name: str
    corpus: str
    width: int
    height: int
    fps: int
    ext: str
    video_codec: str
    bit_rate: int
    audio_codec: str
    grain: int  # amplitude of the per-frame noise added to the picture


KINDS = (
    Kind("720p", "ravdess", 1280, 720, 30, "mp4", "libx264", 8_000_000, "aac", 10),
    Kind("360p", "dfew", 640, 360, 25, "avi", "mpeg4", 1_500_000, "mp3", 8),
)


# ---------------------------------------------------------------------------------------------------------------------
# Corpus


def _write_clip(job: tuple[Kind, int, str]) -> dict[str, Any]:
    """Encode clip number `k` of a kind: the astronaut panning (offset by k) with grain, a tone (pitch by k)."""
    import av
    import cv2
    from skimage import data

    kind, k, path = job
    photo = data.astronaut()  # 512x512; the face is around x 150-230, y 70-170
    rng = np.random.default_rng(k)
    n = round(SECONDS * kind.fps)
    window = 360  # photo pixels across the frame
    scale = kind.width / window
    start, top = 7 * k % 60, 20 + 3 * (k % 7)
    t = np.arange(int(SECONDS * AUDIO_RATE)) / AUDIO_RATE
    hz = 180.0 + 9.0 * k
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) * 20)
    tone = (0.3 * envelope * (np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t))).astype(np.float32)
    with av.open(path, mode="w") as out:
        video = out.add_stream(kind.video_codec, rate=kind.fps)
        video.width, video.height, video.pix_fmt = kind.width, kind.height, "yuv420p"
        video.bit_rate = kind.bit_rate
        if kind.video_codec == "libx264":
            video.options = {"preset": "veryfast", "threads": "1"}
        sound = out.add_stream(kind.audio_codec, rate=AUDIO_RATE, layout="mono")
        for i in range(n):
            x0 = start + 60 * i / (n - 1)
            matrix = np.float32([[scale, 0, -x0 * scale], [0, scale, -top * scale]])
            img = cv2.warpAffine(photo, matrix, (kind.width, kind.height), flags=cv2.INTER_LINEAR)
            img = cv2.add(img, np.repeat(rng.integers(0, kind.grain, (kind.height, kind.width, 1), np.uint8), 3, 2))
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
        for s in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, s
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    data_bytes = pathlib.Path(path).read_bytes()
    return {"sha256": hashlib.sha256(data_bytes).hexdigest(), "bytes": len(data_bytes)}


def make_corpus(root: pathlib.Path, n: int, pool: multiprocessing.pool.Pool) -> dict[str, Any]:
    """Write n clips of each kind under root/<corpus>/; returns {kind name: clips table} and the bitrates."""
    import pyarrow as pa

    jobs, rows = [], []
    for kind in KINDS:
        (root / kind.corpus).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            name = f"{kind.name}_{k:03d}.{kind.ext}"
            jobs.append((kind, k, str(root / kind.corpus / name)))
            rows.append(
                {
                    "clip_id": f"{kind.corpus}:{name}",
                    "corpus": kind.corpus,
                    "media_path": name,
                    "media_form": "video",
                    "width": kind.width,
                    "height": kind.height,
                }
            )
    written = pool.map(_write_clip, jobs, chunksize=1)
    tables, kbps = {}, {}
    for kind in KINDS:
        mine = [(r, w) for r, w, j in zip(rows, written, jobs, strict=True) if j[0].name == kind.name]
        tables[kind.name] = pa.Table.from_pylist([{**r, "sha256": w["sha256"]} for r, w in mine])
        kbps[kind.name] = round(sum(w["bytes"] for _, w in mine) * 8 / SECONDS / len(mine) / 1000)
    return {"tables": tables, "kbit_per_s": kbps}


# ---------------------------------------------------------------------------------------------------------------------
# Process pools: floor, stage without models, naive baseline. State set up by the initializers lives here.

_STATE: dict[str, Any] = {}


def _this_module() -> types.ModuleType:
    """This file as a module that spawned processes can import (run_all.py loads it under a private name)."""
    if __name__ == "__main__":
        return sys.modules["__main__"]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(pathlib.Path(__file__).stem)


def _init(role: str, cfg: Any = None, roots: dict[str, str] | None = None) -> None:
    """Pool initializer: imports, and for the model variants the detector, outside the timings."""
    if role == "generate":
        return
    import av  # noqa: F401
    import cv2  # noqa: F401
    import decord  # noqa: F401
    import torch

    torch.set_num_threads(1)
    _STATE["role"] = role
    if role in ("stage", "no_models"):
        from emopipe.stages import audio
        from emopipe.stages.extract import ClipExtractor

        _STATE["extractor"] = extractor = ClipExtractor(cfg, roots or {})
        if role == "no_models":
            extractor.detector = _CentreFace()
            audio.egemaps = lambda signal, sample_rate=audio.SAMPLE_RATE: np.zeros(88, np.float32)
    elif role == "naive":
        from emopipe.stages import audio
        from emopipe.stages.faces import make_detector

        audio.egemaps_names()  # load openSMILE now
        _STATE["cfg"], _STATE["detector"] = cfg, make_detector(cfg.face_detector, cfg.face_weights, "cpu")


def _warm(_: int) -> int:
    time.sleep(0.5)  # long enough that every process of the pool takes one and runs its initializer
    return os.getpid()


class _CentreFace:
    """Stands in for the detector: the same face (ArcFace landmarks, centred) in every frame, no model."""

    def detect(self, frames: np.ndarray) -> list[Any]:
        from emopipe.stages.faces import ARCFACE_TEMPLATE, Face

        h, w = frames.shape[1:3]
        points = ARCFACE_TEMPLATE * (h / 2 / 112) + np.array([w / 2 - h / 4, h / 4])
        box = (w / 2 - h / 4, h / 4, w / 2 + h / 4, 3 * h / 4)
        face = Face(box=box, score=1.0, landmarks=tuple((float(x), float(y)) for x, y in points))
        return [face] * len(frames)


def _floor_clip(job: tuple[str, int, int]) -> int:
    """Decode what the stage must: 16 frames resized at decode, and the audio at 16 kHz."""
    from emopipe.stages import audio, frames

    path, width, height = job
    sampled = frames.read_frames(pathlib.Path(path), 16, 224, (width, height))
    return sampled.frames.shape[0] + int(audio.read_audio(pathlib.Path(path)).size > 0)


def _extract_batch(batch: Any) -> int:
    """The stage's `ClipExtractor` on one batch (for "no_models", detector and eGeMAPS swapped out: see _init)."""
    out = _STATE["extractor"](batch)
    return out.num_rows - out["error"].null_count  # clips with an error


def _naive_clip(job: tuple[str, str]) -> int:
    """Frames to JPEG files, audio to WAV, MTCNN on every frame image, crops to JPEG files, sample 16."""
    import av
    import cv2

    from emopipe.stages import audio
    from emopipe.stages.faces import align_crop
    from emopipe.stages.frames import sample_indices, target_size

    path, out_dir = pathlib.Path(job[0]), pathlib.Path(job[1])
    cfg, detector = _STATE["cfg"], _STATE["detector"]
    frame_dir, crop_dir = out_dir / "frames", out_dir / "faces"
    frame_dir.mkdir(parents=True)
    crop_dir.mkdir()
    # ffmpeg -i clip -q:v 2 frames/%05d.jpg  (one decoding thread: the comparison is per core)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for i, frame in enumerate(container.decode(stream)):
            cv2.imwrite(str(frame_dir / f"{i + 1:05d}.jpg"), frame.to_ndarray(format="bgr24"))
    # ffmpeg -i clip -vn -ac 1 -ar 16000 audio.wav
    with wave.open(str(out_dir / "audio.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.SAMPLE_RATE)
        w.writeframes(audio.to_pcm16(audio.read_audio(path)))
    # the face detector over every frame image, at the stage's frame size; every crop saved
    images = sorted(frame_dir.iterdir())
    for start in range(0, len(images), 16):
        chunk = []
        for p in images[start : start + 16]:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            size = target_size(bgr.shape[1], bgr.shape[0], cfg.frame_size)
            chunk.append(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
        for p, img, face in zip(images[start : start + 16], chunk, detector.detect(np.stack(chunk)), strict=True):
            if face is not None:
                crop = align_crop(img, face, cfg.crop_size)[..., ::-1]
                cv2.imwrite(str(crop_dir / p.name), crop, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    # the training-time sampling: 16 crops uniformly over the clip; audio features from the WAV
    found = 0
    for i in sample_indices(len(images), cfg.n_frames):
        crop_path = crop_dir / images[i].name
        found += crop_path.exists() and cv2.imread(str(crop_path)) is not None
    with wave.open(str(out_dir / "audio.wav"), "rb") as w:
        signal = audio.from_pcm16(w.readframes(w.getnframes()))
    audio.log_mel(signal)
    audio.egemaps(signal)
    return found


def _pool(procs: int, role: str, cfg: Any = None, roots: dict[str, str] | None = None) -> multiprocessing.pool.Pool:
    """A started spawn pool whose processes have run their initializer."""
    ctx = multiprocessing.get_context("spawn")
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # as Ray sets for a 1-CPU actor: one BLAS thread, else 2 processes thrash
    try:
        pool = ctx.Pool(procs, initializer=_this_module()._init, initargs=(role, cfg, roots))
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before
    pool.map(_this_module()._warm, range(procs), chunksize=1)
    return pool


def _timed(pool: multiprocessing.pool.Pool, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> tuple[float, list]:
    t = time.perf_counter()
    out = pool.map(getattr(_this_module(), fn.__name__), list(jobs), chunksize=1)
    return time.perf_counter() - t, out


# ---------------------------------------------------------------------------------------------------------------------
# The Ray stage


class ActorRss(threading.Thread):
    """Polls the memory of this driver's Ray actors whose command line names `marker` (Ray titles actors by class).

    RSS counts the pages of the Ray object store (shared memory) that an actor has written its output to; USS
    (pages private to the process) leaves them out, so both are kept.
    """

    def __init__(self, marker: str = "ClipExtractor", interval_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.marker, self.interval_s = marker, interval_s
        self.peak: dict[str, dict[int, int]] = {"rss": {}, "uss": {}}
        self.samples: list[tuple[float, int, int]] = []  # (time, largest actor RSS, largest USS) per poll
        self._done = threading.Event()

    def actors(self) -> list[Any]:
        """This process's Ray actors (local Ray's processes descend from the driver; other Ray instances do not)."""
        import psutil

        found = []
        for proc in psutil.Process().children(recursive=True):
            try:
                if any(self.marker in part for part in proc.cmdline()):
                    found.append(proc)
            except psutil.Error:
                pass
        return found

    def run(self) -> None:
        import psutil

        while not self._done.is_set():
            rss, uss = [0], [0]
            for proc in self.actors():
                try:
                    mem = proc.memory_full_info()
                except psutil.Error:
                    continue
                for key, value, now in (("rss", mem.rss, rss), ("uss", mem.uss, uss)):
                    now.append(value)
                    self.peak[key][proc.pid] = max(self.peak[key].get(proc.pid, 0), value)
            if max(rss):
                self.samples.append((time.monotonic(), max(rss), max(uss)))
            self._done.wait(self.interval_s)

    def __enter__(self) -> ActorRss:
        deadline = time.monotonic() + 60
        while self.actors() and time.monotonic() < deadline:  # the last run's actors, still shutting down
            time.sleep(0.2)
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join()

    def mb(self, key: str = "rss") -> list[float]:
        """Each actor's peak, MB, ascending."""
        return sorted(round(v / 2**20, 1) for v in self.peak[key].values())

    def by_quarter(self, key: str = "rss") -> list[float]:
        """The largest actor's memory (MB) in each quarter of the run: flat when it does not grow with clips."""
        if not self.samples:
            return []
        column = 1 if key == "rss" else 2
        t0, t1 = self.samples[0][0], self.samples[-1][0]
        out = [0.0] * 4
        for sample in self.samples:
            q = min(3, int(4 * (sample[0] - t0) / max(t1 - t0, 1e-9)))
            out[q] = max(out[q], round(sample[column] / 2**20, 1))
        return out


def _stage(workers: int, batch_size: int, clips: Any, roots: dict[str, str]) -> dict[str, Any]:
    """One extract_features run through `build()`: seconds, and each actor's peak RSS."""
    from emopipe.config import ExtractConfig
    from emopipe.pipelines.extract_features import build

    cfg = ExtractConfig(num_workers=workers, batch_size=batch_size)
    n, errors, shares = 0, 0, []
    with ActorRss() as rss:
        t = time.perf_counter()
        for batch in build(cfg, clips, roots).iter_batches(batch_format="pyarrow", batch_size=None):
            n += batch.num_rows
            errors += batch.num_rows - batch["error"].null_count
            shares += batch["face_share"].to_pylist()
        seconds = time.perf_counter() - t
    # a benchmark on broken data measures nothing
    assert n == clips.num_rows and errors == 0 and np.mean(shares) > 0.9, (n, errors, np.mean(shares))  # noqa: S101
    memory = {f"{k}_mb": rss.mb(k) for k in ("rss", "uss")}
    return {"seconds": seconds, **memory, **{f"{k}_mb_by_quarter": rss.by_quarter(k) for k in ("rss", "uss")}}


# ---------------------------------------------------------------------------------------------------------------------


class CpuLedger(threading.Thread):
    """CPU seconds used by this process's descendants while it runs, polled (an exited one keeps its last reading).

    Polling rather than RUSAGE_CHILDREN: Ray's raylet does not pass on its dead workers' times.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval_s, self.started = interval_s, time.time()
        self.used: dict[int, tuple[float, float]] = {}  # pid -> (CPU seconds when first seen or 0, latest)
        self._done = threading.Event()

    def poll(self) -> None:
        import psutil

        for proc in psutil.Process().children(recursive=True):
            try:
                cpu, created = proc.cpu_times(), proc.create_time()
            except psutil.Error:
                continue
            value = cpu.user + cpu.system
            base = self.used.get(proc.pid, (0.0 if created >= self.started else value, 0.0))[0]
            self.used[proc.pid] = (base, value)

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.poll()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def clock(self) -> tuple[float, float, float]:
        """(wall, CPU seconds busy on the whole machine, CPU seconds of this process and its descendants)."""
        import psutil

        self.poll()
        machine = psutil.cpu_times()
        me = resource.getrusage(resource.RUSAGE_SELF)
        ours = me.ru_utime + me.ru_stime + sum(last - base for base, last in self.used.values())
        return time.monotonic(), machine.user + machine.nice + machine.system + machine.irq + machine.softirq, ours


def _others_share(start: tuple[float, float, float], end: tuple[float, float, float]) -> float:
    """Share of the machine's CPU time that other processes used between two `CpuLedger.clock()` readings."""
    wall = end[0] - start[0]
    others = (end[1] - start[1]) - (end[2] - start[2])
    return round(max(0.0, others) / (wall * (os.cpu_count() or 1)), 3)


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 2) if seconds > 0 else float("nan")


def _table(r: dict[str, Any]) -> str:
    """The printed summary."""
    k1, k2 = (k.name for k in KINDS)
    width = 52
    lines = [f"{k}: {v}" for k, v in r["corpus"].items()]
    for title, key in (("clips/s", "clips_per_s"), ("ratios", "ratios")):
        lines += ["", f"{title:{width}} {k1:>7} {k2:>7} {'both':>7}", "-" * (width + 24)]
        for name, v in r[key].items():
            lines.append(f"{name:{width}} {v[k1]:7.2f} {v[k2]:7.2f} {v['both']:7.2f}")
    lines.append("")
    for name, value in r["fixed_cost_s"].items():
        lines.append(f"fixed cost, {name:{width - 12}} {value:7.2f} s")
    run, sizes = r["stage_rss_run"], r["rss_sizes"]
    lines.append(f"stage, {sizes['actors']} actors, {run['clips']} x {sizes['clips']}: {run['seconds']} s")
    for key, by in r["peak_mb_per_actor"].items():
        for what, values in by.items():
            text = f"{values:.2f}" if what == "ratio" else " ".join(f"{v:.0f}" for v in values) + " MB"
            lines.append(f"peak {key.upper()} per actor, {what}: {text}")
    for phase, share in r["other_processes_cpu_share"].items():
        if share > 0.1:  # ~0.01-0.04 on an idle machine (polling misses a process's last moments)
            lines.append(f"WARNING: other processes used {share:.0%} of the CPUs during the {phase}; re-run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48, help="clips of each kind (a multiple of 2 x batch size)")
    parser.add_argument("--small", type=int, default=16, help="the smaller stage run, to separate the fixed cost")
    parser.add_argument("--naive-clips", type=int, default=8, help="clips of each kind for the naive baseline")
    parser.add_argument("--rss-clips", type=int, default=400, help="360p rows repeated to this many for peak RSS")
    parser.add_argument("--batch-size", type=int, default=8, help="extract_features.batch_size")
    parser.add_argument("--procs", type=int, default=2, help="the most processes / actors (default: 2 cores)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the result JSON here")
    args = parser.parse_args(argv)
    if sys.modules.get(__name__) is None:  # run_all.py's private name: run as a module pool processes can import
        return _this_module().main(argv)
    if not 0 < args.small < args.clips or args.naive_clips > args.clips:
        parser.error("need 0 < --small < --clips and --naive-clips <= --clips")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    counts = range(1, args.procs + 1)
    started, ledger = time.perf_counter(), CpuLedger()
    ledger.start()
    clock_start = ledger.clock()
    from emopipe.config import ExtractConfig

    cfg = ExtractConfig()
    with tempfile.TemporaryDirectory(prefix="emopipe-bench-") as tmp:
        os.environ.setdefault("RAY_AUTH_TOKEN_PATH", str(pathlib.Path(tmp) / "ray-token"))
        root = pathlib.Path(tmp) / "media"
        roots = {k.corpus: str(root / k.corpus) for k in KINDS}
        t = time.perf_counter()
        with _pool(args.procs, "generate") as pool:
            corpus = make_corpus(root, args.clips, pool)
        gen_s = time.perf_counter() - t
        tables = corpus["tables"]

        def jobs(kind: Kind, n: int | None = None) -> list[tuple[str, int, int]]:
            rows = tables[kind.name].slice(0, n).to_pylist()
            return [(str(root / kind.corpus / r["media_path"]), kind.width, kind.height) for r in rows]

        seconds: dict[str, dict[str, float]] = {}  # variant -> kind -> seconds
        for procs in counts:
            with _pool(procs, "floor") as pool:
                seconds[f"floor_{procs}p"] = {k.name: _timed(pool, _floor_clip, jobs(k))[0] for k in KINDS}
            for role in ("no_models", "stage"):
                with _pool(procs, role, cfg, roots) as pool:
                    seconds[f"{role}_pool_{procs}p"] = {}
                    for k in KINDS:
                        size = args.batch_size
                        batches = [tables[k.name].slice(i, size) for i in range(0, args.clips, size)]
                        took, failed = _timed(pool, _extract_batch, batches)
                        assert sum(failed) == 0  # noqa: S101
                        seconds[f"{role}_pool_{procs}p"][k.name] = took
        naive_dir = pathlib.Path(tmp) / "naive"
        with _pool(1, "naive", cfg) as pool:
            seconds["naive_1p"] = {}
            for k in KINDS:
                work = [(p, str(naive_dir / pathlib.Path(p).stem)) for p, _, _ in jobs(k, args.naive_clips)]
                took, found = _timed(pool, _naive_clip, work)
                assert np.mean(found) > 0.9 * cfg.n_frames, found  # noqa: S101
                seconds["naive_1p"][k.name] = took
        shutil.rmtree(naive_dir)

        clock_ray = ledger.clock()
        import pyarrow as pa
        import ray
        from ray.data import DataContext

        from emopipe.raycluster import connect

        t = time.perf_counter()
        with connect(None, num_cpus=args.procs):
            ray.get(ray.remote(lambda: 1).remote())
            ray_init_s = time.perf_counter() - t
            DataContext.get_current().enable_progress_bars = False
            # Ray Data's first run starts its helper actors (stats, autoscaling); keep that out of the first timing
            t = time.perf_counter()
            ray.data.range(4).map_batches(lambda b: b).take_all()
            ray_data_first_s = time.perf_counter() - t
            sd, hd = KINDS[1].name, KINDS[0].name
            stage: dict[str, dict[str, Any]] = {}
            for workers in counts:
                stage[f"{workers}w"] = {}
                if workers < args.procs:  # for args.procs actors, the long run below gives the second size
                    small = tables[sd].slice(0, args.small)
                    stage[f"{workers}w"]["small"] = _stage(workers, args.batch_size, small, roots)
                stage[f"{workers}w"][sd] = _stage(workers, args.batch_size, tables[sd], roots)
                stage[f"{workers}w"][hd] = _stage(workers, args.batch_size, tables[hd], roots)
            reps = -(-args.rss_clips // args.clips)
            many = pa.concat_tables([tables[sd]] * reps).slice(0, args.rss_clips)
            stage["rss"] = _stage(args.procs, args.batch_size, many, roots)
            clock_end = ledger.clock()

    ledger.stop()
    others = {
        "corpus and process pools": _others_share(clock_start, clock_ray),
        "ray stage runs": _others_share(clock_ray, clock_end),
    }
    n, n_naive = args.clips, args.naive_clips
    rates: dict[str, dict[str, float]] = {}
    fixed: dict[str, float] = {}
    fit_sizes: dict[str, list[int]] = {}
    for procs in counts:
        s = stage[f"{procs}w"]
        if procs == args.procs:  # the long run has this many actors
            (n_a, t_a), (n_b, t_b) = (n, s[sd]["seconds"]), (args.rss_clips, stage["rss"]["seconds"])
        else:
            (n_a, t_a), (n_b, t_b) = (args.small, s["small"]["seconds"]), (n, s[sd]["seconds"])
        fit_sizes[f"{procs} actor(s)"] = [n_a, n_b]
        per_clip = (t_b - t_a) / (n_b - n_a)
        fixed[f"stage {procs} actor(s)"] = round(t_a - per_clip * n_a, 2)
        seconds[f"stage_{procs}w"] = {sd: per_clip * n, hd: s[hd]["seconds"] - fixed[f"stage {procs} actor(s)"]}
        seconds[f"stage_{procs}w_with_fixed"] = {sd: s[sd]["seconds"], hd: s[hd]["seconds"]}
    fixed["ray.init"] = round(ray_init_s, 2)
    fixed["first Ray Data run (helper actors)"] = round(ray_data_first_s, 2)
    labels = {
        "naive_1p": f"naive baseline, 1 process ({n_naive} clips/kind)",
        **{f"stage_{p}w": f"stage, {p} actor(s), marginal" for p in counts},
        **{f"stage_{p}w_with_fixed": f"stage, {p} actor(s), {n} clips incl. pool start" for p in counts},
        **{f"floor_{p}p": f"decode-only floor, {p} process(es)" for p in counts},
        **{f"stage_pool_{p}p": f"stage code, {p} process(es), no Ray" for p in counts},
        **{f"no_models_pool_{p}p": f"stage without models, {p} process(es)" for p in counts},
    }
    for key, label in labels.items():
        size = n_naive if key.startswith("naive") else n
        by_kind = seconds[key]
        rates[label] = {k: _rate(size, v) for k, v in by_kind.items()}
        rates[label]["both"] = _rate(2 * size, sum(by_kind.values()))
    ratios: dict[str, dict[str, float]] = {}

    def ratio(label: str, fast: str, slow: str) -> None:
        ratios[label] = {k: round(rates[labels[fast]][k] / rates[labels[slow]][k], 2) for k in (hd, sd, "both")}

    ratio("stage 1 actor / naive 1 process (target >= 5)", "stage_1w", "naive_1p")
    ratio("stage code 1 process / naive 1 process", "stage_pool_1p", "naive_1p")
    for p in counts:
        ratio(f"floor / no-model stage, {p} proc. (target <= 1.5)", f"floor_{p}p", f"no_models_pool_{p}p")
    for p in counts:
        ratio(f"floor / stage, {p} proc. (model share)", f"floor_{p}p", f"stage_{p}w")
    for p in counts:
        ratio(f"stage {p} actor(s) / stage code {p} process(es)", f"stage_{p}w", f"stage_pool_{p}p")
    if args.procs > 1:
        ratio(f"stage {args.procs} actors / 1 actor", f"stage_{args.procs}w", "stage_1w")
        ratio(f"stage code {args.procs} processes / 1", f"stage_pool_{args.procs}p", "stage_pool_1p")
    big, small_run = stage["rss"], stage[f"{args.procs}w"][sd]
    memory = {
        key: {
            f"{n} x {sd}": small_run[f"{key}_mb"],
            f"{args.rss_clips} x {sd}": big[f"{key}_mb"],
            "ratio": round(max(big[f"{key}_mb"]) / max(small_run[f"{key}_mb"]), 3),
            f"by_quarter_of_{args.rss_clips}": big[f"{key}_mb_by_quarter"],
            f"{n} x {hd}": stage[f"{args.procs}w"][hd][f"{key}_mb"],
        }
        for key in ("rss", "uss")
    }
    result = {
        "benchmark": "extract",
        "corpus": {
            k.name: f"{k.width}x{k.height} {k.fps} fps {k.video_codec} {corpus['kbit_per_s'][k.name]} kbit/s "
            f"+ {k.audio_codec} in .{k.ext}, {SECONDS:g} s, astronaut pan with grain"
            for k in KINDS
        },
        "clips_per_kind": n,
        "stage_small_size": args.small,
        "naive_subset_per_kind": n_naive,
        "naive_method": "no ffmpeg binary: PyAV decodes every frame (1 thread), cv2.imwrite JPEG q95; audio to "
        "16 kHz WAV; MTCNN on every frame read back and resized to 224 px short side, batches of 16; every crop "
        "written as JPEG; 16 crops sampled and read; log-mel + eGeMAPS from the WAV",
        "n_frames": cfg.n_frames,
        "frame_size": cfg.frame_size,
        "crop_size": cfg.crop_size,
        "batch_size": args.batch_size,
        "face_detector": cfg.face_detector,
        "cpus": os.cpu_count(),
        "seconds": {key: {k: round(v, 3) for k, v in by.items()} for key, by in seconds.items()},
        "clips_per_s": rates,
        "ratios": ratios,
        "fixed_cost_s": fixed,
        "fixed_cost_fit_sizes": fit_sizes,
        "stage_runs_s": {
            f"{w} actor(s)": {size: round(run["seconds"], 3) for size, run in stage[f"{w}w"].items()} for w in counts
        },
        "stage_rss_run": {"clips": args.rss_clips, "seconds": round(stage["rss"]["seconds"], 2)},
        "stage_clips_per_s_at_rss_size": _rate(args.rss_clips, stage["rss"]["seconds"]),
        "rss_sizes": {"small": n, "large": args.rss_clips, "clips": sd, "actors": args.procs},
        "peak_mb_per_actor": memory,
        "peak_rss_mb_driver": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "corpus_generation_s": round(gen_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "other_processes_cpu_share": others,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    res = main(sys.argv[1:] + ([] if "--out" in sys.argv else ["--out", str(HERE / "results" / "extract.json")]))
    print(_table(res))
