"""MTCNN on a GPU against the CPU on the same frames: clips/s and whether the faces agree. Prepared, not yet run.

Two steps, so the device machine needs torch, numpy and OpenCV only (no Ray, no decord, no scikit-image, no
network):

    # here: the photographs (scikit-image's real faces and face-free photos) and the MTCNN weights, ~6 MB
    .venv/bin/python benchmarks/gpu_check.py prepare --inputs work/gpu_inputs
    # on the device machine (the `run` tool, carrying work/gpu_inputs):
    python benchmarks/gpu_check.py run --inputs work/gpu_inputs --out $OUT/gpu_check.json

Without a CUDA device (`make bench` here) it measures nothing and says so.

`run` renders the moving-face clips of tests/moving_faces.py (16 frames of 398x224 each, real faces that pan, zoom
and cut, with face-free shots) and runs `emopipe.stages.faces` on them: the full cascade on every frame
(`mtcnn_full`) and the tracked detector (`mtcnn`, the default), each on `cpu` (one thread, as one extraction actor
per core runs it, and all the machine's threads) and on `cuda`. It reports clips/s per variant (wall clock, after
a warm-up clip), frames through the full cascade, and for cuda how its faces compare with the CPU's on the same
frames (IoU, score). Sizes are kept small so the whole run takes well under the device's 10 minutes a command.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import shutil
import sys
import time
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO / "src", REPO):  # emopipe from this checkout, and tests/moving_faces.py
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def prepare(inputs: pathlib.Path) -> None:
    """Write the photographs and the MTCNN weights into `inputs` (run where scikit-image and the weights are)."""
    from tests.moving_faces import load_photos

    from emopipe import weights
    from emopipe.stages.faces import MTCNN_FILES

    inputs.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(inputs / "photos.npz", **load_photos())
    for name in MTCNN_FILES:
        shutil.copy(weights.path("mtcnn", name), inputs / name)
    print(f"wrote {inputs}: {sorted(p.name for p in inputs.iterdir())}")


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    from tests.moving_faces import iou

    return iou(a, b)


def _timed(detector: Any, clips: list[np.ndarray]) -> tuple[float, list]:
    detector.detect(clips[0])  # warm-up: CUDA context, kernels, allocator
    detector.counts = {"full": 0, "tracked": 0}
    found = []
    start = time.perf_counter()
    for frames in clips:
        found += detector.detect(frames)
    if detector.device.type == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start, found


def run(inputs: pathlib.Path, n_clips: int) -> dict[str, Any]:
    """Every variant on the same clips; returns the report."""
    import torch
    from tests.moving_faces import moving_face_clip

    from emopipe.stages.faces import make_detector

    photos = dict(np.load(inputs / "photos.npz"))
    clips = [moving_face_clip(seed, photos, size=(398, 224))[0] for seed in range(n_clips)]
    report: dict[str, Any] = {
        "clips": n_clips,
        "frames_per_clip": 16,
        "frame_size": [398, 224],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads_available": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "variants": {},
    }
    all_threads = torch.get_num_threads()
    found: dict[str, list] = {}
    devices = [("cpu", 1), ("cpu", all_threads)] + ([("cuda", all_threads)] if torch.cuda.is_available() else [])
    for detector_name in ("mtcnn_full", "mtcnn"):
        for device, threads in devices:
            torch.set_num_threads(threads)
            detector = make_detector(detector_name, str(inputs), device, 20, min_face_fraction=0.1)
            seconds, faces = _timed(detector, clips)
            key = f"{detector_name} {device} {threads} thread(s)"
            found[key] = faces
            report["variants"][key] = {
                "clips_per_s": round(n_clips / seconds, 2),
                "ms_per_clip": round(1000 * seconds / n_clips, 1),
                "frames_through_full_cascade": detector.counts["full"],
                "faces": sum(f is not None for f in faces),
            }
    torch.set_num_threads(all_threads)
    for detector_name in ("mtcnn_full", "mtcnn"):
        cpu, gpu = (
            found[f"{detector_name} cpu 1 thread(s)"],
            found.get(f"{detector_name} cuda {all_threads} thread(s)"),
        )
        if gpu is None:
            continue
        both = [(c, g) for c, g in zip(cpu, gpu, strict=True) if c is not None and g is not None]
        ious = [_iou(c.box, g.box) for c, g in both]
        report["variants"][f"{detector_name} cuda {all_threads} thread(s)"]["against_cpu"] = {
            "frames_face_on_one_only": sum((c is None) != (g is None) for c, g in zip(cpu, gpu, strict=True)),
            "min_iou": round(min(ious), 4) if ious else None,
            "median_iou": round(float(np.median(ious)), 4) if ious else None,
            "max_score_diff": round(max(abs(c.score - g.score) for c, g in both), 5) if both else None,
        }
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The report (run_all.py calls this with no arguments: without a CUDA device it says so and measures nothing)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", choices=["prepare", "run"], default="run")
    parser.add_argument("--inputs", type=pathlib.Path, default=REPO / "work" / "gpu_inputs")
    parser.add_argument("--clips", type=int, default=24, help="moving-face clips per variant")
    parser.add_argument("--out", type=pathlib.Path, help="write the report JSON here")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.inputs)
        return {"benchmark": "gpu_check", "prepared": str(args.inputs)}
    import torch

    if not torch.cuda.is_available():
        return {"benchmark": "gpu_check", "skipped": "no CUDA device on this machine; nothing was measured"}
    if not (args.inputs / "photos.npz").is_file():
        parser.error(f"{args.inputs / 'photos.npz'} is missing: run `gpu_check.py prepare --inputs DIR` first")
    report = {"benchmark": "gpu_check", **run(args.inputs, args.clips)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
