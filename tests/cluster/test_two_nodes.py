"""extract_features submitted to a real two-node Ray cluster through the Jobs API, the way the DAG's task does it.

Both nodes extract clips (extract.json counts clips per Ray node), the job's log reaches the task's logger line
by line, and the features are identical to a local run of the same input.
"""

import json
import logging
import pathlib

import pytest
from tests.conftest import write_params

from emopipe.dataset import Dataset
from emopipe.pipelines import refresh

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EXTRACT = {"num_workers": 2, "batch_size": 2, "num_cpus": 2, "n_frames": 4, "frame_size": 48}


def test_extraction_on_two_nodes_matches_a_local_run(ray_cluster, ingested, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="emopipe.orchestration")
    on_cluster = write_params(
        tmp_path / "cluster",
        extract_features=EXTRACT,
        ray={"dashboard_url": ray_cluster.dashboard_url, "address": ray_cluster.address, "executor": "ray"},
    )
    out = pathlib.Path(refresh.extract_features(str(on_cluster), "r-cluster", str(ingested)))

    # it ran as a Ray job on the cluster, and its own log lines were streamed into the task's log
    from ray.job_submission import JobStatus, JobSubmissionClient

    jobs = JobSubmissionClient(ray_cluster.dashboard_url).list_jobs()
    jobs = [j for j in jobs if j.metadata.get("run_id") == "r-cluster"]
    assert [(j.metadata["emopipe_job"], j.status) for j in jobs] == [("extract_features", JobStatus.SUCCEEDED)]
    streamed = [r.getMessage() for r in caplog.records if r.name == "emopipe.orchestration"]
    assert any("[extract_features]" in m and "extract_features r-cluster:" in m for m in streamed), streamed[-20:]

    # both nodes extracted clips, and together exactly the clips there were
    stats = json.loads((out / "extract.json").read_text())
    n_clips = Dataset(ingested).clips.num_rows
    node_ids = {n["node_id"] for n in ray_cluster.nodes()}
    assert len(node_ids) == 2
    nodes = stats["extra"]["nodes"]
    assert set(nodes) == node_ids, (nodes, node_ids)
    assert all(n > 0 for n in nodes.values())
    assert sum(nodes.values()) == stats["n_processed"] == n_clips

    # the same input extracted by the run's own local Ray (no cluster: the launcher runs as a local process)
    local = write_params(tmp_path / "local", extract_features=EXTRACT, ray={"executor": "ray"})
    local_out = pathlib.Path(refresh.extract_features(str(local), "r-local", str(ingested)))
    local_stats = json.loads((local_out / "extract.json").read_text())
    assert len(local_stats["extra"]["nodes"]) == 1 and not set(local_stats["extra"]["nodes"]) & node_ids

    on_cluster, local_ds = Dataset(out), Dataset(local_out)
    assert on_cluster.rows("features") == n_clips
    # the same rows, so the same content-addressed shards, byte for byte
    assert [p.name for p in on_cluster.files("features")] == [p.name for p in local_ds.files("features")]
    assert on_cluster.digest == local_ds.digest
