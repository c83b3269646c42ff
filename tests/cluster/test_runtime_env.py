"""`ray.runtime_env` ships emopipe to a cluster whose image lacks it: the job runs the uploaded launcher and code."""

import shutil

import pytest
from tests.conftest import REPO, write_params

from emopipe import orchestration
from emopipe.pipelines import refresh

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_the_job_runs_the_code_shipped_in_its_working_dir(ray_cluster, tmp_path):
    # what a job needs of a checkout: the launchers, the package and its declarative schemas
    ship = tmp_path / "ship"
    for part in ("ray_jobs", "src", "schemas"):
        shutil.copytree(REPO / part, ship / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"working_dir": str(ship), "env_vars": {"PYTHONPATH": "src"}}
    params = write_params(tmp_path / "cfg", ray={"dashboard_url": ray_cluster.dashboard_url, "runtime_env": env})

    with pytest.raises(orchestration.RayJobFailed) as failed:  # an input that is not there: the job's own error
        refresh.extract_features(str(params), "r-shipped", str(tmp_path / "no-probe-output"))
    text = str(failed.value)
    assert "no-probe-output: no such dataset folder" in text
    # the traceback runs through the uploaded copy (Ray unpacks it under runtime_resources/working_dir_files)
    assert "working_dir_files/" in text and "/ray_jobs/extract_features.py" in text
    shipped_frames = [line for line in text.splitlines() if "/src/emopipe/" in line]
    assert shipped_frames and all("working_dir_files/" in line for line in shipped_frames), shipped_frames
