"""MAFW: protocol splits, GBK captions, compound labels, spreadsheet ids without an assumed order, bad input."""

import pytest
from tests.corpora import MAFW_CLASSES, make_mafw

from emopipe import schemas
from emopipe.sources import files, mafw, protocol

IDS = [
    19,
    25,
    27,
    103,
    350,
    903,
    1204,
    3414,
    5000,
    7021,
    8812,
    9000,
    12000,
    15003,
    20098,
    20097,
    17,
    18,
    44,
    45,
    46,
    47,
]


@pytest.fixture(scope="module")
def mafw_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mafw")
    facts = make_mafw(root, IDS, no_audio=(903, 3414))
    return root, facts


def test_reads_splits_captions_compound_and_sheet(mafw_root):
    root, facts = mafw_root
    result = mafw.scan(root, run_id="t")
    assert result.clips.schema.equals(schemas.CLIPS, check_metadata=True)
    assert result.quarantine.num_rows == 0, result.quarantine.to_pylist()
    rows = {r["native_id"]: r for r in result.clips.to_pylist()}
    assert sorted(rows) == sorted(f"{i:05d}" for i in IDS)
    r = rows["00027"]  # third clip: MAFW_CLASSES[2] = fear, test fold 3
    assert (r["native_label"], r["label"]) == ("fear", "fear")
    assert [a for a in r["folds"] if a["split"] == "test"] == [{"fold": 3, "split": "test"}]
    assert r["description"] == "A person looks fear"
    assert schemas.as_dict(r["native_fields"])["description_zh"] == "一个人看起来fear"
    assert r["compound_labels"] == ["fear", "surprise"]
    assert schemas.as_dict(r["native_fields"])["label_ids"] == str(MAFW_CLASSES[::-1].index("fear") + 1)
    contempt = next(v for v in rows.values() if v["label"] == "contempt")
    assert contempt["label_basic7"] is None  # outside the 7 basic classes
    check = protocol.check(result.clips)["mafw"]
    assert check["clips_in_exactly_one_test_fold"] == len(IDS) and check["train_test_overlaps"] == 0


def test_spreadsheet_ids_follow_the_split_files_not_an_assumed_order(mafw_root):
    """The sheet numbers classes in reverse order; the mapping is learned from the split files."""
    root, facts = mafw_root
    sheet, _ = mafw.read_spreadsheet(files.walk(root).get("Labels/single-set.xlsx"))
    mapping = mafw.map_ids(sheet, {f"{i:05d}": lab for i, lab in facts["labels"].items()})
    assert mapping == {MAFW_CLASSES[::-1].index(c) + 1: c for c in MAFW_CLASSES}


def test_multi_label_sheet_rows_become_compound_labels(tmp_path):
    root = tmp_path / "mafw"
    make_mafw(root, IDS)
    import openpyxl

    book = openpyxl.load_workbook(root / "Labels" / "single-set.xlsx")
    order = MAFW_CLASSES[::-1]
    book.active.append(["30000.mp4", f"{order.index('anger') + 1},{order.index('sadness') + 1}"])
    book.save(root / "Labels" / "single-set.xlsx")
    from tests.corpora import clip_media

    clip_media(root / "data" / "clips" / "30000.mp4", seed=30000)
    rows = {r["native_id"]: r for r in mafw.scan(root, run_id="t").clips.to_pylist()}
    assert rows["30000"]["label"] is None and rows["30000"]["compound_labels"] == ["anger", "sadness"]
    assert rows["30000"]["folds"] is None


def test_bad_lines_paths_and_files(tmp_path):
    root = tmp_path / "mafw"
    make_mafw(root, IDS)
    test1 = root / "Train & Test Set" / "single" / "no_caption" / "set_1" / "test.txt"
    with test1.open("a") as fh:
        fh.write("00019.mp4 joy\n")  # not a MAFW class
        fh.write("../../etc/passwd.mp4 anger\n")
        fh.write("/abs/00025.mp4 anger\n")
        fh.write("just-one-field\n")
        fh.write("20099.mp4 anger\n")  # no such clip on disk
    (root / "data" / "clips" / "notes.txt").write_text("x")
    (root / "data" / "clips" / "55555.mp4").write_bytes(b"")
    from tests.corpora import clip_media

    clip_media(root / "data" / "clips" / "60000.mp4", seed=6)  # in no split file
    result = mafw.scan(root, run_id="t")
    reasons = sorted(result.quarantine["reason"].to_pylist())
    assert reasons == sorted(
        [
            "unknown_label",
            "unsafe_path",
            "unsafe_path",
            "malformed_row",
            "missing_media",
            "unsupported_extension",
            "empty_file",
        ]
    )
    rows = {r["native_id"]: r for r in result.clips.to_pylist()}
    assert rows["60000"]["label"] is None and rows["60000"]["folds"] is None
    assert len(rows) == len(IDS) + 1


