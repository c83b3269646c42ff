"""Raw footage: recursive discovery, sidecars and folder tables, duplicates, symlinks, bad annotations."""

import json
import os

import pytest
from tests.corpora import clip_media, make_footage

from emopipe import schemas
from emopipe.sources import footage


def _rows(result):
    return {r["media_path"]: r for r in result.clips.to_pylist()}


def test_reads_clips_and_annotations(tmp_path):
    make_footage(tmp_path)
    result = footage.scan(tmp_path, run_id="t", license="CC BY 4.0, collected with consent")
    assert result.clips.schema.equals(schemas.CLIPS, check_metadata=True)
    assert result.quarantine.num_rows == 0, result.quarantine.to_pylist()
    rows = _rows(result)
    assert sorted(rows) == ["2026-11-01/cam1/a.mp4", "2026-11-01/cam1/b.mkv", "2026-11-02/c.mov"]
    a = rows["2026-11-01/cam1/a.mp4"]
    assert a["duplicate_paths"] == ["2026-11-02/copy_of_a.mp4"]
    assert (a["gender"], a["gender_source"], a["age_group"], a["accent"]) == (
        "female",
        "annotated",
        "30-39",
        "scottish",
    )
    assert (a["arousal"], a["valence"], a["language"]) == (7.0, -2.0, "en")
    assert a["label"] is None and a["compound_labels"] == ["surprise", "anger"]
    assert a["native_label"] == "surprised, angry"
    assert schemas.as_dict(a["native_fields"]) == {"audio_quality": "good"}
    b = rows["2026-11-01/cam1/b.mkv"]
    assert (b["label"], b["gender"], b["arousal"]) == ("happiness", "male", 3.0)
    assert b["subject_id"] == "footage:spk-2" and b["native_fields"] is None  # the speaker column names the subject
    assert a["subject_id"] is None
    c = rows["2026-11-02/c.mov"]
    assert c["label"] is None and c["gender"] is None and c["license"] == "CC BY 4.0, collected with consent"


def test_symlinks_leaving_the_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    make_footage(root)
    secret = clip_media(outside / "secret.mp4", seed=9)
    os.symlink(secret, root / "link.mp4")
    os.symlink(outside, root / "linked-folder")
    os.symlink(root / "2026-11-02" / "c.mov", root / "inside-link.mov")
    result = footage.scan(root, run_id="t", license="x")
    q = {r["path"]: r["reason"] for r in result.quarantine.to_pylist()}
    assert q == {"link.mp4": "unsafe_path", "linked-folder": "unsafe_path"}
    assert "secret" not in " ".join(result.clips["media_path"].to_pylist())
    rows = _rows(result)
    assert rows["2026-11-02/c.mov"]["duplicate_paths"] == ["inside-link.mov"]


def test_bad_annotations_are_quarantined_and_the_clip_kept(tmp_path):
    make_footage(tmp_path)
    (tmp_path / "2026-11-01" / "cam1" / "a.json").write_text(json.dumps({"arousal": 42, "gender": "female"}))
    (tmp_path / "2026-11-02" / "c.json").write_text("{not json")
    (tmp_path / "2026-11-02" / "orphan.json").write_text("{}")
    (tmp_path / "2026-11-02" / "annotations.csv").write_text(
        "path,gender\n../../etc/passwd,male\nmissing.mp4,female\n"
    )
    (tmp_path / "2026-11-02" / "notes.txt").write_text("hello")
    (tmp_path / "2026-11-02" / "empty.webm").write_bytes(b"")
    result = footage.scan(tmp_path, run_id="t", license="x")
    reasons = sorted(result.quarantine["reason"].to_pylist())
    assert reasons == sorted(
        [
            "invalid_annotation",
            "unreadable_annotation",
            "missing_media",
            "unsafe_path",
            "missing_media",
            "unsupported_extension",
            "empty_file",
        ]
    )
    rows = _rows(result)
    a = rows["2026-11-01/cam1/a.mp4"]
    assert a["arousal"] is None and a["gender"] == "female"  # bad field left empty, good field kept
    assert len(rows) == 3


def test_footage_needs_a_licence_in_params():
    from emopipe.config import SourceConfig

    with pytest.raises(ValueError, match="license"):
        SourceConfig("footage", "/x")


# --- issue 19: names, loops, numbers, encodings and markup -----------------------------------------------


