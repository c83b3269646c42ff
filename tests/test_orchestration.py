"""A Ray job's failure reaches the caller (the Airflow task) with the job's own error text."""

import pytest

from emopipe import orchestration
from emopipe.pipelines import refresh
from tests.conftest import write_params


def test_failed_job_raises_with_its_last_log_lines(tmp_path):
    params = write_params(tmp_path / "cfg")
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "clips.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(orchestration.RayJobFailed) as err:
        refresh.probe_clips(str(params), "r1", str(tmp_path / "ingest"))
    text = str(err.value)
    assert "ray job probe_clips exited with 1" in text
    assert "Traceback" in text and "clips.parquet" in text


def test_unknown_job_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Ray job launcher"):
        orchestration.submit_ray_job("no_such_job", {}, tmp_path)
