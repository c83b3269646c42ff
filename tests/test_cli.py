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
    assert (tmp_path / "ds" / "dataset.json").is_file() and (tmp_path / "ds" / "quarantine.parquet").is_file()
    assert cli.main(["-q", "--params", str(params), "validate", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    assert "quality gate FAILED" in out and "were never probed (has_audio is empty)" in out
    assert cli.main(["-q", "--params", str(params), "publish", str(tmp_path / "ds")]) == 1
    assert "refused: the quality gate failed" in capsys.readouterr().err


def test_bad_input_is_a_one_line_error_with_exit_2(tmp_path, capsys):
    params = write_params(tmp_path / "cfg")
    assert cli.main(["-q", "--params", str(params), "ingest", "ravdess", str(tmp_path / "missing"), "--out", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a folder" in err
    (tmp_path / "bad.yaml").write_text("ingest: {corpus: imdb}\n")
    assert cli.main(["-q", "--params", str(tmp_path / "bad.yaml"), "versions"]) == 2
    assert "bad.yaml: ingest.corpus: must be one of" in capsys.readouterr().err


@pytest.mark.ray
def test_ingest_validate_publish_in_order(tiny_corpus, tmp_path):
    """The full path on the command line, in a subprocess: Ray probe, Ray extraction, gate, DVC version, listing."""
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
    extract = run("extract", str(tmp_path / "ds"), "--out", str(tmp_path / "ds"))
    assert extract.returncode == 0, extract.stderr[-2000:]
    assert f"{ingest.stdout.split()[0]} clips" in extract.stdout and "errors: none" in extract.stdout
    # counts are words for a person, never Python reprs of dicts
    assert not {"{", "}", "'"} & set(ingest.stdout + extract.stdout), ingest.stdout + extract.stdout
    assert run("validate", str(tmp_path / "ds")).returncode == 0
    publish = run("publish", str(tmp_path / "ds"))
    assert publish.returncode == 0 and "published v1" in publish.stdout
    assert run("versions").stdout.startswith("v1\t")


@pytest.mark.parametrize("corpus", ["dfew", "mafw", "footage"])
def test_ingest_other_corpora_prints_fold_and_class_counts(corpus, tmp_path, capsys):
    from tests.corpora import make_dfew, make_footage, make_mafw

    root = tmp_path / corpus
    {"dfew": lambda: make_dfew(root, n=10), "mafw": lambda: make_mafw(root, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
     "footage": lambda: make_footage(root)}[corpus]()  # fmt: skip
    params = write_params(tmp_path / "cfg")
    args = ["-q", "--params", str(params), "ingest", corpus, str(root), "--out", str(tmp_path / "ds"), "--no-probe"]
    if corpus == "footage":
        assert cli.main(args) == 2
        assert "needs a `license`" in capsys.readouterr().err
        args += ["--license", "CC BY 4.0"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    if corpus == "footage":
        assert out.startswith("3 clips") and "happiness 1" in out and "unlabelled 2" in out
    else:
        assert "fold 1 test " in out and "fold 5 train" in out
        assert f"{corpus} protocol: " in out and "in exactly one test fold, 0 train/test overlaps" in out
    if corpus == "dfew":
        # test fold 1 holds clips 5 and 10 (i % 5 == 0), labelled (i % 7) + 1: 6 Disgust and 4 Angry
        assert "fold 1 test       2: anger 1, disgust 1" in out
