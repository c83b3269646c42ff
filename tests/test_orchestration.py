"""A Ray job's failure reaches the caller (the Airflow task) with the job's own error text."""

import pytest

from emopipe import orchestration
from tests.conftest import write_params


def test_failed_job_raises_with_its_last_log_lines(tmp_path):
    params = write_params(tmp_path / "cfg")
    with pytest.raises(orchestration.RayJobFailed) as err:  # a job given an input folder that is not a dataset
        orchestration.submit_ray_job(
            "probe_clips",
            {
                "params": str(params),
                "input": str(tmp_path / "nothing"),
                "output": str(tmp_path / "out"),
                "run_id": "r1",
            },
            tmp_path,
        )
    text = str(err.value)
    assert "ray job probe_clips exited with 1" in text
    assert "Traceback" in text and "no such dataset folder" in text


def test_unknown_job_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Ray job launcher"):
        orchestration.submit_ray_job("no_such_job", {}, tmp_path)
