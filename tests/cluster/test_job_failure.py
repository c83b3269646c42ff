"""A Ray job that fails on the cluster fails its Airflow task, and the task says why in the job's own words."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from tests.conftest import write_params

pytestmark = [pytest.mark.ray, pytest.mark.airflow, pytest.mark.slow]

AIRFLOW = str(pathlib.Path(sys.executable).parent / "airflow")

# A one-task DAG whose task is the refresh DAG's extract_features task: the same library call, no retries.
DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, default_args={"retries": 0})
    def cluster_job_failure():
        @task
        def extract_features(params=None, run_id=None) -> str:
            from emopipe.pipelines import refresh

            return refresh.extract_features(params["params_file"], run_id, params["probe_dir"])

        extract_features()


    cluster_job_failure()
    """
)


def test_failed_cluster_job_fails_the_task_with_the_jobs_error(ray_cluster, tmp_path):
    # an Airflow of its own (SQLite, this test's dags folder), so the test DAG never meets the project's
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path)}

    def airflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=env, timeout=600, check=False)

    def airflow_json(*args: str) -> list[dict]:
        """The JSON document a CLI command prints (`-o json`), after whatever it logs first."""
        out = airflow(*args, "-o", "json").stdout
        return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("[")))

    (tmp_path / "cluster_job_failure.py").write_text(DAG)
    migrate = airflow("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    params = write_params(tmp_path / "cfg", ray={"dashboard_url": ray_cluster.dashboard_url})
    # the folder the job is told to read was never written (as when the cluster cannot see the Airflow side's disk)
    missing = tmp_path / "probe_clips-never-ran"
    conf = json.dumps({"params_file": str(params), "probe_dir": str(missing)})

    proc = airflow("dags", "test", "cluster_job_failure", "--conf", conf)
    output = proc.stdout + proc.stderr

    # the job's own error, raised on the cluster, is in the task's failure
    assert f"{missing}/clips.parquet not found: run the stage that writes it first" in output, output[-4000:]
    assert "ray job extract_features FAILED on " + ray_cluster.dashboard_url in output, output[-4000:]
    # the job's log was streamed into the task log before that (a launcher traceback line)
    assert "[extract_features] Traceback (most recent call last):" in output, output[-4000:]

    # Airflow recorded the task instance as failed
    runs = airflow_json("dags", "list-runs", "cluster_job_failure")
    assert [r["state"] for r in runs] == ["failed"]
    states = airflow_json("tasks", "states-for-dag-run", "cluster_job_failure", runs[0]["run_id"])
    assert [(t["task_id"], t["state"]) for t in states] == [("extract_features", "failed")]