def test_a_name_that_is_not_utf8_is_a_quarantine_row_naming_the_file(tmp_path):
    make_footage(tmp_path)
    good = (tmp_path / "2026-11-02" / "c.mov").read_bytes()
    with open(tmp_path.as_posix().encode() + b"/caf\xe9.mp4", "wb") as fh:
        fh.write(good + b"different bytes")
    result = footage.scan(tmp_path, run_id="t", license="x")
    assert len(_rows(result)) == 3
    [row] = result.quarantine.to_pylist()
    assert (row["reason"], row["path"]) == ("bad_name", "caf\\xe9.mp4")
    assert row["path"] in row["detail"] and row["detail"].isprintable()


def test_a_symlink_loop_is_a_row_not_a_traceback(tmp_path):
    make_footage(tmp_path)
    os.symlink("loop-b.mp4", tmp_path / "loop-a.mp4")
    os.symlink("loop-a.mp4", tmp_path / "loop-b.mp4")
    result = footage.scan(tmp_path, run_id="t", license="x")
    assert len(_rows(result)) == 3
    q = {r["path"]: r["reason"] for r in result.quarantine.to_pylist()}
    assert q == {"loop-a.mp4": "broken_symlink", "loop-b.mp4": "broken_symlink"}


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e999"])
def test_valence_and_arousal_must_be_finite_numbers(tmp_path, value):
    make_footage(tmp_path)
    sidecar = tmp_path / "2026-11-01" / "cam1" / "a.json"
    literal = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(value, value)  # JSON's own spelling
    sidecar.write_text(f'{{"valence": "{value}", "arousal": {literal}}}')
    result = footage.scan(tmp_path, run_id="t", license="x")
    a = _rows(result)["2026-11-01/cam1/a.mp4"]
    assert a["valence"] is None and a["arousal"] is None
    q = result.quarantine.to_pylist()
    assert [r["reason"] for r in q] == ["invalid_annotation", "invalid_annotation"]
    assert all("a.mp4" in r["detail"] for r in q)


def test_annotations_csv_with_a_utf8_bom_is_read(tmp_path):
    make_footage(tmp_path)
    table = tmp_path / "2026-11-01" / "cam1" / "annotations.csv"
    table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes().replace(b"\n", b"\r\n"))
    result = footage.scan(tmp_path, run_id="t", license="x")
    assert result.quarantine.num_rows == 0, result.quarantine.to_pylist()
    b = _rows(result)["2026-11-01/cam1/b.mkv"]
    assert (b["label"], b["gender"], b["arousal"]) == ("happiness", "male", 3.0)


@pytest.mark.parametrize("key", ["gender", "age_group"])
def test_demographics_outside_the_vocabulary_stay_data_never_markup(tmp_path, key):
    make_footage(tmp_path)
    script = "<script>alert(1)</script>"
    (tmp_path / "2026-11-02" / "c.json").write_text(json.dumps({key: script, "emotions": "happy"}))
    result = footage.scan(tmp_path, run_id="t", license="x")
    c = _rows(result)["2026-11-02/c.mov"]
    assert c[key] is None and c[f"{key}_source"] is None
    assert schemas.as_dict(c["native_fields"])[key] == script and c["label"] == "happiness"
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "invalid_annotation" and "c.mov" in row["detail"] and key in row["detail"]
    assert all(script not in str(v) for v in result.clips.column(key).to_pylist())


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("gender", " Female ", "female"),
        ("gender", "MAN", "male"),
        ("gender", "Non Binary", "non-binary"),
        ("age", "30 – 39", "30-39"),
        ("age_group", "65+", "65+"),
        ("age", 34, "25-34"),
    ],
)
def test_demographics_are_normalised_to_the_vocabulary(tmp_path, key, raw, expected):
    make_footage(tmp_path)
    (tmp_path / "2026-11-02" / "c.json").write_text(json.dumps({key: raw}))
    result = footage.scan(tmp_path, run_id="t", license="x")
    assert result.quarantine.num_rows == 0, result.quarantine.to_pylist()
    column = "gender" if key == "gender" else "age_group"
    c = _rows(result)["2026-11-02/c.mov"]
    assert (c[column], c[f"{column}_source"]) == (expected, "annotated")


