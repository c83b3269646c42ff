"""Incremental refresh: what a refresh with ~1% new clips costs next to a full run, in wall time and in DVC remote
bytes, stage by stage, at two corpus sizes.

For each size: generate a corpus (`demo`: the 384-clip RAVDESS-layout demo; `N`: N tiny generated clips in the
footage layout), hold back 1% of its clips six times over, run every stage of emotion_dataset_refresh from scratch
(the baseline), then a refresh with nothing new (the fixed cost of each stage), then six refreshes that each add
one held-back 1% — the first is the measured "1% refresh", all six give the remote's growth over five refreshes in a
row. Stages are called exactly as the DAG's tasks call them (`emopipe.pipelines.refresh`), with the default
executor policy (a handful of new rows in the stage's process, more on the run's shared local Ray).

Reported per size: wall seconds per stage of the full run, the no-change refresh and the 1% refresh, their ratios;
rows each stage recomputed; the dataset's size and the bytes each refresh added to the DVC remote, as a share of it.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import tempfile
import time
from typing import Any

import yaml

STAGES = ("ingest", "probe_clips", "extract_features", "label_clips", "validate", "publish")


def _du(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _params(folder: pathlib.Path, sources: list[dict[str, Any]], small: bool, ray: dict[str, Any]) -> str:
    raw: dict[str, Any] = {
        "work_dir": "work",
        "ingest": {"root": None, "sources": sources},
        "publish": {"data_repo": "work/data-repo", "remote": "work/dvc-remote"},
    }
    if ray:
        raw["ray"] = ray
    if small:  # tiny generated clips: few small frames, so that 10k clips extract in minutes on 2 cores
        raw["extract_features"] = {"n_frames": 4, "frame_size": 64, "batch_size": 16}
        raw["validate"] = {"min_mean_face_share": {"blocking": 0.0, "warning": 0.0}}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _run(params_file: str, run_id: str) -> dict[str, float]:
    from emopipe.pipelines import refresh

    times: dict[str, float] = {}

    def timed(name: str, fn, *args):
        t = time.perf_counter()
        out = fn(params_file, run_id, *args)
        times[name] = round(time.perf_counter() - t, 2)
        return out

    try:
        ingested = timed("ingest", refresh.ingest)
        probed = timed("probe_clips", refresh.probe_clips, ingested)
        extracted = timed("extract_features", refresh.extract_features, probed)
        labelled = timed("label_clips", refresh.label_clips, extracted)
        validated = timed("validate", refresh.validate, labelled)
        timed("publish", refresh.publish, validated)
    finally:
        refresh.report(params_file, run_id)  # also stops the run's local Ray head
    return times


def _footage(root: pathlib.Path, n: int, seed: int = 0) -> pathlib.Path:
    """n tiny clips (32x32, 0.5 s, a face-free block pattern and a tone each) with sidecar labels."""
    import json

    import numpy as np

    from emopipe.demo import write_mp4

    words = ["happy", "sad", "angry", "neutral", "fearful", "surprised", "disgusted"]
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"drop_{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        blocks = rng.integers(0, 2, size=(8, 8)) * 200 + 25
        img = np.kron(blocks, np.ones((4, 4)))[..., None].repeat(3, axis=2).astype(np.uint8)
        tone = (0.2 * np.sin(np.arange(8000) * 2 * np.pi * (200 + i % 300) / 16000)).astype(np.float32)
        write_mp4(folder / f"clip_{i:05d}.mp4", np.stack([img] * 5), 10, tone)
        sidecar = {"emotions": [words[i % len(words)]], "gender": ["female", "male"][i % 2], "speaker": f"s{i % 97}"}
        (folder / f"clip_{i:05d}.json").write_text(json.dumps(sidecar))
    return root


def _held_back(files: list[pathlib.Path], share: float, rounds: int, store: pathlib.Path) -> list[list[tuple]]:
    """Move `rounds` disjoint batches of `share` of the clips (with their sidecars) out of the corpus."""
    n = max(1, round(len(files) * share))
    picked = files[:: max(1, len(files) // (n * rounds))][: n * rounds]
    batches = []
    for r in range(rounds):
        batch = []
        for path in picked[r * n : (r + 1) * n]:
            dest = store / str(r) / path.parent.name
            dest.mkdir(parents=True, exist_ok=True)
            for part in [path, path.with_suffix(".json")]:
                if part.exists():
                    shutil.move(part, dest / part.name)
                    batch.append((dest / part.name, part))
        batches.append(batch)
    return batches


def measure(size: str, tmp: pathlib.Path, rounds: int = 6, ray: dict[str, Any] | None = None) -> dict[str, Any]:
    from emopipe import io
    from emopipe.config import DemoConfig
    from emopipe.demo import make_ravdess_demo

    if size == "demo":
        corpus = make_ravdess_demo(tmp / "corpus", DemoConfig(faults=False))
        files = sorted(corpus.rglob("01-01-*.mp4"))
        sources = [{"corpus": "ravdess", "root": str(corpus)}]
    else:
        corpus = _footage(tmp / "corpus", int(size))
        files = sorted(corpus.rglob("*.mp4"))
        sources = [{"corpus": "footage", "root": str(corpus), "license": "generated for the benchmark"}]
    batches = _held_back(files, 0.01, rounds, tmp / "held")
    params_file = _params(tmp, sources, small=size != "demo", ray=ray or {})
    runs = tmp / "work" / "runs"
    remote, dataset = tmp / "work" / "dvc-remote", tmp / "work" / "data-repo" / "dataset"

    full = _run(params_file, "full")
    remote_v1, dataset_v1 = _du(remote), _du(dataset)
    fixed = _run(params_file, "nothing-new")
    refreshes, remote_after = [], []
    for r, batch in enumerate(batches):
        for held, original in batch:
            shutil.move(held, original)
        refreshes.append(_run(params_file, f"refresh-{r}"))
        remote_after.append(_du(remote))
    summaries = {
        run: {s["stage"]: s for s in io.read_json(runs / run / "report.json").get("stages", [])}
        for run in ("full", "nothing-new", "refresh-0")
    }
    first = refreshes[0]
    total_full, total_refresh = sum(full.values()), sum(first.values())
    n_clips = summaries["refresh-0"]["extract_features"]["n_rows"]
    n_new = summaries["refresh-0"]["extract_features"]["n_processed"]
    return {
        "clips": n_clips,
        "new_clips_per_refresh": n_new,
        "new_share": round(n_new / n_clips, 4),
        "seconds_full": full,
        "seconds_nothing_new": fixed,
        "seconds_refresh": first,
        "ratio_by_stage": {s: round(first[s] / full[s], 3) for s in STAGES if full[s]},
        "ratio_total": round(total_refresh / total_full, 3),
        "ratio_nothing_new": round(sum(fixed.values()) / total_full, 3),
        "computed_rows": {
            run: {stage: facts["n_processed"] for stage, facts in by_stage.items()}
            for run, by_stage in summaries.items()
        },
        "executors_refresh": {stage: facts["executor"] for stage, facts in summaries["refresh-0"].items()},
        "dataset_bytes_v1": dataset_v1,
        "remote_bytes_v1": remote_v1,
        "remote_bytes_added_by_refresh": remote_after[0] - remote_v1,
        "remote_share_added_by_refresh": round((remote_after[0] - remote_v1) / dataset_v1, 4),
        "remote_bytes_added_by_5_refreshes": remote_after[min(5, len(remote_after)) - 1] - remote_v1
        if len(remote_after) >= 5
        else None,
        "remote_share_added_by_5_refreshes": round((remote_after[4] - remote_v1) / dataset_v1, 4)
        if len(remote_after) >= 5
        else None,
        "seconds_each_refresh": [round(sum(r.values()), 1) for r in refreshes],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo,10000", help="comma-separated: demo and/or a clip count")
    parser.add_argument("--rounds", type=int, default=6, help="1%% refreshes in a row (>= 5 for the 5-refresh figure)")
    parser.add_argument("--local-below-rows", type=int, help="ray.local_below_rows for every run (default: params')")
    args = parser.parse_args(argv)
    ray = {} if args.local_below_rows is None else {"local_below_rows": args.local_below_rows}
    out: dict[str, Any] = {"benchmark": "refresh", "sizes": {}}
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"emopipe-bench-refresh-{size}-") as where:
            started = time.perf_counter()
            out["sizes"][size] = measure(size, pathlib.Path(where), args.rounds, ray)
            out["sizes"][size]["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
