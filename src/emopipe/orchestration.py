"""The only cluster client code the DAGs use: run a `ray_jobs/<job>.py` launcher and stream its log.

The launcher is the Ray driver. Where it runs depends on the `ray:` section of params.yaml:

- no `ray.dashboard_url` (the embedded default): as a local process, which starts local Ray or joins
  `ray.address` / the stage's `ray_address`. Its own process, so a Ray crash cannot take the Airflow task
  runner with it.
- `ray.dashboard_url` set: as a Ray job on the cluster, submitted through the Ray Jobs API
  (`JobSubmissionClient`); its driver joins the cluster that runs it.

Either way the job's output goes line by line into the task log, the call blocks until the job ends, and a job
that fails raises RayJobFailed with its error text and last log lines, which fails the Airflow task.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import pathlib
import posixpath
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from emopipe.config import RayConfig, load_params

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often a submitted job's status is polled once its log stream has ended


class RayJobFailed(RuntimeError):
    """A Ray job exited non-zero or the cluster reports it FAILED/STOPPED; the message carries its error text."""


def jobs_dir() -> pathlib.Path:
    """The ray_jobs/ folder of this checkout (EMOPIPE_RAY_JOBS_DIR overrides it in images that move it)."""
    if where := os.environ.get("EMOPIPE_RAY_JOBS_DIR"):
        return pathlib.Path(where)
    return pathlib.Path(__file__).resolve().parents[2] / "ray_jobs"


def job_env(work_dir: pathlib.Path) -> dict[str, str]:
    """Environment for a job: Ray's auth token kept in the project's folder, no usage stats, one BLAS thread."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_TOKEN_PATH", str(pathlib.Path(work_dir) / ".ray" / "auth_token"))
    if not env.get("RAY_AUTH_TOKEN"):  # the job joins the run's head (or a cluster) and must present its token
        env.setdefault("RAY_AUTH_MODE", "token")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def cli_args(args: dict[str, str]) -> list[str]:
    """`{"run_id": "r1"}` -> `["--run-id", "r1"]`."""
    out: list[str] = []
    for key, value in args.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def configured_cluster(args: dict[str, str]) -> RayConfig:
    """The `ray:` section of the params file the job is given (`--params`), or the local default."""
    return load_params(args["params"]).ray if args.get("params") else RayConfig()


def submit_ray_job(
    job: str, args: dict[str, str], work_dir: pathlib.Path, tail: int = 40, cluster: RayConfig | None = None
) -> None:
    """Run `ray_jobs/<job>.py --key value ...` locally or as a Ray job on the cluster, blocking until it ends.

    Args:
        job: the launcher's name in ray_jobs/.
        args: its command-line options (`run_id` becomes `--run-id`); `params` names the params.yaml it reads.
        work_dir: the project's work folder (where a local Ray keeps its auth token).
        tail: how many of the job's last log lines a failure carries.
        cluster: where to run it; default: the `ray:` section of `args["params"]`.

    Raises:
        FileNotFoundError: no such launcher.
        RayJobFailed: the job failed; the message has its error text and last log lines.
    """
    script = jobs_dir() / f"{job}.py"
    if not script.is_file():
        raise FileNotFoundError(f"no Ray job launcher {script}")
    cluster = cluster if cluster is not None else configured_cluster(args)
    if cluster.dashboard_url:
        submit_to_cluster(job, args, cluster, tail)
    else:
        _run_locally(job, script, args, work_dir, tail)


def _run_locally(job: str, script: pathlib.Path, args: dict[str, str], work_dir: pathlib.Path, tail: int) -> None:
    cmd = [sys.executable, str(script), *cli_args(args)]
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


def launcher_path(job: str, cluster: RayConfig) -> str:
    """Where the cluster finds `ray_jobs/<job>.py` (see RayConfig.jobs_dir)."""
    if cluster.jobs_dir:
        return posixpath.join(cluster.jobs_dir, f"{job}.py")
    if (cluster.runtime_env or {}).get("working_dir"):
        return f"ray_jobs/{job}.py"
    return str(jobs_dir() / f"{job}.py")


