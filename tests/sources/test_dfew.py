"""DFEW: both split-file namings, padded and unpadded ids, votes, frame folders, the protocol, and bad input."""

import shutil

import pytest
from tests.corpora import make_dfew

from emopipe import schemas
from emopipe.sources import dfew, protocol


def _by_id(result):
    return {r["native_id"]: r for r in result.clips.to_pylist()}


def _reasons(result):
    return sorted(result.quarantine["reason"].to_pylist())


@pytest.fixture(scope="module")
def dfew_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dfew")
    facts = make_dfew(root, n=20, frames_for=(3,), unsplit=(20,))
    return root, facts


def test_reads_clips_labels_folds_and_votes(dfew_root):
    root, facts = dfew_root
    result = dfew.scan(root, run_id="t")
    assert result.clips.schema.equals(schemas.CLIPS, check_metadata=True)
    assert _reasons(result) == []
    rows = _by_id(result)
    assert len(rows) == 20
    r = rows["00008"]  # label (8 % 7) + 1 = 2 = Sad; test fold (8 % 5) + 1 = 4
    assert (r["native_label"], r["label"], r["label_basic7"]) == ("Sad", "sadness", "sadness")
    assert {(a["fold"], a["split"]) for a in r["folds"]} == {
        (1, "train"),
        (2, "train"),
        (3, "train"),
        (4, "test"),
        (5, "train"),
    }
    assert schemas.as_dict(r["label_votes"]) == {
        "Happy": 0,
        "Sad": 0,
        "Neutral": 0,
        "Angry": 0,
        "Surprise": 0,
        "Disgust": 0,
        "Fear": 0,
    } | {"Sad": 8, "Neutral": 2}
    assert r["media_path"] == "Clip/original/part_9/00008.mp4" and r["media_form"] == "video"
    assert r["license"].startswith("DFEW")
    # a clip with only a frame folder, and a clip no split file names (kept, unlabelled, votes kept)
    assert (rows["00003"]["media_form"], rows["00003"]["media_path"]) == ("frames", "Clip/clip_224x224/00003")
    assert rows["00020"]["label"] is None and rows["00020"]["folds"] is None and rows["00020"]["label_votes"]
    facts_seen = protocol.check(result.clips)["dfew"]
    assert facts_seen["clips_in_exactly_one_test_fold"] == facts_seen["clips_with_folds"] == 19
    assert facts_seen["train_test_overlaps"] == 0
    assert {int(k): (v["train"], v["test"]) for k, v in facts_seen["folds"].items()} == facts["folds"]


def test_first_author_naming_and_unpadded_ids_give_the_same_clips(dfew_root, tmp_path):
    root, _ = dfew_root
    other = tmp_path / "dfew"
    make_dfew(other, n=20, naming="label", padded=False, frames_for=(3,), unsplit=(20,))
    a, b = dfew.scan(root, run_id="t").clips, dfew.scan(other, run_id="t").clips
    cols = ["clip_id", "label", "folds", "label_votes", "media_path", "sha256"]
    assert a.select(cols).to_pylist() == b.select(cols).to_pylist()


