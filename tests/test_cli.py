"""The `emopipe` command line: the same functions as the DAG, exit codes and one-line reasons."""

import os
import pathlib
import subprocess
import sys

import pytest

from emopipe import cli
from tests.conftest import write_params

EMOPIPE = str(pathlib.Path(sys.executable).parent / "emopipe")


def test_unprobed_folder_fails_the_gate_with_exit_1(tiny_corpus, tmp_path, capsys):
    params = write_params(tmp_path / "cfg")
    assert (
        cli.main(
            [
                "-q",
                "--params",
                str(params),
                "ingest",
                "ravdess",
                str(tiny_corpus),
                "--out",
                str(tmp_path / "ds"),
                "--no-probe",
            ]
        )
        == 0
    )
    assert (tmp_path / "ds" / "clips.parquet").is_file() and (tmp_path / "ds" / "quarantine.parquet").is_file()
    assert cli.main(["-q", "--params", str(params), "validate", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    assert "quality gate FAILED" in out and "column='has_audio'" in out
    assert cli.main(["-q", "--params", str(params), "publish", str(tmp_path / "ds")]) == 1
    assert "refused: the quality gate failed" in capsys.readouterr().err


def test_bad_input_is_a_one_line_error_with_exit_2(tmp_path, capsys):
    params = write_params(tmp_path / "cfg")
    assert cli.main(["-q", "--params", str(params), "ingest", "ravdess", str(tmp_path / "missing"), "--out", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a folder" in err
    (tmp_path / "bad.yaml").write_text("ingest: {corpus: imdb}\n")
    assert cli.main(["-q", "--params", str(tmp_path / "bad.yaml"), "versions"]) == 2
    assert "ingest.corpus must be one of" in capsys.readouterr().err


@pytest.mark.ray
def test_ingest_validate_publish_in_order(tiny_corpus, tmp_path):
    """The full path on the command line, in a subprocess: Ray probe, gate, DVC version, listing."""
    params = str(write_params(tmp_path / "cfg"))
    env = dict(os.environ)

    def run(*args):
        return subprocess.run(
            [EMOPIPE, "-q", "--params", params, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )

    ingest = run("ingest", "ravdess", str(tiny_corpus), "--out", str(tmp_path / "ds"))
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    assert "4 quarantined" in ingest.stdout and "unreadable_media" in ingest.stdout
    assert run("validate", str(tmp_path / "ds")).returncode == 0
    publish = run("publish", str(tmp_path / "ds"))
    assert publish.returncode == 0 and "published v1" in publish.stdout
    assert run("versions").stdout.startswith("v1\t")