def test_subject_ids_give_footage_subject_disjoint_folds(tmp_path):
    """A sidecar's subject (any of its names) is who is in the clip; the folds never split one subject."""
    from emopipe import splits

    for i in range(6):
        clip_media(tmp_path / "day" / f"s{i}.mp4", seed=600 + i)
        key = ("subject_id", "speaker", "participant_id")[i % 3]
        (tmp_path / "day" / f"s{i}.json").write_text(json.dumps({key: f"p{i % 3}", "emotions": "happy"}))
    clip_media(tmp_path / "day" / "bad.mp4", seed=700)
    (tmp_path / "day" / "bad.json").write_text(json.dumps({"subject_id": "<b>x</b>", "emotions": "sad"}))
    result = footage.scan(tmp_path, run_id="t", license="x")
    rows = _rows(result)
    assert {rows[f"day/s{i}.mp4"]["subject_id"] for i in range(6)} == {"footage:p0", "footage:p1", "footage:p2"}
    assert rows["day/bad.mp4"]["subject_id"] is None
    assert schemas.as_dict(rows["day/bad.mp4"]["native_fields"])["subject_id"] == "<b>x</b>"
    [problem] = result.quarantine.to_pylist()
    assert problem["reason"] == "invalid_annotation" and "bad.mp4" in problem["detail"]
    table = splits.build(result.clips, subject_folds=3, seed=0).to_pylist()
    subject = {r["clip_id"]: r["subject_id"] for r in result.clips.to_pylist()}
    assert {r["protocol"] for r in table} == {"subject_kfold"}
    for fold in (1, 2, 3):
        sides = {(subject[r["clip_id"]], r["split"]) for r in table if r["fold"] == fold}
        assert not {s for s, side in sides if side == "train"} & {s for s, side in sides if side == "test"}
    assert rows["day/bad.mp4"]["clip_id"] not in {r["clip_id"] for r in table}


def test_a_utf16_sidecar_with_its_byte_order_mark_is_read(tmp_path):
    make_footage(tmp_path)
    (tmp_path / "2026-11-02" / "c.json").write_bytes(json.dumps({"emotions": "sad"}).encode("utf-16"))
    result = footage.scan(tmp_path, run_id="t", license="x")
    assert result.quarantine.num_rows == 0, result.quarantine.to_pylist()
    assert _rows(result)["2026-11-02/c.mov"]["label"] == "sadness"


def test_a_folder_named_like_a_sidecar_is_a_row(tmp_path):
    make_footage(tmp_path)
    (tmp_path / "2026-11-02" / "c.json").mkdir()  # where c.mov's sidecar would be: e.g. an unzipped archive's folder
    result = footage.scan(tmp_path, run_id="t", license="x")
    rows = {(r["path"], r["reason"]) for r in result.quarantine.to_pylist()}
    assert ("2026-11-02/c.json", "not_a_file") in rows, rows
    assert "2026-11-02/c.mov" in _rows(result)  # the clip itself is kept, unannotated


def test_annotation_values_are_bounded_and_repeated_emotions_counted_once(tmp_path):
    from emopipe.sources.base import MAX_TEXT_CHARS

    """A sidecar may not grow every table: a 5 MB field is cut to MAX_TEXT_CHARS (with a row saying so), an
    emotion said 100,000 times is one emotion, and 17 distinct words are not an annotation of emotions."""
    make_footage(tmp_path)
    day = tmp_path / "2026-11-02"
    (day / "c.json").write_text(json.dumps({"emotions": ["happy"] * 100_000, "notes": "x" * 5_000_000}))
    result = footage.scan(tmp_path, run_id="t", license="x")
    c = _rows(result)["2026-11-02/c.mov"]
    assert (c["label"], c["native_label"]) == ("happiness", "happy")
    notes = schemas.as_dict(c["native_fields"])["notes"]
    assert len(notes) < MAX_TEXT_CHARS + 100 and notes.endswith("[5000000 characters, cut]")
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "invalid_annotation" and "notes" in row["detail"]
    (day / "c.json").write_text(json.dumps({"emotions": [f"word{i}" for i in range(footage.MAX_EMOTIONS + 1)]}))
    result = footage.scan(tmp_path, run_id="t", license="x")
    c = _rows(result)["2026-11-02/c.mov"]
    assert c["label"] is None and c["native_label"] is None
    assert [r["reason"] for r in result.quarantine.to_pylist()] == ["invalid_annotation"]
