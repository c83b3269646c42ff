"""Labelling throughput: the default labeler (FER-2013 mini-Xception on face crops) with 1 vs 2 Ray actors, and the
video-LLM labeler with batch 1 vs batch 8.

FER: builds a features table of `--clips` clips, each with 16 aligned 112x112 face crops of a real photograph
(as extract_features stores them), then runs the label_clips Ray Data plan over it with 1 and with 2 actors,
twice each, at two sizes (the table once and `--scale` times) so the pool's fixed cost (starting actors,
loading the model) is separated from the marginal rate (the labeler's stage on the Ray executor). The
in-process baseline is the same stage on the in-process executor.

Video LLM (`--llm-clips`, 0 skips it): the tiny Qwen2.5-Omni thinker of the tests (random weights, a few vision
tokens per frame) labels clips of 16 frames of the same photograph (224 px high) and 3 s of audio, every reply
exactly `--llm-tokens` tokens (`min_new_tokens` in its generation_config.json), in-process on CPU, with
`batch_size` 1 and 8; median of 3 runs each. It measures what batching saves around a model this small (padding,
one generate call per batch instead of one per clip), not a real model's speed: see benchmarks/gpu_llm.py.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe.config import LabelConfig


def _features(n: int) -> pa.Table:
    from tests.corpora import face_frames

    from emopipe.stages.extract import encode_jpeg
    from emopipe.stages.faces import align_crop, make_detector

    frames = face_frames(16)
    faces = make_detector("mtcnn").detect(frames)
    crops = [encode_jpeg(align_crop(f, face, 112), 90) for f, face in zip(frames, faces, strict=True)]
    return pa.table(
        {
            "clip_id": [f"bench:{i:06d}" for i in range(n)],
            "corpus": ["bench"] * n,
            "sha256": [f"{i:064x}" for i in range(n)],
            "face_crops_jpeg": [crops] * n,
        }
    )


def _ray(cfg: LabelConfig, path: pathlib.Path) -> float:
    """The labeler's stage on the Ray executor's actor pool (what label_clips runs), over a Parquet file."""
    from emopipe.executor import RayExecutor
    from emopipe.labelers.stage import LabelStage

    t = time.perf_counter()
    stage = LabelStage(cfg.labelers[0], cfg.batch_size)
    n = sum(b.num_rows for b in RayExecutor(cfg.num_workers, gpus=0).map(stage, path))
    assert n == pq.ParquetFile(path).metadata.num_rows  # noqa: S101 - a run that lost rows measures nothing
    return time.perf_counter() - t


def _inline(cfg: LabelConfig, table: pa.Table) -> float:
    """The same stage in this process (the in-process executor)."""
    from emopipe.executor import InProcessExecutor
    from emopipe.labelers.stage import LabelStage

    t = time.perf_counter()
    for _ in InProcessExecutor().map(LabelStage(cfg.labelers[0], cfg.batch_size), table):
        pass
    return time.perf_counter() - t


def _llm_rows(n: int) -> list[dict]:
    import numpy as np
    from tests.corpora import face_frames, tone

    from emopipe.stages.audio import to_pcm16
    from emopipe.stages.extract import encode_jpeg

    frames = [encode_jpeg(f, 90) for f in face_frames(16, (398, 224))]
    rows = []
    for i in range(n):
        audio = to_pcm16(tone(3.0, hz=180 + 5 * i, rate=16000) + np.float32(0.001 * i))
        times = [3.0 * (k + 0.5) / 16 for k in range(16)]
        rows.append({"clip_id": f"bench:{i:04d}", "frames_jpeg": frames, "frame_times_s": times, "audio_pcm16": audio})
    return rows


def _llm(n_clips: int, tokens: int, batches: tuple[int, ...] = (1, 8), repeats: int = 3) -> dict:
    """Clips/s and generated tokens/s of the video-LLM labeler with each batch size (median of `repeats`)."""
    import statistics

    import torch
    from tests import tiny_models
    from transformers import GenerationConfig

    from emopipe.config import LabelerSpec
    from emopipe.labelers import video_llm
    from emopipe.labelers.base import make_labeler

    torch.set_num_threads(1)  # as in a label_clips actor
    out: dict = {
        "model": "tiny Qwen2.5-Omni thinker (tests/tiny_models.py), random weights, float32, CPU",
        "clips": n_clips,
        "tokens_per_clip": tokens,
        "inputs": "16 frames 398x224 + 3 s audio",
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="emopipe-bench-llm-") as tmp:
        folder = tiny_models.qwen2_5_omni_thinker(pathlib.Path(tmp) / "omni")
        config = GenerationConfig.from_pretrained(folder)
        config.min_new_tokens = tokens  # every reply the same length: rates compare like with like
        config.save_pretrained(folder)
        rows = _llm_rows(n_clips)
        spec = LabelerSpec(name="llm", kind="video_llm", path=str(folder), max_new_tokens=tokens)
        labeler = make_labeler(spec)
        for batch in batches:
            labeler.spec = spec.model_copy(update=dict(batch_size=batch))  # the version ignores the batch size
            labeler.label_batch(rows[:batch])  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                results = labeler.label_batch(rows)
                times.append(time.perf_counter() - t)
            wall = statistics.median(times)
            generated = sum(r.generated_tokens for r in results)
            assert {r.generated_tokens for r in results} == {tokens}  # noqa: S101 - else the rates compare nothing
            # the inputs alone (JPEG decode, resize and patches, Whisper features, prompts): batching cannot save these
            spent = []
            for _ in range(repeats):
                t = time.perf_counter()
                clips = [video_llm.to_clip(row, audio=True) for row in rows]
                for start in range(0, n_clips, batch):
                    labeler.backend.inputs(clips[start : start + batch], labeler.prompt, None)
                spent.append(time.perf_counter() - t)
            inputs = statistics.median(spent)
            out["runs"][f"batch_{batch}"] = {
                "wall_s": round(wall, 3),
                "clips_per_s": round(n_clips / wall, 2),
                "generated_tokens_per_s": round(generated / wall, 1),
                "inputs_s": round(inputs, 3),
                "generate_clips_per_s": round(n_clips / max(wall - inputs, 1e-9), 2),
            }
    first, last = (out["runs"][f"batch_{b}"] for b in (batches[0], batches[-1]))
    out[f"speedup_batch_{batches[-1]}_vs_{batches[0]}"] = round(last["clips_per_s"] / first["clips_per_s"], 2)
    out[f"generate_speedup_batch_{batches[-1]}_vs_{batches[0]}"] = round(
        last["generate_clips_per_s"] / first["generate_clips_per_s"], 2
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--scale", type=int, default=4, help="the large size labels the table this many times")
    parser.add_argument("--batch-size", type=int, default=LabelConfig.model_fields["batch_size"].default)
    parser.add_argument("--llm-clips", type=int, default=32, help="clips for the video-LLM part; 0 skips it")
    parser.add_argument("--llm-tokens", type=int, default=32, help="tokens generated per clip")
    parser.add_argument("--skip-fer", action="store_true", help="only the video-LLM part")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from emopipe.raycluster import connect

    out: dict = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}  # the machine is shared: say how busy
    if args.llm_clips:
        out["video_llm"] = _llm(args.llm_clips, args.llm_tokens)
    if args.skip_fer:
        return out
    out |= {"clips": args.clips, "scale": args.scale, "crops_per_clip": 16, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="emopipe-bench-label-") as tmp:
        os.environ.setdefault("RAY_AUTH_TOKEN_PATH", str(pathlib.Path(tmp) / "ray-token"))
        small = _features(args.clips)
        large = pa.concat_tables([small] * args.scale)
        paths = {}
        for name, table in (("small", small), ("large", large)):
            paths[name] = pathlib.Path(tmp) / f"{name}.parquet"
            pq.write_table(table, paths[name], row_group_size=args.batch_size)
        cfg1 = LabelConfig(num_workers=1, batch_size=args.batch_size)
        out["inline_clips_per_s"] = round(small.num_rows / _inline(cfg1, small), 2)
        t = time.perf_counter()
        with connect(None, 2):
            out["ray_init_s"] = round(time.perf_counter() - t, 2)
            for workers in (1, 2):
                cfg = LabelConfig(num_workers=workers, batch_size=args.batch_size)
                s, g = _ray(cfg, paths["small"]), _ray(cfg, paths["large"])
                marginal = (large.num_rows - small.num_rows) / max(g - s, 1e-9)
                out[f"ray_{workers}_actors"] = {
                    "small_s": round(s, 2),
                    "large_s": round(g, 2),
                    "clips_per_s_large": round(large.num_rows / g, 2),
                    "marginal_clips_per_s": round(marginal, 2),
                    "fixed_cost_s": round(max(0.0, s - small.num_rows / marginal), 2),
                }
            assert ray.is_initialized()  # noqa: S101
    one, two = out["ray_1_actors"]["marginal_clips_per_s"], out["ray_2_actors"]["marginal_clips_per_s"]
    out["speedup_2_vs_1_actors"] = round(two / one, 2)
    return out


if __name__ == "__main__":
    import json
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # for tests/corpora.py

    result = main()
    path = pathlib.Path(__file__).resolve().parent / "results" / "label.json"
    if "--skip-fer" in sys.argv:  # keep the FER figures of the last full run; replace what was measured now
        previous = json.loads(path.read_text()) if path.is_file() else {}
        result["video_llm"]["load_average_1m_at_start"] = result.pop("load_average_1m_at_start")
        result = {**previous, **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
