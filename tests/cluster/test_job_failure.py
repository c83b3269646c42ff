"""Ray jobs on the cluster under real Airflow (`airflow dags test`): a job that fails fails its task with the job's
own error text, and a task that is cut short (execution_timeout) stops its job on the cluster."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest
from tests.conftest import write_params

pytestmark = [pytest.mark.ray, pytest.mark.airflow, pytest.mark.slow]

AIRFLOW = str(pathlib.Path(sys.executable).parent / "airflow")

# One-task DAGs whose task calls the library as the refresh DAG's tasks do, without retries.
DAGS = {
    "cluster_job_failure.py": """
        import pendulum
        from airflow.sdk import dag, task


        @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), default_args={"retries": 0})
        def cluster_job_failure():
            @task
            def extract_features(params=None, run_id=None) -> str:
                from emopipe.pipelines import refresh

                return refresh.extract_features(params["params_file"], run_id, params["probe_dir"])

            extract_features()


        cluster_job_failure()
        """,
    "cluster_job_timeout.py": """
        import pathlib

        import pendulum
        from airflow.sdk import dag, task


        @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), default_args={"retries": 0})
        def cluster_job_timeout():
            @task(execution_timeout=pendulum.duration(seconds=20))
            def sleepy(params=None, run_id=None) -> None:
                from emopipe.orchestration import submit_ray_job

                args = {"params": params["params_file"], "run_id": run_id}
                submit_ray_job("sleepy", args, pathlib.Path(params["params_file"]).parent)

            sleepy()


        cluster_job_timeout()
        """,
}

SLEEPY = """
import time

print("sleepy: started, sleeping for ten minutes", flush=True)
time.sleep(600)
"""


class Airflow:
    """The real Airflow CLI with an Airflow of its own (SQLite, its own dags folder): the test DAGs meet no other."""

    def __init__(self, home: pathlib.Path, jobs_dir: pathlib.Path) -> None:
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "EMOPIPE_RAY_JOBS_DIR": str(jobs_dir),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=self.env, timeout=600, check=False)

    def json(self, *args: str) -> list[dict]:
        """The JSON document a CLI command prints (`-o json`), after whatever it logs first."""
        out = self(*args, "-o", "json").stdout
        return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("[")))

    def task_states(self, dag_id: str) -> list[tuple[str, str]]:
        [run] = self.json("dags", "list-runs", dag_id)
        return [(t["task_id"], t["state"]) for t in self.json("tasks", "states-for-dag-run", dag_id, run["run_id"])]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> Airflow:
    home = tmp_path_factory.mktemp("airflow")
    (home / "dags").mkdir()
    for name, source in DAGS.items():
        (home / "dags" / name).write_text(textwrap.dedent(source))
    # the project's launchers plus one that only sleeps
    jobs = home / "ray_jobs"
    jobs.mkdir()
    repo_jobs = pathlib.Path(__file__).resolve().parents[2] / "ray_jobs"
    for launcher in repo_jobs.glob("*.py"):
        (jobs / launcher.name).write_text(launcher.read_text())
    (jobs / "sleepy.py").write_text(SLEEPY)
    cli = Airflow(home, jobs)
    migrate = cli("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return cli


def test_failed_cluster_job_fails_the_task_with_the_jobs_error(ray_cluster, airflow, tmp_path):
    params = write_params(tmp_path / "cfg", ray={"dashboard_url": ray_cluster.dashboard_url})
    # the folder the job is told to read was never written (as when the cluster cannot see the Airflow side's disk)
    missing = tmp_path / "probe_clips-never-ran"
    conf = json.dumps({"params_file": str(params), "probe_dir": str(missing)})

    proc = airflow("dags", "test", "cluster_job_failure", "--conf", conf)
    output = proc.stdout + proc.stderr

    # the job's own error, raised on the cluster, is in the task's failure
    assert f"{missing}: no such dataset folder" in output, output[-4000:]
    assert "ray job extract_features FAILED on " + ray_cluster.dashboard_url in output, output[-4000:]
    # the job's log was streamed into the task log before that (a launcher traceback line)
    assert "[extract_features] Traceback (most recent call last):" in output, output[-4000:]
    # and Airflow recorded the task instance as failed
    assert airflow.task_states("cluster_job_failure") == [("extract_features", "failed")]


def test_a_task_cut_short_stops_its_job_on_the_cluster(ray_cluster, airflow, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    params = write_params(tmp_path / "cfg", ray={"dashboard_url": ray_cluster.dashboard_url})
    proc = airflow("dags", "test", "cluster_job_timeout", "--conf", json.dumps({"params_file": str(params)}))
    output = proc.stdout + proc.stderr

    assert "[sleepy] sleepy: started, sleeping for ten minutes" in output, output[-4000:]  # it was running
    assert "AirflowTaskTimeout" in output, output[-4000:]
    assert airflow.task_states("cluster_job_timeout") == [("sleepy", "failed")]
    # the task's end stopped the job: it does not sleep on, holding the cluster
    client = JobSubmissionClient(ray_cluster.dashboard_url)
    [job] = [j for j in client.list_jobs() if j.metadata.get("emopipe_job") == "sleepy"]
    deadline = time.monotonic() + 60
    while not client.get_job_status(job.submission_id).is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
    assert client.get_job_status(job.submission_id) == JobStatus.STOPPED
