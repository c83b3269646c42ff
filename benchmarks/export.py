"""Export throughput of each format (hf, webdataset, r1omni; with and without copying the media) against the floor of
copying the same media files with shutil.copyfile, in the same run.

Two versions, files in page cache:
- demo: the demo corpus (24 actors x 8 emotions, 1 s 160x120 H.264+AAC mp4 and 48 kHz WAV, 384 clips) through the
  real stages in this process: ingest (with its splits), probe, extract_features (16 frames at 224 px, MTCNN crops,
  16 kHz audio, log-mel, eGeMAPS); no labelling or gate (an export reads the human labels then).
- generated: `--clips` clips (default 2,000) made from the demo's: each a footage clip with its own media file
  (hard links of the demo's mp4s), subject (`--subjects`) and the demo clip's features row; splits built by the same
  function ingest uses (subject_kfold).
Every export is fold 1 of the version's protocol with both parts, so it holds every labelled clip once. Reported:
clips/s, MB/s of what the export wrote, and the time relative to copying the clips' media files (the floor every
export that puts media in has to pay: `copy_ratio` = export seconds / copy seconds).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import tempfile
import time
from typing import Any

VARIANTS = (
    ("hf", False), ("hf", True), ("webdataset", False), ("webdataset", True), ("r1omni", False), ("r1omni", True),
)  # fmt: skip


def _size(folder: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def demo_version(tmp: pathlib.Path) -> Any:
    """The demo corpus ingested, probed and extracted by the pipeline's own stages, in this process."""
    import yaml

    from emopipe.config import DemoConfig, SourceConfig, load_params
    from emopipe.demo import make_ravdess_demo
    from emopipe.pipelines import extract_features, ingest, probe_clips

    root = make_ravdess_demo(tmp / "demo", DemoConfig(faults=False))
    settings = {"work_dir": "work", "ray": {"executor": "in-process"}, "publish": {"data_repo": "work/repo"}}
    (tmp / "params.yaml").write_text(yaml.safe_dump(settings))
    params = load_params(tmp / "params.yaml")
    ingest.run_sources([SourceConfig(corpus="ravdess", root=root)], tmp / "ingest", "bench")
    probe_clips.run(params, tmp / "ingest", tmp / "probe", "bench")
    extract_features.run(params, tmp / "probe", tmp / "extract", "bench")
    from emopipe.dataset import Dataset

    return Dataset.open(tmp / "extract")


