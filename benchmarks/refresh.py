"""Incremental refresh: what a refresh with ~1% new clips costs next to a full run, stage by stage.

Generates the demo corpus (24 actors: 192 videos + 192 audio files = 384 clips), holds back `--new` video clips
(1% by default: 4 of 384), runs every stage of emotion_dataset_refresh from scratch (the baseline), puts the
held-back files in place and runs every stage again in the same work folder, as the scheduled refresh would.
Stages are called exactly as the DAG's tasks call them (each Ray stage is its own job process). Reported per
stage: wall seconds of the full run and of the refresh, and their ratio; plus the rows each stage recomputed.
The fixed cost of a stage (starting a Ray job and its actors, loading models, validating and hashing the whole
dataset) does not shrink with the number of new clips, so the wall ratio is reported beside the work ratio.
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


def _params(folder: pathlib.Path, corpus: pathlib.Path) -> str:
    raw = {
        "work_dir": "work",
        "ingest": {"corpus": "ravdess", "root": str(corpus)},
        "publish": {"data_repo": "work/data-repo", "remote": "work/dvc-remote"},
    }
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

    ingested = timed("ingest", refresh.ingest)
    probed = timed("probe_clips", refresh.probe_clips, ingested)
    extracted = timed("extract_features", refresh.extract_features, probed)
    labelled = timed("label_clips", refresh.label_clips, extracted)
    validated = timed("validate", refresh.validate, labelled)
    timed("publish", refresh.publish, validated)
    refresh.report(params_file, run_id)
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new", type=int, default=4, help="video clips held back and added for the refresh")
    args = parser.parse_args(argv)

    from emopipe import io
    from emopipe.config import DemoConfig
    from emopipe.demo import make_ravdess_demo

    with tempfile.TemporaryDirectory(prefix="emopipe-bench-refresh-") as where:
        tmp = pathlib.Path(where)
        corpus = make_ravdess_demo(tmp / "corpus", DemoConfig(faults=False))
        held = tmp / "held"
        held.mkdir()
        videos = sorted(corpus.rglob("01-01-*.mp4"))
        for path in videos[:: max(1, len(videos) // args.new)][: args.new]:
            (held / path.parent.name).mkdir(exist_ok=True)
            shutil.move(path, held / path.parent.name / path.name)
        params_file = _params(tmp, corpus)
        full = _run(params_file, "full")
        for path in held.rglob("*.mp4"):
            shutil.move(path, corpus / path.parent.name / path.name)
        again = _run(params_file, "refresh")
        runs = tmp / "work" / "runs"
        ext = {r: io.read_json(runs / r / "extract_features" / "extract.json") for r in ("full", "refresh")}
        lab = {r: io.read_json(runs / r / "label_clips" / "label.json") for r in ("full", "refresh")}
        pub = io.read_json(runs / "refresh" / "publish.json")

    total_full, total_again = sum(full.values()), sum(again.values())
    n_clips = ext["refresh"]["n_clips"]
    return {
        "benchmark": "refresh",
        "clips": n_clips,
        "new_clips": args.new,
        "new_share": round(args.new / n_clips, 4),
        "seconds_full": full,
        "seconds_refresh": again,
        "ratio_by_stage": {s: round(again[s] / full[s], 3) for s in STAGES},
        "ratio_total": round(total_again / total_full, 3),
        "ratio_extract_plus_label": round(
            (again["extract_features"] + again["label_clips"]) / (full["extract_features"] + full["label_clips"]), 3
        ),
        "recomputed": {
            "features_full": ext["full"]["n_extracted"],
            "features_refresh": ext["refresh"]["n_extracted"],
            "features_reused_refresh": ext["refresh"]["n_reused"],
            "labels_full": lab["full"]["n_labelled"],
            "labels_refresh": lab["refresh"]["n_labelled"],
        },
        "work_ratio": round(ext["refresh"]["n_extracted"] / max(1, ext["full"]["n_extracted"]), 4),
        "refresh_published": pub["version"] if pub["created"] else f"unchanged ({pub['version']})",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