def test_bad_split_rows_and_files_are_quarantined(tmp_path):
    root = tmp_path / "dfew"
    make_dfew(root, n=10)
    split = root / "EmoLabel_DataSplit"
    test1 = split / "test(single-labeled)" / "set_1.csv"
    test1.write_bytes(
        test1.read_bytes()
        + b"00005,3\n"
        + b"garbage line without comma\n"
        + b"00007,9\n"
        + b"00099,1\n"
        + "00002,\xff\xfe".encode("latin-1")
        + b"\n"
    )
    (split / "train(single-labeled)" / "set_2.csv").open("a").write("00006,1\n")  # 00006 is in test of fold 2
    (split / "train(single-labeled)" / "set_3.csv").open("a").write("00010,2\n")  # 00010 is Angry (4) elsewhere
    (root / "Annotation" / "annotation.xlsx").write_bytes(b"not a spreadsheet")
    result = dfew.scan(root, run_id="t")
    q = result.quarantine.to_pylist()
    reasons = sorted(r["reason"] for r in q)
    assert reasons.count("duplicate_in_fold") == 2  # 00005 twice in test of fold 1, 00010 twice in train of fold 3
    assert {
        "malformed_row",
        "unknown_label",
        "missing_media",
        "train_test_overlap",
        "label_conflict",
        "unreadable_annotation",
    } <= set(reasons)
    assert any(r["reason"] in {"bad_encoding", "malformed_row"} and "line" in r["detail"] for r in q)
    by_reason = {r["reason"]: r for r in q}
    assert "00099" in by_reason["missing_media"]["detail"]
    assert "set_1.csv" in by_reason["unknown_label"]["detail"] and "'9'" in by_reason["unknown_label"]["detail"]
    rows = _by_id(result)
    assert len(rows) == 10  # every clip with media is still a clip
    assert rows["00010"]["label"] is None  # conflicting labels: kept unlabelled, never guessed
    assert all((a["fold"] != 2) for a in rows["00006"]["folds"])  # overlapping fold assignment dropped
    assert rows["00001"]["label_votes"] is None  # spreadsheet unreadable: no votes, but the clip is kept


def test_non_utf8_lines_are_read_as_gbk_or_quarantined(tmp_path):
    root = tmp_path / "dfew"
    make_dfew(root, n=5)
    path = root / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_1.csv"
    path.write_bytes(path.read_bytes() + b"\x80\xff\x80,1\n")
    q = dfew.scan(root, run_id="t").quarantine.to_pylist()
    assert [r["reason"] for r in q] == ["bad_encoding"]


def test_empty_root_and_missing_root(tmp_path):
    assert dfew.scan(tmp_path, run_id="t").clips.num_rows == 0
    with pytest.raises(FileNotFoundError):
        dfew.scan(tmp_path / "missing", run_id="t")
    shutil.rmtree(tmp_path)


# --- issue 19: protocol breaks, links and folders --------------------------------------------------------


def test_a_clip_in_train_but_in_no_test_fold_is_a_protocol_violation_row(tmp_path):
    from tests.corpora import clip_media

    root = tmp_path / "dfew"
    make_dfew(root, n=10)
    clip_media(root / "Clip" / "original" / "part_1" / "00011.mp4", seed=11)
    with (root / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv").open("a") as fh:
        fh.write("00011,1\n")
    result = dfew.scan(root, run_id="t")
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "protocol_violation" and "00011" in row["detail"] and "no test fold" in row["detail"]
    assert row["path"] == "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
    assert result.clips.num_rows == 11


def test_links_leaving_the_root_self_links_and_folders_named_like_clips_get_rows(tmp_path):
    import os

    from tests.corpora import clip_media

    root = tmp_path / "dfew"
    make_dfew(root, n=5)
    secret = clip_media(tmp_path / "outside" / "00006.mp4", seed=6)
    part = root / "Clip" / "original" / "part_2"  # clip 1 lives here
    os.symlink(secret, part / "00006.mp4")
    os.symlink("00007.mp4", part / "00007.mp4")
    (part / "00008.mp4").mkdir()
    os.symlink(tmp_path / "outside", root / "Clip" / "clip_224x224")
    result = dfew.scan(root, run_id="t")
    assert sorted(result.clips["native_id"].to_pylist()) == ["00001", "00002", "00003", "00004", "00005"]
    got = dict(zip(result.quarantine["path"].to_pylist(), result.quarantine["reason"].to_pylist(), strict=True))
    assert got == {
        "Clip/original/part_2/00006.mp4": "unsafe_path",
        "Clip/original/part_2/00007.mp4": "broken_symlink",
        "Clip/original/part_2/00008.mp4": "not_a_file",
        "Clip/clip_224x224": "unsafe_path",
    }
