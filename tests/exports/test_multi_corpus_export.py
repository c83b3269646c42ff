"""DFEW + MAFW in one export: each corpus's official folds side by side, and MAFW's copies of DFEW clips never on the
train side of a fold whose test side holds the original (and the other way round)."""

from __future__ import annotations

import json

from emopipe import splits
from emopipe.config import SourceConfig
from emopipe.exports import api as exports
from emopipe.pipelines import ingest
from tests.corpora import make_dfew, make_mafw


def test_near_duplicates_across_corpora_leave_the_train_side(tmp_path):
    dfew_root, mafw_root = tmp_path / "DFEW", tmp_path / "MAFW"
    make_dfew(dfew_root, n=10)
    # MAFW 00102 is DFEW 00005 byte for byte: DFEW 00005 tests in fold 1, MAFW 00102 (its 2nd clip) in fold 2
    make_mafw(mafw_root, [101, 102, 103, 104, 105], copy_from={102: dfew_root / "Clip/original/part_6/00005.mp4"})
    ds = ingest.run_sources(
        [SourceConfig(corpus="dfew", root=dfew_root), SourceConfig(corpus="mafw", root=mafw_root)],
        tmp_path / "ingest",
        "t",
    )
    leaks = splits.leaks(ds.splits, ds.clips).to_pylist()
    assert {(r["fold"], r["corpus"], tuple(r["train_clip_ids"])) for r in leaks} == {
        (1, "dfew", ("mafw:00102",)),
        (2, "mafw", ("dfew:00005",)),
    }
    for fold, dropped in ((1, "mafw:00102"), (2, "dfew:00005")):
        out = tmp_path / f"fold{fold}"
        options = exports.Options(format="r1omni", out=out, protocol=splits.OFFICIAL, fold=fold, progress=False)
        result = exports.export(ds, options, version="ingest")
        assert result.manifest["protocols"] == {"dfew": splits.OFFICIAL, "mafw": splits.OFFICIAL}
        assert result.manifest["left_out"]["near_duplicate"] == 1
        train = {e["clip_id"] for e in json.loads((out / "rlvr_train.json").read_text())}
        assert dropped not in train and {c.split(":")[0] for c in train} == {"dfew", "mafw"}
        rows = json.loads((out / "export_report.json").read_text())["rows"]
        assert [(r["clip_id"], r["reason"]) for r in rows] == [(dropped, "near_duplicate")]
    options = exports.Options(format="r1omni", out=tmp_path / "kept", protocol=splits.OFFICIAL, fold=1,
                              drop_near_duplicates=False, progress=False)  # fmt: skip
    kept = exports.export(ds, options, version="ingest")
    assert "near_duplicate" not in kept.manifest["left_out"]
