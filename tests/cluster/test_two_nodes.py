"""extract_features submitted to a real two-node Ray cluster through the Jobs API, the way the DAG's task does it.

Both nodes extract clips (extract.json counts clips per Ray node), the job's log reaches the task's logger line
by line, and features.parquet is identical to a local run of the same input.
"""

import json
import logging
import pathlib

import pyarrow.parquet as pq
import pytest
from emopipe.pipelines.stage_dir import StageDir
from tests.conftest import write_params

from emopipe.pipelines import refresh

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EXTRACT = {"num_workers": 2, "batch_size": 2, "num_cpus": 2, "n_frames": 4, "frame_size": 48}


def test_extraction_on_two_nodes_matches_a_local_run(ray_cluster, ingested, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="emopipe.orchestration")
    on_cluster = write_params(
        tmp_path / "cluster",
        extract_features=EXTRACT,
        ray={"dashboard_url": ray_cluster.dashboard_url, "address": ray_cluster.address},
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
    n_clips = StageDir(ingested).clips().num_rows
    node_ids = {n["node_id"] for n in ray_cluster.nodes()}
    assert len(node_ids) == 2
    assert set(stats["nodes"]) == node_ids, (stats["nodes"], node_ids)
    assert all(n > 0 for n in stats["nodes"].values())
    assert sum(stats["nodes"].values()) == stats["n_extracted"] == n_clips

    # the same input extracted by a local Ray (no `ray:` section: the launcher runs as a local process)
    local = write_params(tmp_path / "local", extract_features=EXTRACT)
    local_out = pathlib.Path(refresh.extract_features(str(local), "r-local", str(ingested)))
    local_stats = json.loads((local_out / "extract.json").read_text())
    assert len(local_stats["nodes"]) == 1 and not set(local_stats["nodes"]) & node_ids

    cluster_table = pq.read_table(out / "features.parquet")
    local_table = pq.read_table(local_out / "features.parquet")
    assert cluster_table.num_rows == n_clips
    assert cluster_table.schema == local_table.schema
    assert cluster_table.equals(local_table)
    assert "_ray_node_id" not in cluster_table.column_names
