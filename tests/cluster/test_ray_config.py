"""The `ray:` section: which cluster each stage joins, and the command a submitted job runs."""

import shlex

import pytest
import yaml
from tests.conftest import write_params

from emopipe import orchestration
from emopipe.config import RayConfig, load_params


def test_without_a_ray_section_every_job_runs_locally(tmp_path):
    path = write_params(tmp_path)
    raw = yaml.safe_load(path.read_text())
    del raw["ray"]  # the tests' own default (compute in-process) left out: what a user's file without it gets
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path)
    assert params.ray == RayConfig() and params.ray.executor == "auto"
    assert (params.probe_clips.ray_address, params.extract_features.ray_address, params.label_clips.ray_address) == (
        None,
        None,
        None,
    )


def test_stages_join_the_ray_address_unless_they_name_their_own(tmp_path):
    params = load_params(
        write_params(tmp_path, ray={"address": "head:6379"}, label_clips={"ray_address": "ray://gpu-head:10001"})
    )
    assert params.probe_clips.ray_address == "head:6379"
    assert params.extract_features.ray_address == "head:6379"
    assert params.label_clips.ray_address == "ray://gpu-head:10001"


def test_runtime_env_paths_are_relative_to_params_yaml_and_uris_are_kept(tmp_path):
    env = {"working_dir": ".", "py_modules": ["src/emopipe", "s3://bucket/emopipe.zip"], "pip": ["requests==2.32.5"]}
    params = load_params(write_params(tmp_path / "cfg", ray={"dashboard_url": "http://head:8265", "runtime_env": env}))
    assert params.ray.runtime_env == {
        "working_dir": str(tmp_path / "cfg"),
        "py_modules": [str(tmp_path / "cfg" / "src" / "emopipe"), "s3://bucket/emopipe.zip"],
        "pip": ["requests==2.32.5"],
    }


@pytest.mark.parametrize(
    ("ray", "message"),
    [
        ({"dashboard_url": "head:8265"}, "ray.dashboard_url: must be an http"),
        ({"runtime_env": ["working_dir"]}, "ray.runtime_env: must be a mapping"),
        ({"local_below_rows": -1}, "ray.local_below_rows: must be >= 0, got -1"),
        ({"adress": "head:6379"}, "ray.adress: unknown key; did you mean 'address'"),
    ],
)
def test_bad_ray_settings_are_refused_by_name(tmp_path, ray, message):
    with pytest.raises(ValueError, match=message):
        load_params(write_params(tmp_path, ray=ray))


ARGS = {"params": "/shared/cfg/params.yaml", "input": "/shared/run/probe", "output": "/shared/run/x", "run_id": "r 1"}


def test_a_submitted_job_runs_the_same_launcher_with_the_same_options():
    # baked into the image at the same path as here: this checkout's ray_jobs/
    command = shlex.split(orchestration.entrypoint("extract_features", ARGS, RayConfig(dashboard_url="http://h:8265")))
    launcher = str(orchestration.jobs_dir() / "extract_features.py")
    assert command == ["python", launcher, *orchestration.cli_args(ARGS)]
    assert command[-2:] == ["--run-id", "r 1"]


def test_a_shipped_working_dir_or_a_configured_jobs_dir_is_where_the_launcher_is():
    shipped = RayConfig(dashboard_url="http://h:8265", runtime_env={"working_dir": "/src/emopipe-checkout"})
    assert shlex.split(orchestration.entrypoint("probe_clips", {}, shipped)) == ["python", "ray_jobs/probe_clips.py"]
    image = RayConfig(dashboard_url="http://h:8265", jobs_dir="/app/ray_jobs", python="/opt/venv/bin/python -X utf8")
    assert shlex.split(orchestration.entrypoint("probe_clips", {}, image)) == [
        "/opt/venv/bin/python",
        "-X",
        "utf8",
        "/app/ray_jobs/probe_clips.py",
    ]


def test_submitted_jobs_get_one_blas_thread_unless_the_runtime_env_says_otherwise():
    assert orchestration.runtime_env(RayConfig()) == {"env_vars": {"OPENBLAS_NUM_THREADS": "1"}}
    mine = RayConfig(runtime_env={"pip": ["x==1"], "env_vars": {"OPENBLAS_NUM_THREADS": "4", "A": "b"}})
    assert orchestration.runtime_env(mine) == {"pip": ["x==1"], "env_vars": {"OPENBLAS_NUM_THREADS": "4", "A": "b"}}
