"""The gate on the splits table: a subject or the same bytes in both parts of a fold blocks the version; a
near-duplicate across corpora is a warning; a clean protocol passes."""

from __future__ import annotations

from emopipe import schemas, splits
from emopipe.config import load_params
from emopipe.quality import validate
from tests.conftest import write_params
from tests.exports.test_splits import _clip, _sha, _splits, ravdess_clips


def test_the_gate_blocks_leaking_folds_and_names_them(tmp_path):
    params = load_params(write_params(tmp_path / "cfg"))
    clips = schemas.from_rows(
        [
            _clip("footage:a", "footage", "footage:p1"),
            _clip("footage:b", "footage", "footage:p1"),
            _clip("dfew:1", "dfew", frame="00ff00ff00ff00ff"),
            _clip("mafw:9", "mafw", frame="00ff00ff00ff00ff", sha=_sha("other")),
        ],
        schemas.CLIPS,
    )
    table = _splits([
        ("footage:a", "footage", "subject_kfold", 1, "train"), ("footage:b", "footage", "subject_kfold", 1, "test"),
        ("footage:b", "footage", "subject_kfold", 1, "train"),  # the same clip twice in one fold
        ("dfew:1", "dfew", "official_5fold", 1, "test"), ("mafw:9", "mafw", "official_5fold", 1, "train"),
    ])  # fmt: skip
    result = validate.validate_tables({"splits": table, "split_leaks": splits.leaks(table, clips)}, params, "t")
    assert not result.success
    blocking = "\n".join(result.blocking_failures)
    assert "subject footage:p1 in fold 1 of subject_kfold (footage) is on both its train and its test side" in blocking
    assert "clip footage:b" in blocking  # (clip, protocol, fold) must be unique
    warned = [r for r in result.records if r.level == "warning" and not r.success]
    assert [r.table for r in warned] == ["split_leaks"], result.warnings  # dfew:1 and mafw:9 share a first frame

    clean_clips = ravdess_clips(range(1, 9))
    clean = splits.build(clean_clips)
    ok = validate.validate_tables({"splits": clean, "split_leaks": splits.leaks(clean, clean_clips)}, params, "t2")
    assert ok.success, ok.summary()
    assert not [r for r in ok.records if r.table.startswith("split") and not r.success]
