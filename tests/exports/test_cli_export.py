"""`emopipe export` as a user runs it: bad requests exit 2 with one line and leave no export; an interrupted export
resumes and ends whole; a forgotten subject is in no export; a missing media file is a reported row."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from emopipe.cli import main
from emopipe.exports.plan import sample_keys
from tests.conftest import write_params


def _bad(published, capsys, tmp_path, args: list[str], expected: str) -> None:
    out = tmp_path / "out"
    rc = main(["--params", str(published.params_file), "-q", "export", *args, "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, lines
    assert lines[0].startswith("emopipe export: ") and expected in lines[0], lines[0]
    assert not (out / "export.json").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["v9", "--format", "hf"], "no published version 'v9'"),
        (["{tag}", "--format", "zip"], "unknown format 'zip'"),
        (
            ["{tag}", "--format", "hf", "--protocol", "official_5fold"],
            "protocol 'official_5fold' is not in this version",
        ),
        (
            ["{tag}", "--format", "hf", "--protocol", "leave_one_actor_out", "--fold", "9"],
            "fold 9 is not in ravdess's",
        ),
        (["{tag}", "--format", "hf", "--media-root", "ravdess=/no/such/folder"], "is not a folder"),
        (["{tag}", "--format", "hf", "--media-root", "ravdess"], "expected CORPUS=PATH"),
    ],
)
def test_bad_requests_exit_2_with_one_line(published, capsys, tmp_path, args, expected):
    _bad(published, capsys, tmp_path, [a.format(tag=published.tag) for a in args], expected)


def test_a_media_root_with_other_bytes_is_refused(published, capsys, tmp_path):
    other = pathlib.Path(shutil.copytree(published.corpus, tmp_path / "other"))
    clips = published.dataset.clips.sort_by("clip_id").to_pylist()
    first, second = clips[0]["media_path"], next(c["media_path"] for c in clips if c["media_form"] == "video" and
                                                  c["media_path"] != clips[0]["media_path"])  # fmt: skip
    (other / first).write_bytes((other / second).read_bytes())  # another release: same names, other bytes
    _bad(published, capsys, tmp_path, [published.tag, "--format", "hf", "--media-root", f"ravdess={other}"],
         "holds other bytes than the version")  # fmt: skip


def _cli(published, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "emopipe.cli", "--params", str(published.params_file), "-q", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env or dict(os.environ), check=False)


def test_an_interrupted_export_resumes_and_ends_whole(published, tmp_path):
    args = ["export", published.tag, "--format", "webdataset", "--protocol", "leave_one_actor_out",
            "--shard-size-mb", "0.2"]  # fmt: skip
    out = tmp_path / "wds"
    killed = _cli(published, *args, "--out", str(out), env={**os.environ, "EMOPIPE_FAILPOINT": "export:after_unit"})
    assert killed.returncode == -9, killed.stderr  # SIGKILLed after its first shard
    assert not (out / "export.json").exists() and (out / ".emopipe-partial").is_dir()
    done = _cli(published, *args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stdout
    assert not (out / ".emopipe-partial").exists()
    again = _cli(published, *args, "--out", str(out))
    assert again.returncode == 0 and "(already complete)" in again.stdout
    clean = _cli(published, *args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr

    def shards(folder: pathlib.Path) -> dict:
        index = json.loads((folder / "index.json").read_text())
        return {s: [(x["url"], x["samples"], x["sha256"]) for x in v["shards"]] for s, v in index["splits"].items()}

    assert shards(out) == shards(tmp_path / "clean")  # the resumed export holds the same bytes as a clean one


def test_another_export_in_the_same_folder_is_refused(published, capsys, tmp_path):
    out = tmp_path / "hf"
    base = ["--params", str(published.params_file), "-q", "export", published.tag, "--out", str(out)]
    assert main([*base, "--format", "r1omni", "--protocol", "leave_one_actor_out"]) == 0
    capsys.readouterr()
    assert main([*base, "--format", "r1omni", "--protocol", "leave_one_actor_out", "--fold", "2"]) == 2
    assert "already holds another export" in capsys.readouterr().err


def test_a_forgotten_subject_is_in_no_export(published, tmp_path, capsys):
    # a second workplace on the same data repository, where the person asked to be forgotten
    shared = {"data_repo": str(published.repo), "remote": published.params.publish.remote}
    params_file = write_params(tmp_path / "cfg", ingest={"root": str(published.corpus)}, publish=shared)
    assert main(["--params", str(params_file), "forget", "--subject", "ravdess:actor_02"]) == 0
    gone = [r for r in published.dataset.clips.to_pylist() if r["subject_id"] == "ravdess:actor_02"]
    needles = [r["clip_id"].encode() for r in gone] + [r["media_path"].encode() for r in gone]
    needles += [sample_keys([r["clip_id"]])[r["clip_id"]].encode() for r in gone]
    for fmt in ("hf", "webdataset", "r1omni"):
        out = tmp_path / fmt
        rc = main(["--params", str(params_file), "-q", "export", published.tag, "--format", fmt, "--out", str(out),
                   "--protocol", "subject_kfold", "--copy-media"])  # fmt: skip
        assert rc == 0, capsys.readouterr().err
        manifest = json.loads((out / "export.json").read_text())
        assert manifest["left_out"]["forgotten_subject"] == len(gone)
        if fmt == "hf":  # its Parquet files are compressed: look at what datasets reads back
            from datasets import load_dataset

            loaded = load_dataset(str(out))
            ids = [c for part in loaded.values() for c in part["clip_id"]]
            assert ids and not {r["clip_id"] for r in gone} & set(ids)
            assert not [m for part in loaded.values() for m in part["metadata"] if "actor_02" in m]
        for path in out.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not [n for n in needles if n in data], (fmt, path)


def test_a_missing_media_file_is_a_reported_row(published, tmp_path, decodes_video):
    from datasets import load_dataset

    root = pathlib.Path(shutil.copytree(published.corpus, tmp_path / "mounted"))
    clips = published.dataset.clips.sort_by("clip_id").to_pylist()
    lost = [c for c in clips if c["media_form"] == "video" and c["subject_id"] == "ravdess:actor_02"][-1]
    (root / lost["media_path"]).unlink()
    for fmt, action in (("hf", "exported without its media"), ("r1omni", "left out")):
        out = tmp_path / fmt
        done = _cli(published, "export", published.tag, "--format", fmt, "--out", str(out), "--protocol",
                    "leave_one_actor_out", "--fold", "1", "--media-root", f"ravdess={root}")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "left out or without media" in done.stdout
        rows = json.loads((out / "export_report.json").read_text())["rows"]
        row = next(r for r in rows if r["clip_id"] == lost["clip_id"])
        assert (row["reason"], row["action"]) == ("missing_media", action)
        assert row["detail"] == str(root / lost["media_path"])
    train = load_dataset(str(tmp_path / "hf"), split="train")
    kept = next(r for r in train if r["clip_id"] == lost["clip_id"])  # still there, with its features
    assert kept["video"] is None and kept["frames"]
    entries = json.loads((tmp_path / "r1omni" / "rlvr_train.json").read_text())
    assert lost["clip_id"] not in {e["clip_id"] for e in entries}
