"""Every reader on a hostile corpus in its real layout (tests/hostile.py): the scan never raises, every good clip is
kept exactly once with its labels, and every bad input has a quarantine row with a documented reason and a short,
printable detail naming the file; what only decoding can tell is refused by the probe with its own reason."""

import collections

import pytest
from tests.hostile import READERS, make_hostile

from emopipe import schemas
from emopipe.sources import dfew, footage, mafw, ravdess
from emopipe.sources.base import MAX_DETAIL_CHARS, MAX_PATH_CHARS
from emopipe.stages import probe

SCAN = {"ravdess": ravdess.scan, "dfew": dfew.scan, "mafw": mafw.scan, "footage": footage.scan}
LIMITS = probe.ProbeLimits(min_duration_s=0.2, max_duration_s=600, min_fps=5, max_fps=120, min_frames=4)


@pytest.fixture(scope="module", params=READERS)
def scanned(request, tmp_path_factory):
    reader = request.param
    hostile = make_hostile(reader, tmp_path_factory.mktemp(reader) / reader)
    result = SCAN[reader](hostile.root, run_id="hostile", progress=hostile.during_scan)  # must not raise
    return reader, hostile, result


def test_every_good_clip_is_kept_exactly_once_with_its_labels(scanned):
    reader, hostile, result = scanned
    assert result.clips.schema.equals(schemas.CLIPS, check_metadata=True)
    paths = result.clips["media_path"].to_pylist()
    assert len(paths) == len(set(paths)) and len(set(result.clips["clip_id"].to_pylist())) == len(paths)
    assert set(paths) == set(hostile.good) | set(hostile.probe), (
        f"kept but not good: {sorted(set(paths) - set(hostile.good) - set(hostile.probe))}; "
        f"good but lost: {sorted(set(hostile.good) | set(hostile.probe) - set(paths))}"
    )
    rows = {r["media_path"]: r for r in result.clips.to_pylist()}
    for path, expected in hostile.good.items():
        row = rows[path]
        for key, value in expected.items():
            if key == "test_fold":
                assert [a["fold"] for a in row["folds"] if a["split"] == "test"] == [value], path
            elif key == "votes":
                assert schemas.as_dict(row["label_votes"])[value] == 10, path
            else:
                assert row[key] == value, (path, key, row[key])


def test_every_bad_input_has_one_quarantine_row_with_a_documented_reason(scanned):
    reader, hostile, result = scanned
    rows = result.quarantine.to_pylist()
    reasons = schemas.quarantine_reasons()
    expected = list(hostile.bad)
    unexpected = []
    for row in rows:
        match = next(
            (i for i, (p, allowed) in enumerate(expected) if p == row["path"] and row["reason"] in allowed), None
        )
        if match is None:
            unexpected.append((row["path"], row["reason"], row["detail"]))
        else:
            expected.pop(match)
    assert not unexpected, f"rows nobody planted: {unexpected}"
    assert not expected, f"bad inputs without their row: {expected}"
    counts = collections.Counter(r["reason"] for r in rows)
    assert set(counts) <= set(reasons) and "reader_error" not in counts, counts
    assert {r["stage"] for r in rows} == {"ingest"} and {r["corpus"] for r in rows} == {reader}


def test_details_name_the_file_are_printable_and_short(scanned):
    _, _, result = scanned
    for row in result.quarantine.to_pylist():
        assert row["path"].isprintable() and len(row["path"]) <= MAX_PATH_CHARS, row
        assert row["detail"].isprintable() and len(row["detail"]) <= MAX_DETAIL_CHARS, row
        assert row["path"] in row["detail"] or row["detail"].startswith(row["path"][:40]), row


def test_what_only_decoding_can_tell_is_refused_by_the_probe(scanned):
    reader, hostile, result = scanned
    kept = [r for r in result.clips.to_pylist() if r["media_path"] in hostile.probe or r["media_path"] in hostile.good]
    probed = {r["media_path"]: r for r in probe.probe_rows(kept, hostile.root, LIMITS)}
    for path in hostile.good:
        assert probed[path]["error"] is None, (path, probed[path]["error"], probed[path]["error_detail"])
    for path, allowed in hostile.probe.items():
        assert probed[path]["error"] in allowed, (path, probed[path]["error"], probed[path]["error_detail"])
        assert probed[path]["error_detail"].isprintable()


