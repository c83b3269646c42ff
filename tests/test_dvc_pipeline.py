"""dvc.yaml: `dvc repro` runs ingest -> probe_clips -> extract_features -> label_clips -> validate with the real
CLI and Ray jobs, and skips what did not change."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_params

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # minutes: in `make test-slow`

DVC = [sys.executable, "-m", "dvc"]


def _copy_project(dest: pathlib.Path) -> pathlib.Path:
    dest.mkdir(parents=True)
    keep = ["dvc.yaml", ".dvc", ".dvcignore", "ray_jobs", "src", "schemas", "quality"]
    for name in keep:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("tmp", "cache", "__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def test_dvc_repro_runs_the_stages_and_skips_unchanged_ones(tmp_path):
    project = _copy_project(tmp_path / "project")
    write_params(project)  # the tiny demo corpus under project/work
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
    first = subprocess.run([*DVC, "repro"], cwd=project, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (project / "data" / "validate" / "validation.json").is_file()
    assert (project / "dvc.lock").is_file()
    metrics = subprocess.run(
        [*DVC, "metrics", "show", "--json"], cwd=project, capture_output=True, text=True, env=env, check=True
    )
    assert "imbalance_ratio" in metrics.stdout and "uar" in metrics.stdout

    second = subprocess.run([*DVC, "repro"], cwd=project, capture_output=True, text=True, env=env, check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    out = second.stdout + second.stderr
    assert "Running stage 'ingest'" in out  # always re-scans the corpus
    assert "Stage 'probe_clips' didn't change, skipping" in out
    assert "Stage 'extract_features' didn't change, skipping" in out
    assert "Stage 'label_clips' didn't change, skipping" in out
    assert "Stage 'validate' didn't change, skipping" in out
