"""Label fusion: the human label wins, a confident model label fills an unlabelled clip, nothing else does."""

import pyarrow as pa
import pytest

from emopipe.stages import fusion

M = "fer@abc123"
THRESHOLD = 0.7


def _clips(rows):
    """rows: (clip_id, human label or None); corpus ravdess."""
    return pa.table(
        {
            "clip_id": pa.array([r[0] for r in rows], pa.string()),
            "corpus": pa.array(["ravdess"] * len(rows), pa.string()),
            "label": pa.array([r[1] for r in rows], pa.string()),
        }
    )


def _labels(rows):
    """rows: (clip_id, labeler, model label or None, confidence or None)."""
    return pa.table(
        {
            "clip_id": pa.array([r[0] for r in rows], pa.string()),
            "labeler": pa.array([r[1] for r in rows], pa.string()),
            "label": pa.array([r[2] for r in rows], pa.string()),
            "confidence": pa.array([r[3] for r in rows], pa.float32()),
        }
    )


def _fuse(clips, labels, labeler=M, min_confidence=THRESHOLD):
    out = fusion.fuse(_clips(clips), _labels(labels), labeler, min_confidence)
    assert out.schema.equals(fusion.FUSED_LABELS, check_metadata=True)
    return {r["clip_id"]: r for r in out.to_pylist()}


def test_human_label_kept_when_the_model_disagrees():
    row = _fuse([("c1", "anger")], [("c1", M, "sadness", 0.99)])["c1"]
    assert (row["train_label"], row["train_label_source"], row["disagreement"]) == ("anger", "human", True)
    assert (row["human_label"], row["model_label"]) == ("anger", "sadness")
    assert row["model_confidence"] == pytest.approx(0.99)


def test_agreement_gives_no_disagreement():
    row = _fuse([("c1", "anger")], [("c1", M, "anger", 0.2)])["c1"]
    assert (row["train_label"], row["train_label_source"], row["disagreement"]) == ("anger", "human", False)


def test_model_fills_above_the_threshold():
    row = _fuse([("c1", None)], [("c1", M, "fear", 0.9)])["c1"]
    assert (row["train_label"], row["train_label_source"], row["disagreement"]) == ("fear", "model", None)


def test_model_below_the_threshold_leaves_no_label():
    row = _fuse([("c1", None)], [("c1", M, "fear", 0.69)])["c1"]
    assert (row["train_label"], row["train_label_source"], row["disagreement"]) == (None, "none", None)
    assert row["model_label"] == "fear"  # still reported


def test_exactly_at_the_threshold_fills():
    # 0.7 is stored as float32 0.699999988..., below the float64 0.7: the comparison must be made at float32
    row = _fuse([("c1", None)], [("c1", M, "fear", 0.7)])["c1"]
    assert (row["train_label"], row["train_label_source"]) == ("fear", "model")


def test_null_confidence_fills_only_at_a_threshold_of_zero_or_below():
    clips, labels = [("c1", None), ("c2", "anger")], [("c1", M, "happiness", None), ("c2", M, "sadness", None)]
    for threshold, expected in ((THRESHOLD, (None, "none")), (1e-6, (None, "none")), (0.0, ("happiness", "model"))):
        rows = _fuse(clips, labels, min_confidence=threshold)
        assert (rows["c1"]["train_label"], rows["c1"]["train_label_source"]) == expected
        assert rows["c1"]["model_confidence"] is None
        assert (rows["c2"]["train_label"], rows["c2"]["disagreement"]) == (
            "anger",
            True,
        )  # the human label is untouched


def test_abstention_never_fills():
    row = _fuse([("c1", None)], [("c1", M, None, None)], min_confidence=0.0)["c1"]
    assert (row["train_label"], row["train_label_source"], row["disagreement"]) == (None, "none", None)


def test_clip_without_a_model_row():
    clips = [("c2", None), ("c1", "anger"), ("c3", "anger")]
    labels = [("c3", M, "anger", 0.9), ("c1", "other@1", "sadness", 0.99), ("zz", M, "fear", 0.99)]
    out = fusion.fuse(_clips(clips), _labels(labels), M, 0.0)
    assert out["clip_id"].to_pylist() == ["c1", "c2", "c3"]  # one row per clip, sorted; "zz" is not a clip
    rows = {r["clip_id"]: r for r in out.to_pylist()}
    # c1 only has another labeler's row; c2 has no row at all
    assert (rows["c1"]["model_label"], rows["c1"]["model_confidence"]) == (None, None)
    assert (rows["c1"]["train_label"], rows["c1"]["train_label_source"], rows["c1"]["disagreement"]) == (
        "anger",
        "human",
        None,
    )
    assert (rows["c2"]["model_label"], rows["c2"]["model_confidence"]) == (None, None)
    assert (rows["c2"]["train_label"], rows["c2"]["train_label_source"]) == (None, "none")


def test_bare_name_resolves_to_its_only_version():
    labels = [("c1", M, "fear", 0.9), ("c1", "other@1", "anger", 0.9)]
    assert _fuse([("c1", None)], labels, labeler="fer")["c1"]["train_label"] == "fear"


def test_bare_name_matching_several_versions_is_ambiguous():
    labels = [("c1", M, "fear", 0.9), ("c1", "fer@def456", "anger", 0.9)]
    with pytest.raises(ValueError, match="ambiguous") as err:
        _fuse([("c1", None)], labels, labeler="fer")
    assert "fer@abc123" in str(err.value) and "fer@def456" in str(err.value)
    assert _fuse([("c1", None)], labels, labeler="fer@def456")["c1"]["train_label"] == "anger"  # the full name works


def test_unknown_labeler_names_the_known_ones():
    labels = [("c1", M, "fear", 0.9), ("c1", "other@1", "anger", 0.9)]
    for name in ("nobody", "fer@999"):
        with pytest.raises(ValueError, match="unknown labeler") as err:
            _fuse([("c1", None)], labels, labeler=name)
        assert "fer@abc123" in str(err.value) and "other@1" in str(err.value)


def test_duplicate_rows_are_rejected():
    with pytest.raises(ValueError, match="more than one row"):
        _fuse([("c1", None)], [("c1", M, "fear", 0.9), ("c1", M, "anger", 0.9)])
    with pytest.raises(ValueError, match="duplicate clip_id"):
        _fuse([("c1", None), ("c1", None)], [("c1", M, "fear", 0.9)])