def test_the_corpus_planted_many_kinds(scanned):
    _, hostile, _ = scanned
    assert len(set(hostile.kinds)) + len(hostile.probe) >= 40


@pytest.mark.parametrize("reader", READERS)
def test_only_a_missing_root_is_an_error(reader, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        SCAN[reader](tmp_path / "missing", run_id="t")
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        SCAN[reader](tmp_path / "a-file", run_id="t")
    empty = SCAN[reader](tmp_path, run_id="t") if reader != "footage" else None
    assert empty is None or empty.clips.num_rows == 0


def _sheets():
    import io

    import openpyxl

    empty = io.BytesIO()
    openpyxl.Workbook().save(empty)
    # a zip bomb: the central directory says the sheet expands to ~4 GiB (checked before anything is inflated)
    bomb = bytearray(empty.getvalue())
    entry = bomb.index(b"PK\x01\x02")  # first central directory header; uncompressed size at offset 24
    bomb[entry + 24 : entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    return {
        "corrupt zip": b"PK\x03\x04 broken zip",
        "not a zip": b"order,1happy\n1,2\n",
        "empty file": b"",
        "empty workbook": empty.getvalue(),
        "zip bomb": bytes(bomb),
    }


@pytest.fixture(scope="module")
def sheets():
    return _sheets()


@pytest.mark.parametrize("kind", ["corrupt zip", "not a zip", "empty file", "empty workbook", "zip bomb"])
def test_a_spreadsheet_that_cannot_be_read_is_one_row_and_the_labels_stay(kind, sheets, tmp_path):
    from tests.corpora import make_dfew, make_mafw

    make_dfew(tmp_path / "dfew", n=5)
    (tmp_path / "dfew" / "Annotation" / "annotation.xlsx").write_bytes(sheets[kind])
    result = dfew.scan(tmp_path / "dfew", run_id="t")
    assert [(r["path"], r["reason"]) for r in result.quarantine.to_pylist()] == [
        ("Annotation/annotation.xlsx", "unreadable_annotation")
    ]
    assert result.clips.num_rows == 5 and all(result.clips["label"].to_pylist())
    make_mafw(tmp_path / "mafw", [19, 25, 27])
    (tmp_path / "mafw" / "Labels" / "single-set.xlsx").write_bytes(sheets[kind])
    result = mafw.scan(tmp_path / "mafw", run_id="t")
    if kind == "empty workbook":  # a workbook without rows holds no ids: nothing to refuse
        assert result.quarantine.num_rows == 0
    else:
        assert [(r["path"], r["reason"]) for r in result.quarantine.to_pylist()] == [
            ("Labels/single-set.xlsx", "unreadable_annotation")
        ]
    assert result.clips.num_rows == 3 and all(result.clips["label"].to_pylist())


def test_a_garbage_file_gives_a_bounded_number_of_rows_and_the_good_lines_still_count(tmp_path):
    import numpy as np
    from tests.corpora import make_dfew

    from emopipe.sources.base import MAX_ROWS_PER_PATH

    make_dfew(tmp_path, n=5)
    split = tmp_path / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    noise = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()  # a JPEG renamed, say
    split.write_bytes(split.read_bytes() + noise)
    result = dfew.scan(tmp_path, run_id="t")
    rows = result.quarantine.to_pylist()
    assert 2 <= len(rows) <= MAX_ROWS_PER_PATH
    assert {r["path"] for r in rows} == {"EmoLabel_DataSplit/train(single-labeled)/set_1.csv"}
    assert "more problems in this file" in rows[-1]["detail"]
    assert all(r["detail"].isprintable() for r in rows)
    assert result.clips.num_rows == 5 and all(result.clips["label"].to_pylist())