def generated_version(demo: Any, tmp: pathlib.Path, n: int, subjects: int) -> Any:
    """n footage clips, each with its own media file (a hard link of a demo mp4) and the demo clip's features."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from emopipe import schemas, splits
    from emopipe.dataset import DatasetWriter

    video = demo.clips.filter(pc.equal(demo.clips["media_form"], "video")).sort_by("clip_id")
    feats = {r["clip_id"]: r for b in demo.iter_batches("features") for r in b.to_pylist()}
    root = tmp / "footage"
    root.mkdir(parents=True)
    src_root = demo.corpora["ravdess"]
    clip_rows = []
    sources = video.to_pylist()
    for i in range(n):
        base = sources[i % len(sources)]
        rel = f"drop_{i // 500:02d}/clip_{i:05d}.mp4"
        (root / rel).parent.mkdir(exist_ok=True)
        os.link(src_root / base["media_path"], root / rel)
        cid = f"footage:clip_{i:05d}"
        clip_rows.append({**base, "clip_id": cid, "corpus": "footage", "native_id": f"clip_{i:05d}", "media_path": rel,
                          "subject_id": f"footage:person_{i % subjects:03d}", "license": "CC BY 4.0 (benchmark)",
                          "folds": None, "sha256": base["sha256"]})  # fmt: skip
    clips = schemas.from_rows(clip_rows, schemas.CLIPS)
    schema = schemas.load_schema("features")
    with DatasetWriter(tmp / "generated", corpora={"footage": str(root)}) as writer:
        writer.write_table("clips", clips)
        writer.write_table("quarantine", schemas.QUARANTINE.empty_table())
        writer.write_table("splits", splits.build(clips, subject_folds=5, seed=0))
        sink = writer.shard_writer("features")
        for start in range(0, n, 64):  # a few rows at a time: 2,000 clips of frames do not fit in memory twice
            rows = [
                {
                    **feats[sources[i % len(sources)]["clip_id"]],
                    "clip_id": f"footage:clip_{i:05d}",
                    "corpus": "footage",
                }
                for i in range(start, min(start + 64, n))
            ]
            sink.write(pa.Table.from_pylist(rows, schema=schema))
        writer.add_shards("features", sink.close())
        return writer.commit()


def copy_floor(ds: Any, dest: pathlib.Path) -> tuple[float, int, int]:
    """Seconds, files and bytes to copy the media of the clips with a label, with shutil.copyfile."""
    rows = [r for r in ds.clips.to_pylist() if r["label"] is not None]
    dest.mkdir(parents=True)
    t = time.perf_counter()
    size = 0
    for r in rows:
        src = ds.corpora[r["corpus"]] / r["media_path"]
        target = dest / f"{r['clip_id'].replace(':', '_')}{src.suffix}"
        shutil.copyfile(src, target)
        size += src.stat().st_size
    return time.perf_counter() - t, len(rows), size


def measure(ds: Any, tmp: pathlib.Path, name: str, repeats: int) -> dict[str, Any]:
    from emopipe import splits
    from emopipe.exports import api as exports

    for r in ds.clips.to_pylist():  # page cache: every variant reads warm files
        (ds.corpora[r["corpus"]] / r["media_path"]).read_bytes()
    chosen = splits.choose(ds.splits, None, 1, ds.clips["corpus"].to_pylist())
    out: dict[str, Any] = {"clips": ds.clips.num_rows, "protocols": chosen}
    floors = []
    for i in range(repeats):
        floors.append(copy_floor(ds, tmp / f"{name}-copy-{i}"))
        shutil.rmtree(tmp / f"{name}-copy-{i}")
    copy_s = statistics.median(f[0] for f in floors)
    n_media, media_bytes = floors[0][1], floors[0][2]
    out["copyfile_floor"] = {
        "seconds": round(copy_s, 3),
        "files": n_media,
        "mb": round(media_bytes / 1e6, 2),
        "clips_per_s": round(n_media / copy_s, 1),
        "mb_per_s": round(media_bytes / 1e6 / copy_s, 1),
    }
    for fmt, copy in VARIANTS:
        times, written, clips = [], 0, 0
        for i in range(repeats):
            folder = tmp / f"{name}-{fmt}-{'copy' if copy else 'path'}-{i}"
            options = exports.Options(format=fmt, out=folder, fold=1, copy_media=copy, progress=False)
            t = time.perf_counter()
            result = exports.export(ds, options, version=name)
            times.append(time.perf_counter() - t)
            written = _size(folder)
            clips = sum(c["clips"] for c in result.manifest["counts"].values())
            shutil.rmtree(folder)
        seconds = statistics.median(times)
        out[f"{fmt}{'+copy_media' if copy else ''}"] = {
            "seconds": round(seconds, 3),
            "clips": clips,
            "clips_per_s": round(clips / seconds, 1),
            "written_mb": round(written / 1e6, 2),
            "mb_per_s": round(written / 1e6 / seconds, 1),
            "copy_ratio": round(seconds / copy_s, 2),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=2000, help="clips of the generated version")
    parser.add_argument("--subjects", type=int, default=100, help="subjects of the generated version")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", help="keep the built demo version here and reuse it on the next run")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="emopipe-bench-export-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        import datasets  # noqa: F401 - import costs stay out of the timings
        import webdataset  # noqa: F401

        from emopipe.dataset import Dataset

        work = pathlib.Path(args.work) if args.work else tmp
        t = time.perf_counter()
        if (work / "v-demo" / "extract" / "dataset.json").is_file():
            demo = Dataset.open(work / "v-demo" / "extract")
        else:
            demo = demo_version(work / "v-demo")
        build_s = time.perf_counter() - t
        generated = generated_version(demo, tmp / "v-gen", args.clips, args.subjects)
        result = {
            "benchmark": "export",
            "cpus": os.cpu_count(),
            "repeats": args.repeats,
            "demo_pipeline_s": round(build_s, 1),
            "demo": measure(demo, tmp, "demo", args.repeats),
            "generated": measure(generated, tmp, "generated", args.repeats),
            "note": "files in page cache; hf/webdataset without copy_media still write the sampled frames, crops, "
            "audio and log-mel of every clip; r1omni without copy_media writes JSON only",
        }
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
