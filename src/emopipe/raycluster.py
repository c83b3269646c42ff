"""Connect to Ray: one local Ray runtime per run on the embedded default, or a cluster when an address is configured.

Starting local Ray costs seconds (6-15 s on 2 cores); connecting to a running one costs ~0.2 s. So a run starts one
local head the first time a stage needs Ray (a small daemon process, `python -m emopipe.raycluster --serve`, that
owns the local instance and records its address in `<run_dir>/ray-head.json`), every later stage of that run
connects to it, and the run's last task stops it (`stop_head`). A head whose run vanished stops by itself after
`idle_s` without a stage using it. A stage with nothing to compute never starts Ray at all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

HEAD_FILE = "ray-head.json"
LEASE_FILE = "ray-head.lease"
START_TIMEOUT_S = 180.0
DEFAULT_IDLE_S = 1800.0


def ensure_token_file() -> None:
    """Ray 2.60 authenticates with a token; where RAY_AUTH_TOKEN_PATH names a file not yet written, write one.

    Ray itself only creates a missing token at its default path (~/.ray/auth_token); the project keeps it
    in its own folder instead. A cluster's token must be the cluster's: this only fills a missing file.
    """
    if not (where := os.environ.get("RAY_AUTH_TOKEN_PATH")):
        return
    path = pathlib.Path(where)
    if path.is_file() and path.stat().st_size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))


# Ray's job supervisor sets this (and RAY_ADDRESS) in the environment of a submitted job's driver.
JOB_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def in_submitted_job() -> bool:
    """Whether this process is the driver of a job submitted through the Ray Jobs API."""
    return JOB_ENV_VAR in os.environ


def _present_token() -> None:
    """A driver joining a token-auth cluster must present its token: Ray only does so with RAY_AUTH_MODE=token,
    which it reads into its config when imported, so it is also refreshed here (Ray's own helper for that)."""
    if os.environ.get("RAY_AUTH_MODE") or not (
        os.environ.get("RAY_AUTH_TOKEN_PATH") or os.environ.get("RAY_AUTH_TOKEN")
    ):
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray release: the environment variable is all there is
        os.environ["RAY_AUTH_MODE"] = "token"
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _quiet_ray_logs() -> None:
    # Ray Data's progress bars and per-operator INFO lines would drown the stage's own summary.
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@contextlib.contextmanager
def connect(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Start local Ray (address None) or join a cluster; shut down on exit only what this call started.

    The driver of a submitted Ray job always joins the cluster that runs it (the supervisor names it in
    RAY_ADDRESS), whatever `address` says: that address is how the submitting side reaches the cluster.
    RAY_ADDRESS set by hand is honoured too, as `ray.init` does.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    if in_submitted_job():
        if address:
            log.info("ray: running as a submitted job; joining the cluster that runs it, not %s", address)
        address = None
    joining = address is not None or bool(os.environ.get("RAY_ADDRESS"))
    kwargs: dict = {"log_to_driver": True}
    if not joining:
        ensure_token_file()
        kwargs["include_dashboard"] = False
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    else:
        _present_token()
    ray.init(address=address, **kwargs)
    _quiet_ray_logs()
    where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
    log.info("ray: connected to %s; resources %s", where, ray.cluster_resources())
    try:
        yield
    finally:
        ray.shutdown()


# ----------------------------------------------------------------------------------------- the run's local head


def _alive(pid: int) -> bool:
    """Whether process `pid` runs. A head this process started is its child: once it exits it is reaped here, or
    it would stay a zombie that signal 0 still reaches (and stop_head would wait its whole timeout)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child: its parent or init reaps it
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_head(run_dir: pathlib.Path) -> str | None:
    """The address of the run's local head when it is running, else None."""
    path = pathlib.Path(run_dir) / HEAD_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not state.get("address") or not _alive(int(state.get("pid", 0))):
        return None
    return str(state["address"])


def touch_lease(run_dir: pathlib.Path) -> None:
    """Tell the run's head a stage still uses it (it stops after its idle time without one)."""
    lease = pathlib.Path(run_dir) / LEASE_FILE
    with contextlib.suppress(OSError):
        lease.touch()


def start_head(run_dir: pathlib.Path, num_cpus: int | None = None, idle_s: float = DEFAULT_IDLE_S) -> str:
    """Start the run's local Ray head (or return the running one's address)."""
    import fcntl

    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / ".ray-head.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two stages of one run starting at once: one head
        if address := live_head(run_dir):
            return address
        ensure_token_file()
        state = run_dir / HEAD_FILE
        state.unlink(missing_ok=True)
        touch_lease(run_dir)
        cmd = [sys.executable, "-m", "emopipe.raycluster", "--serve", str(run_dir), "--idle-s", str(idle_s)]
        if num_cpus is not None:
            cmd += ["--num-cpus", str(num_cpus)]
        log_path = run_dir / "ray-head.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if address := live_head(run_dir):
                log.info("ray: started the run's local head at %s (pid %d)", address, proc.pid)
                return address
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = log_path.read_text(errors="replace").splitlines()[-5:]
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise RuntimeError(f"local Ray did not start (log {log_path}): " + " | ".join(tail))


def stop_head(run_dir: pathlib.Path, timeout_s: float = 30.0) -> bool:
    """Stop the run's local head if it runs; return whether one was stopped."""
    path = pathlib.Path(run_dir) / HEAD_FILE
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    path.unlink(missing_ok=True)
    if not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    log.info("ray: stopped the run's local head (pid %d)", pid)
    return True


@contextlib.contextmanager
def session(
    address: str | None, run_dir: pathlib.Path, num_cpus: int | None = None, idle_s: float = DEFAULT_IDLE_S
) -> Iterator[None]:
    """Ray for one stage of a run: the configured cluster, else the run's local head (started if needed)."""
    if address is None and not in_submitted_job() and not os.environ.get("RAY_ADDRESS"):
        address = start_head(run_dir, num_cpus, idle_s)
        touch_lease(run_dir)
    try:
        with connect(address, num_cpus):
            yield
    finally:
        touch_lease(run_dir)


def _serve(run_dir: pathlib.Path, num_cpus: int | None, idle_s: float) -> None:
    """The head daemon: own a local Ray instance until told to stop (SIGTERM) or idle for `idle_s`."""
    import ray

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    kwargs: dict = {"include_dashboard": False, "log_to_driver": False}
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)
    state = {"address": ray.get_runtime_context().gcs_address, "pid": os.getpid()}
    tmp = run_dir / f".{HEAD_FILE}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, run_dir / HEAD_FILE)
    lease = run_dir / LEASE_FILE
    try:
        while not stopping:
            time.sleep(0.5)
            try:
                idle = time.time() - lease.stat().st_mtime
            except OSError:
                break  # the run folder is gone
            if idle > idle_s:
                break
    finally:
        ray.shutdown()
        with contextlib.suppress(OSError):
            if json.loads((run_dir / HEAD_FILE).read_text()).get("pid") == os.getpid():
                (run_dir / HEAD_FILE).unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the local Ray head of one emopipe run")
    parser.add_argument("--serve", required=True, help="the run folder")
    parser.add_argument("--num-cpus", type=int)
    parser.add_argument("--idle-s", type=float, default=DEFAULT_IDLE_S)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _serve(pathlib.Path(args.serve), args.num_cpus, args.idle_s)


if __name__ == "__main__":
    main()
