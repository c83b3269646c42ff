"""Media probe throughput: sequential in one process (baseline) vs the Ray Data actor pool, same corpus, same run.

Generates RAVDESS-layout clips (default 96: 2 s 640x360 H.264 + AAC mp4 and 2 s WAV) and probes them at two
sizes (the corpus once, and its rows repeated `--scale` times) so each way's fixed cost (for Ray: starting the
actor pool) is separated from its marginal throughput, which is what a 26k-clip corpus sees.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import tempfile
import time

from emopipe.config import DemoConfig, ProbeConfig
from emopipe.demo import make_ravdess_demo
from emopipe.sources import ravdess
from emopipe.stages import probe


def _sequential(rows, root) -> float:
    t = time.perf_counter()
    out = probe.probe_rows(rows, root)
    assert all(r["error"] is None for r in out)  # noqa: S101 — a benchmark on broken data measures nothing
    return time.perf_counter() - t


def _ray(clips, root, workers: int, batch_size: int) -> float:
    from emopipe.pipelines.probe_clips import build

    t = time.perf_counter()
    cfg = ProbeConfig(num_workers=workers, batch_size=batch_size)
    n = sum(
        b.num_rows
        for b in build(cfg, clips, {"ravdess": str(root)}).iter_batches(batch_format="pyarrow", batch_size=None)
    )
    assert n == clips.num_rows  # noqa: S101
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=6, help="each actor gives 8 mp4 + 8 wav clips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, default=8, help="the large size probes the rows this many times")
    parser.add_argument("--batch-size", type=int, default=ProbeConfig.batch_size)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="emopipe-bench-") as tmp:
        os.environ.setdefault("RAY_AUTH_TOKEN_PATH", str(pathlib.Path(tmp) / "ray-token"))
        root = pathlib.Path(tmp) / "ravdess"
        t = time.perf_counter()
        make_ravdess_demo(
            root, DemoConfig(actors=args.actors, seconds=2.0, width=640, height=360, fps=25, faults=False)
        )
        gen_s = time.perf_counter() - t
        import pyarrow as pa

        small = ravdess.scan(root, run_id="bench").clips
        large = pa.concat_tables([small] * args.scale)
        sizes = {"small": small, "large": large}
        seq = {
            k: statistics.median(_sequential(t.to_pylist(), root) for _ in range(args.repeats))
            for k, t in sizes.items()
        }

        import ray

        from emopipe.raycluster import connect

        t = time.perf_counter()
        workers = os.cpu_count() or 1
        with connect(None, num_cpus=workers):
            start_s = time.perf_counter() - t
            ray.get(ray.remote(lambda: 1).remote())
            pool = {
                k: statistics.median(_ray(tb, root, workers, args.batch_size) for _ in range(args.repeats))
                for k, tb in sizes.items()
            }
    n_small, n_large = small.num_rows, large.num_rows

    def fit(times: dict[str, float]) -> tuple[float, float]:
        """(fixed seconds, marginal clips/s) from the two sizes."""
        per_clip = (times["large"] - times["small"]) / (n_large - n_small)
        return times["small"] - per_clip * n_small, 1 / per_clip

    seq_fixed, seq_rate = fit(seq)
    pool_fixed, pool_rate = fit(pool)
    return {
        "benchmark": "probe",
        "clip": "2 s 640x360 25 fps H.264+AAC mp4 and 2 s 48 kHz WAV, files in page cache",
        "cpus": workers,
        "ray_workers": workers,
        "batch_size": args.batch_size,
        "sizes": {"small": n_small, "large": n_large},
        "baseline_sequential_s": {k: round(v, 3) for k, v in seq.items()},
        "ray_pool_s": {k: round(v, 3) for k, v in pool.items()},
        "baseline_marginal_clips_per_s": round(seq_rate, 1),
        "ray_pool_marginal_clips_per_s": round(pool_rate, 1),
        "ray_pool_fixed_cost_s": round(pool_fixed, 2),
        "ray_marginal_speedup_vs_baseline": round(pool_rate / seq_rate, 2),
        "ray_speedup_small": round(seq["small"] / pool["small"], 2),
        "ray_speedup_large": round(seq["large"] / pool["large"], 2),
        "ray_init_s": round(start_s, 2),
        "corpus_generation_s": round(gen_s, 2),
        "peak_rss_mb_driver": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
