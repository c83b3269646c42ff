"""A Ray worker killed (SIGKILL) in the middle of extraction: its actor is restarted, its batch retried, and the
features come out with every clip exactly once (one death is not a row's fault: no row is set aside)."""

import json
import pathlib
import threading
import time

import psutil
import pytest
from tests.conftest import write_params

from emopipe.dataset import Dataset
from emopipe.pipelines import refresh

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# one clip a batch, so that each actor has many batches to do and one is always under way
EXTRACT = {"num_workers": 2, "batch_size": 1, "num_cpus": 2, "n_frames": 4, "frame_size": 48}


def _busy_extractor(cluster, job: threading.Thread) -> psutil.Process:
    """A process of this cluster that is an extraction actor running a batch right now (by its Ray process title,
    `ray::MapWorker(MapBatches(_StageWorker)).submit` while it works)."""
    while job.is_alive():
        for proc in cluster.processes():
            try:
                title = " ".join(proc.cmdline()).strip()  # Ray pads the title with spaces
            except psutil.Error:
                continue
            if title.startswith("ray::") and "_StageWorker" in title and title.endswith(".submit"):
                return proc
        time.sleep(0.05)
    raise AssertionError("the job ended before an extraction actor was seen at work")


def test_killed_worker_is_restarted_and_every_clip_comes_out_once(ray_cluster, ingested, tmp_path):
    params = write_params(
        tmp_path / "cfg",
        extract_features=EXTRACT,
        ray={"dashboard_url": ray_cluster.dashboard_url, "executor": "ray"},
    )
    outcome: dict = {}

    def extract() -> None:
        try:
            outcome["out"] = refresh.extract_features(str(params), "r-fault", str(ingested))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = err

    job = threading.Thread(target=extract)
    job.start()
    victim = _busy_extractor(ray_cluster, job)
    victim_title = " ".join(victim.cmdline()).strip()
    victim.kill()  # SIGKILL: no cleanup, as the OOM killer or a lost machine would do it
    victim.wait(timeout=30)
    job.join(timeout=900)
    assert not job.is_alive(), "the extraction job did not finish"
    assert "error" not in outcome, f"the job failed after its worker ({victim_title}) was killed: {outcome['error']}"

    out = pathlib.Path(outcome["out"])
    table = Dataset(out).column_table("features", ["clip_id", "error"])
    ids = table["clip_id"].to_pylist()
    expected = sorted(Dataset(ingested).clips["clip_id"].to_pylist())
    assert ids == expected  # every clip exactly once, in clip_id order
    stats = json.loads((out / "extract.json").read_text())
    assert stats["n_processed"] == sum(stats["extra"]["nodes"].values()) == len(expected)
    assert stats["errors"] == {"decode_failed": 1}  # only the demo's truncated file, nothing from the kill

    # Ray restarted the killed actor: the job's extraction actors show the restart
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors

    client = JobSubmissionClient(ray_cluster.dashboard_url)
    [info] = [j for j in client.list_jobs() if j.metadata.get("run_id") == "r-fault"]
    actors = [
        a
        for a in list_actors(address=ray_cluster.dashboard_url, filters=[("job_id", "=", info.job_id)], detail=True)
        if "_StageWorker" in (a.repr_name or a.class_name)
    ]
    assert sum(a.num_restarts for a in actors) >= 1, [(a.repr_name, a.state, a.num_restarts) for a in actors]