def entrypoint(job: str, args: dict[str, str], cluster: RayConfig) -> str:
    """The shell command a submitted job runs: the same launcher, with the same options, as a local run."""
    return shlex.join([*shlex.split(cluster.python), launcher_path(job, cluster), *cli_args(args)])


def runtime_env(cluster: RayConfig) -> dict[str, Any]:
    """The job's runtime_env: the configured one, with one BLAS thread per worker unless it says otherwise."""
    env = dict(cluster.runtime_env or {})
    env["env_vars"] = {"OPENBLAS_NUM_THREADS": "1", **(env.get("env_vars") or {})}
    return env


def submission_id(job: str, run_id: str | None) -> str:
    """A unique, readable submission id: `emopipe-<job>-<run id>-<8 hex>`."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", run_id or "")[:80]
    return "-".join(p for p in ("emopipe", job, safe, uuid.uuid4().hex[:8]) if p)


class _Lines:
    """Turns chunks of a job's log into lines for the task log, remembering the last ones and the offset."""

    def __init__(self, job: str, tail: int) -> None:
        self.job, self.offset, self.pending = job, 0, ""
        self.last: collections.deque[str] = collections.deque(maxlen=tail)

    def feed(self, chunk: str) -> None:
        self.offset += len(chunk)
        *lines, self.pending = (self.pending + chunk).split("\n")
        for line in lines:
            self._emit(line)

    def flush(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = ""

    def _emit(self, line: str) -> None:
        line = line.rstrip()
        self.last.append(line)
        log.info("[%s] %s", self.job, line)


def _run_coroutine(make: Callable[[], Any]) -> None:
    """asyncio.run(make()) here, or in a helper thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        pool.submit(lambda: asyncio.run(make())).result()
    finally:
        pool.shutdown(wait=False)  # interrupted: do not wait here for a stream that ends only with the job


def submit_to_cluster(job: str, args: dict[str, str], cluster: RayConfig, tail: int = 40) -> str:
    """Submit the launcher as a Ray job, stream its log, wait for a terminal status; return the submission id.

    The log is followed over the Jobs API's websocket; should that break, it is polled (get_job_logs) from
    where it stopped. If this call is interrupted (the Airflow task is killed or times out), the job is stopped.
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(cluster.dashboard_url)
    sid = submission_id(job, args.get("run_id"))
    command = entrypoint(job, args, cluster)
    metadata = {"emopipe_job": job, "run_id": str(args.get("run_id", ""))}
    client.submit_job(entrypoint=command, runtime_env=runtime_env(cluster), submission_id=sid, metadata=metadata)
    log.info("ray job %s submitted to %s as %s: %s", job, cluster.dashboard_url, sid, command)
    lines = _Lines(job, tail)
    try:

        async def follow() -> None:
            async for chunk in client.tail_job_logs(sid):
                lines.feed(chunk)

        try:
            _run_coroutine(follow)
        except Exception as err:  # noqa: BLE001 - the stream is a convenience; polling below catches up
            log.warning("ray job %s: log stream of %s broke (%s); polling its log instead", job, sid, err)
        while True:
            status = client.get_job_status(sid)
            text = client.get_job_logs(sid)
            if len(text) > lines.offset:
                lines.feed(text[lines.offset :])
            if status.is_terminal():
                break
            time.sleep(POLL_S)
        lines.flush()
    except BaseException:
        with contextlib.suppress(Exception):
            client.stop_job(sid)
            log.warning("ray job %s: stopped %s on the cluster (the task was interrupted)", job, sid)
        raise
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(sid)
        message = (info.message or "").strip()
        # Ray appends the job's last 20,000 characters of log to the message; the tail below is shorter.
        head, cut, _ = message.partition(", last available logs")
        reason = head if cut and lines.last else message
        where = f"submission {sid}, {info.error_type or 'no error type'}, exit code {info.driver_exit_code}"
        raise RayJobFailed(
            f"ray job {job} {status} on {cluster.dashboard_url} ({where}): {reason}\nlast lines:\n"
            + "\n".join(lines.last)
        )
    log.info("ray job %s: %s succeeded", job, sid)
    return sid
