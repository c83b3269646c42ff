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
    assert schemas.as_dict(b["native_fields"]) == {"speaker": "spk-2"}
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
