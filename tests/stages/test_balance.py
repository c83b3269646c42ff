"""Class balance and demographic representation metrics."""

import pytest

from emopipe import schemas
from emopipe.stages import balance


def _clips(labels, genders=None):
    genders = genders or ["female"] * len(labels)
    rows = [
        {
            "clip_id": f"ravdess:{i}",
            "corpus": "ravdess",
            "native_id": str(i),
            "media_path": f"{i}.mp4",
            "media_form": "video",
            "sha256": f"{i:064x}",
            "size_bytes": 1,
            "label": lab,
            "license": "x",
            "gender": g,
            "gender_source": "derived" if g else None,
        }
        for i, (lab, g) in enumerate(zip(labels, genders, strict=True))
    ]
    return schemas.from_rows(rows, schemas.CLIPS)


def test_class_balance_lists_every_class_with_zero_counts():
    clips = _clips(["happiness"] * 3 + ["calm"])
    table = balance.class_balance(clips)
    counts = dict(zip(table["label"].to_pylist(), table["count"].to_pylist(), strict=True))
    assert len(counts) == 8 and counts["happiness"] == 3 and counts["calm"] == 1 and counts["disgust"] == 0
    assert sum(table["share"].to_pylist()) == pytest.approx(1.0)


def test_imbalance_ratio_is_undefined_when_a_class_is_empty():
    clips = _clips(["happiness"] * 3 + ["calm"])
    summary = balance.balance_summary(clips, balance.class_balance(clips)).to_pylist()[0]
    assert summary["imbalance_ratio"] is None and summary["min_share"] == 0.0
    full = _clips(list(schemas.taxonomy().classes("ravdess")) * 2 + ["anger"] * 4)
    summary = balance.balance_summary(full, balance.class_balance(full)).to_pylist()[0]
    assert summary["largest_class"] == "anger" and summary["imbalance_ratio"] == pytest.approx(3.0)


def test_representation_reports_unknowns_and_sources():
    clips = _clips(["calm"] * 5, ["female", "female", "male", None, "female"])
    rows = {r["group"]: r for r in balance.representation(clips).to_pylist()}
    assert set(rows) == {"female", "male"}
    assert rows["female"]["share"] == pytest.approx(0.75) and rows["female"]["count"] == 3
    assert rows["male"]["n_unknown"] == 1 and rows["male"]["sources"] == "derived"


def test_divergence_from_uniform_is_zero_when_balanced_and_flags_dfew_like_skew():
    from emopipe.stages.balance import divergence

    assert divergence([0.25] * 4) == pytest.approx(0.0, abs=1e-9)
    # DFEW's published single-label class totals: disgust is 1.2 % of the clips
    totals = {"happiness": 2445, "sadness": 1894, "neutral": 2669, "anger": 2173, "surprise": 1469, "disgust": 145,
              "fear": 902}  # fmt: skip
    shares = [v / sum(totals.values()) for v in totals.values()]
    assert 0.25 < divergence(shares) < 0.5  # a warning at the default thresholds, not a block
    assert divergence([1.0, 0.0]) == pytest.approx(divergence([0.0, 1.0]))
    assert divergence([1.0]) is None and divergence([0.0, 0.0]) is None
