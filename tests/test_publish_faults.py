"""Atomic publish under real faults: the publishing process SIGKILLed between push and tag, two publishers at once."""

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from emopipe import versioning
from emopipe.config import load_params
from emopipe.dataset import Dataset
from tests.conftest import write_params
from tests.test_versioning import _validated

EMOPIPE = str(pathlib.Path(sys.executable).parent / "emopipe")


def _publish(params_file, folder, run_id, failpoint=None, wait=True):
    env = dict(os.environ)
    env.pop("EMOPIPE_FAILPOINT", None)
    if failpoint:
        env["EMOPIPE_FAILPOINT"] = failpoint
    cmd = [EMOPIPE, "-q", "--params", str(params_file), "publish", str(folder), "--run-id", run_id]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _commits(repo: pathlib.Path) -> list[str]:
    return versioning.git(repo, "log", "--format=%s", "HEAD").splitlines()


@pytest.mark.parametrize("point", ["publish:after_push", "publish:after_commit"])
def test_publisher_killed_before_the_tag_leaves_no_version_and_the_rerun_completes(tiny_corpus, tmp_path, point):
    params_file = write_params(tmp_path / "cfg")
    params = load_params(params_file)
    repo = params.publish.data_repo
    gate, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    assert gate.success

    killed = _publish(params_file, folder, "run-1", failpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert versioning.versions(repo, "v") == []  # nothing visible: a version is its tag
    if point == "publish:after_commit":  # the commit exists, untagged: what recovery must undo
        assert _commits(repo)[0].startswith("v1: ")

    again = _publish(params_file, folder, "run-1")  # the same DAG run, retried
    assert again.returncode == 0, again.stdout + again.stderr
    assert versioning.versions(repo, "v") == ["v1"]
    assert [c for c in _commits(repo) if c.startswith("v1: ")] == [_commits(repo)[0]]  # exactly one, on top
    assert versioning.git(repo, "rev-parse", "HEAD").strip() == versioning.git(repo, "rev-parse", "v1^{}").strip()
    assert versioning.git(repo, "status", "--porcelain", "--untracked-files=no").strip() == ""
    assert versioning.lineage(repo, "v1")["dataset_digest"] == gate.dataset_digest

    out = versioning.checkout(params, "v1", tmp_path / "clone")  # the remote holds every object of v1
    assert Dataset(out / "dataset").digest == Dataset(folder).digest


@pytest.mark.slow  # minutes: in `make test-slow`
def test_a_crash_while_publishing_v2_leaves_v1_as_it_was(tiny_corpus, tmp_path):
    params_file = write_params(tmp_path / "cfg")
    params = load_params(params_file)
    repo = params.publish.data_repo
    _, first = _validated(tiny_corpus, tmp_path / "run1", params)
    (tiny_corpus / "Actor_01" / "03-01-05-02-01-01-01.wav").unlink()  # one clip fewer: new content
    _, second = _validated(tiny_corpus, tmp_path / "run2", params)
    assert _publish(params_file, first, "run-1").returncode == 0
    v1_commit = versioning.git(repo, "rev-parse", "v1^{}").strip()

    killed = _publish(params_file, second, "run-2", failpoint="publish:after_commit")
    assert killed.returncode == -signal.SIGKILL
    assert versioning.versions(repo, "v") == ["v1"]
    # Anyone reading v1 meanwhile gets v1, whole.
    out = versioning.checkout(params, "v1", tmp_path / "clone-v1")
    assert Dataset(out / "dataset").digest == Dataset(first).digest

    listed = subprocess.run(
        [EMOPIPE, "-q", "--params", str(params_file), "versions"], capture_output=True, text=True, check=True
    )
    assert listed.stdout.startswith("v1\t") and "v2" not in listed.stdout

    assert _publish(params_file, second, "run-2").returncode == 0
    assert versioning.versions(repo, "v") == ["v1", "v2"]
    assert versioning.git(repo, "rev-parse", "v2^{}^").strip() == v1_commit  # v2 sits right on v1: no debris


def test_two_publishers_at_once_make_one_version(tiny_corpus, tmp_path):
    params_file = write_params(tmp_path / "cfg")
    params = load_params(params_file)
    _, first = _validated(tiny_corpus, tmp_path / "run1", params)
    _, second = _validated(tiny_corpus, tmp_path / "run2", params)  # the same content, from another run
    procs = [_publish(params_file, f, f"run-{i}", wait=False) for i, f in enumerate((first, second))]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert versioning.versions(params.publish.data_repo, "v") == ["v1"]
    assert sorted("unchanged" in o for o in outputs) == [False, True], outputs  # one waited, then found v1
