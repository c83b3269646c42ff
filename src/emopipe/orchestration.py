"""The only cluster client code the DAGs use: run a `ray_jobs/<job>.py` launcher and stream its log.

The launcher is the Ray driver: it starts local Ray, or joins the cluster named in params.yaml. It runs as
its own process so a Ray crash cannot take the Airflow task runner with it, and its output goes line by
line into the task log.
"""

from __future__ import annotations

import collections
import logging
import os
import pathlib
import subprocess
import sys

log = logging.getLogger(__name__)


class RayJobFailed(RuntimeError):
    """A Ray job exited non-zero; the message carries its last log lines."""


def jobs_dir() -> pathlib.Path:
    """The ray_jobs/ folder of this checkout (EMOPIPE_RAY_JOBS_DIR overrides it in images that move it)."""
    if where := os.environ.get("EMOPIPE_RAY_JOBS_DIR"):
        return pathlib.Path(where)
    return pathlib.Path(__file__).resolve().parents[2] / "ray_jobs"


def job_env(work_dir: pathlib.Path) -> dict[str, str]:
    """Environment for a job: Ray's auth token kept in the project's folder, no usage stats, one BLAS thread."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_TOKEN_PATH", str(pathlib.Path(work_dir) / ".ray" / "auth_token"))
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def submit_ray_job(job: str, args: dict[str, str], work_dir: pathlib.Path, tail: int = 40) -> None:
    """Run `ray_jobs/<job>.py --key value ...`, blocking; raise RayJobFailed with the job's last lines on failure."""
    script = jobs_dir() / f"{job}.py"
    if not script.is_file():
        raise FileNotFoundError(f"no Ray job launcher {script}")
    cmd = [sys.executable, str(script)]
    for key, value in args.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    log.info("ray job %s: %s", job, " ".join(cmd))
    last: collections.deque[str] = collections.deque(maxlen=tail)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=job_env(work_dir), bufsize=1
    ) as proc:
        assert proc.stdout is not None  # noqa: S101 — guaranteed by stdout=PIPE; narrows the type
        for raw in proc.stdout:
            line = raw.rstrip()
            last.append(line)
            log.info("[%s] %s", job, line)
        code = proc.wait()
    if code:
        raise RayJobFailed(f"ray job {job} exited with {code}; last lines:\n" + "\n".join(last))
