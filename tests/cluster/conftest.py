"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`), and only it stopped.

The cluster keeps everything in its own temp folder and listens on free ports, so it never meets another Ray
running here; it is stopped by terminating exactly its own processes (never `ray stop`, which stops every Ray
on the machine): those whose command line names its temp folder or its GCS port, and their descendants.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import psutil
import pytest

from emopipe.raycluster import ensure_token_file

BIN = pathlib.Path(sys.executable).parent
RAY = str(BIN / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class LocalCluster:
    """A head and worker nodes started with the real `ray start` CLI."""

    temp_dir: pathlib.Path
    gcs_port: int
    dashboard_port: int
    env: dict[str, str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _node_ports(self) -> list[str]:
        names = ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc")
        return [f"--{name}-port={free_port()}" for name in (*names, "runtime-env-agent", "metrics-export")]

    def _start(self, args: list[str]) -> None:
        proc = subprocess.run([RAY, "start", *args], env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start_head(self, num_cpus: int, resources: dict[str, float]) -> None:
        self._start(
            [
                "--head",
                f"--port={self.gcs_port}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
                f"--num-cpus={num_cpus}",
                f"--resources={json.dumps(resources)}",
                "--object-store-memory=200000000",
                "--disable-usage-stats",
                *self._node_ports(),
            ]
        )

    def add_node(self, num_cpus: int, resources: dict[str, float]) -> None:
        self._start(
            [
                f"--address={self.address}",
                f"--num-cpus={num_cpus}",
                f"--resources={json.dumps(resources)}",
                "--object-store-memory=200000000",
                "--disable-usage-stats",
                *self._node_ports(),
            ]
        )

    def nodes(self) -> list[dict]:
        """The cluster's alive nodes, from its state API (node_id, resources_total, ...)."""
        from ray.util.state import list_nodes

        return [n.__dict__ for n in list_nodes(address=self.dashboard_url, filters=[("state", "=", "ALIVE")])]

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: named by its temp folder or GCS port, and all their descendants."""
        mine = str(self.temp_dir)
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            args = proc.info["cmdline"] or []
            if any(mine in a for a in args) or any(
                a.startswith("--address=") and a.endswith(f":{self.gcs_port}") for a in args
            ):
                roots.append(proc)
        found: dict[int, psutil.Process] = {}
        for proc in roots:
            with contextlib.suppress(psutil.Error):
                for p in [proc, *proc.children(recursive=True)]:
                    found[p.pid] = p
        found.pop(os.getpid(), None)
        return list(found.values())

    def stop(self, grace_s: float = 3.0) -> list[int]:
        """Terminate this cluster's processes (SIGTERM, then SIGKILL what is left); return their pids.

        raylet and gcs_server can take 10 s and more over a SIGTERM; a test cluster's state is not worth that.
        """
        procs = self.processes()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(procs, timeout=grace_s)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=grace_s)
        # raylets may spawn a worker while dying: sweep once more
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()
        return [p.pid for p in procs]


@contextlib.contextmanager
def two_node_cluster() -> Iterator[LocalCluster]:
    """A head (1 CPU, resource `head_node`) and a second node (1 CPU, resource `second_node`), token auth on."""
    ensure_token_file()  # the session's RAY_AUTH_TOKEN_PATH (tests/conftest.py): the cluster's token is that one
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` on the cluster = this venv's
    }
    temp_dir = pathlib.Path(tempfile.mkdtemp(prefix="emo-ray-", dir="/tmp"))  # short: Ray's socket paths
    cluster = LocalCluster(temp_dir, free_port(), free_port(), env)
    try:
        cluster.start_head(1, {"head_node": 1})
        cluster.add_node(1, {"second_node": 1})
        deadline = time.monotonic() + 60
        while len(cluster.nodes()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second node did not join: {cluster.nodes()}")
            time.sleep(0.5)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def ingested(tiny_corpus, tmp_path) -> pathlib.Path:
    """The tiny corpus ingested (not probed: its truncated file reaches extraction and becomes an error row)."""
    from emopipe.pipelines import ingest

    return ingest.run("ravdess", tiny_corpus, tmp_path / "ingest", "r1").path


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    """One two-node cluster for the tests of this folder; the client side speaks token auth to it."""
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        with two_node_cluster() as cluster:
            yield cluster
    finally:
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old
