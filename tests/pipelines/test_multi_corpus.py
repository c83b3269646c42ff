"""DFEW + MAFW + footage through ingest -> probe_clips (Ray job) -> validate, as the DAG's tasks run them."""

import json
import pathlib

import pytest
from tests.conftest import write_params
from tests.corpora import clip_media, make_dfew, make_footage, make_mafw

from emopipe.dataset import Dataset
from emopipe.pipelines import refresh

pytestmark = pytest.mark.ray


def test_three_corpora_probe_gate_and_report(tmp_path):
    dfew_root, mafw_root, footage_root = tmp_path / "DFEW", tmp_path / "MAFW", tmp_path / "footage"
    make_dfew(dfew_root, n=28, frames_for=(3,))
    ids = list(range(101, 123))
    # MAFW 00101 is DFEW 00005 byte for byte; MAFW 00102 is DFEW 00006 re-encoded at another size
    make_mafw(mafw_root, ids, no_audio=(110,), copy_from={101: dfew_root / "Clip/original/part_6/00005.mp4"})
    clip_media(mafw_root / "data/clips/00102.mp4", seed=6, size=64)
    make_footage(footage_root)
    params_file = write_params(tmp_path / "cfg", ingest={"root": None, "sources": [
        {"corpus": "dfew", "root": str(dfew_root)}, {"corpus": "mafw", "root": str(mafw_root)},
        {"corpus": "footage", "root": str(footage_root), "license": "CC BY 4.0"}]},
        validate={"min_class_share": {"blocking": 0.0, "warning": 0.05},
                  "max_imbalance_ratio": {"blocking": 100, "warning": 10}})  # fmt: skip
    run_id = "multi"
    probed = refresh.probe_clips(str(params_file), run_id, refresh.ingest(str(params_file), run_id))
    clips = {r["clip_id"]: r for r in Dataset(probed).clips.to_pylist()}
    frames = clips["dfew:00003"]
    assert (frames["media_form"], frames["n_frames"], frames["codec"], frames["has_audio"]) == (
        "frames",
        4,
        "mjpeg",
        False,
    )
    assert clips["mafw:00110"]["has_audio"] is False and clips["mafw:00110"]["has_video"] is True
    assert clips["mafw:00101"]["frame_hash"] == clips["dfew:00005"]["frame_hash"]
    assert clips["mafw:00102"]["frame_hash"] == clips["dfew:00006"]["frame_hash"]  # survives re-encode + resize
    assert clips["mafw:00102"]["width"] == 64 and clips["dfew:00006"]["width"] == 32

    validated = refresh.validate(str(params_file), run_id, probed)
    gate = json.loads((pathlib.Path(validated) / "validation.json").read_text())
    leaks = [w for w in gate["warnings"] if "first frame across corpora" in w]
    assert leaks and "groups of clips share their first frame across corpora: combining those" in leaks[0]
    import pyarrow.parquet as pq

    groups = pq.read_table(pathlib.Path(validated) / "reports" / "near_duplicates.parquet").to_pylist()
    assert {tuple(g["clip_ids"]) for g in groups} >= {("dfew:00005", "mafw:00101"), ("dfew:00006", "mafw:00102")}

    report = refresh.report(str(params_file), run_id)
    assert report["clips_by_corpus"] == {"dfew": 28, "footage": 3, "mafw": 22}
    assert report["protocol"]["dfew"]["clips_in_exactly_one_test_fold"] == 28
    assert report["protocol"]["mafw"]["train_test_overlaps"] == 0
    assert "mafw folds (train/test)" in (pathlib.Path(report["run_dir"]) / "report.md").read_text()