def test_unreadable_spreadsheet_is_quarantined_and_the_rest_goes_on(tmp_path):
    root = tmp_path / "mafw"
    make_mafw(root, IDS)
    (root / "Labels" / "single-set.xlsx").write_bytes(b"PK\x03\x04 broken zip")
    result = mafw.scan(root, run_id="t")
    assert result.quarantine["reason"].to_pylist() == ["unreadable_annotation"]
    assert result.clips.num_rows == len(IDS) and all(result.clips["label"].to_pylist())


def test_gender_file_is_read_as_estimated_and_odd_lines_are_quarantined(tmp_path):
    root = tmp_path / "mafw"
    make_mafw(root, IDS)
    (root / "Labels" / "gender.txt").write_text("00019.mp4 Male\n00025\tfemale\n00027 both\n00103\n")
    result = mafw.scan(root, run_id="t")
    rows = {r["native_id"]: r for r in result.clips.to_pylist()}
    assert (rows["00019"]["gender"], rows["00019"]["gender_source"]) == ("male", "estimated")
    assert (rows["00025"]["gender"], rows["00025"]["gender_source"]) == ("female", "estimated")
    assert rows["00027"]["gender"] is None and rows["00103"]["gender_source"] is None
    assert sorted(result.quarantine["reason"].to_pylist()) == ["malformed_row", "unknown_label"]


# --- issue 19: protocol breaks, links and folders --------------------------------------------------------


def test_a_clip_in_train_but_in_no_test_fold_is_a_protocol_violation_row(tmp_path):
    from tests.corpora import clip_media

    root = tmp_path / "mafw"
    make_mafw(root, IDS)
    clip_media(root / "data" / "clips" / "30001.mp4", seed=1)
    with (root / "Train & Test Set" / "single" / "no_caption" / "set_2" / "train.txt").open("a") as fh:
        fh.write("30001.mp4 anger\n")
    result = mafw.scan(root, run_id="t")
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "protocol_violation" and "30001" in row["detail"]
    assert row["path"] == "Train & Test Set/single/no_caption/set_2/train.txt"
    assert result.clips.num_rows == len(IDS) + 1


def test_links_leaving_the_root_self_links_and_folders_named_like_clips_get_rows(tmp_path):
    import os

    from tests.corpora import clip_media

    root = tmp_path / "mafw"
    make_mafw(root, IDS[:5])
    secret = clip_media(tmp_path / "outside" / "40000.mp4", seed=4)
    clips = root / "data" / "clips"
    os.symlink(secret, clips / "40000.mp4")
    os.symlink("40001.mp4", clips / "40001.mp4")
    (clips / "40002.mp4").mkdir()
    result = mafw.scan(root, run_id="t")
    assert sorted(result.clips["native_id"].to_pylist()) == sorted(f"{i:05d}" for i in IDS[:5])
    got = dict(zip(result.quarantine["path"].to_pylist(), result.quarantine["reason"].to_pylist(), strict=True))
    assert got == {
        "data/clips/40000.mp4": "unsafe_path",
        "data/clips/40001.mp4": "broken_symlink",
        "data/clips/40002.mp4": "not_a_file",
    }


def test_a_description_of_megabytes_is_cut_with_a_row(tmp_path):
    """A caption line may not grow every table: its description is kept to MAX_TEXT_CHARS, and a row says so."""
    from emopipe.sources.base import MAX_TEXT_CHARS

    make_mafw(tmp_path, IDS)
    clip = f"{IDS[0]:05d}.mp4"
    for captions in (tmp_path / "Train & Test Set" / "single" / "with_caption").rglob("*.txt"):  # every fold's line
        lines = captions.read_bytes().decode("gbk").splitlines(keepends=True)
        long = [
            "\t".join([*line.split("\t")[:3], "long " * 400_000]) + "\n" if line.startswith(clip) else line
            for line in lines
        ]
        captions.write_bytes("".join(long).encode("gbk"))
    result = mafw.scan(tmp_path, run_id="t")
    row = next(r for r in result.clips.to_pylist() if r["native_id"] == clip.removesuffix(".mp4"))
    assert row["label"] is not None and row["description"].endswith("[1999999 characters, cut]")
    assert len(row["description"]) < MAX_TEXT_CHARS + 100
    bad = [r for r in result.quarantine.to_pylist() if r["reason"] == "invalid_annotation"]
    assert bad and all("description" in r["detail"] and "with_caption" in r["path"] for r in bad), bad
