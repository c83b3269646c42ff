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


def _fold_clips(splits: dict[tuple[int, str], dict[str, int]]):
    """Clips of a 'dfew' corpus whose folds/splits hold the given class counts."""
    import pyarrow as pa

    rows, i = [], 0
    for (fold, split), counts in splits.items():
        for label, n in counts.items():
            for _ in range(n):
                rows.append({"corpus": "dfew", "label": label, "folds": [{"fold": fold, "split": split}]})
                i += 1
    folds = pa.list_(pa.struct([("fold", pa.int8()), ("split", pa.string())]))
    return pa.table(
        {
            "corpus": [r["corpus"] for r in rows],
            "label": [r["label"] for r in rows],
            "folds": pa.array([r["folds"] for r in rows], folds),
        }
    )


def test_fold_balance_flags_a_split_unlike_its_corpus_and_a_missing_class():
    even = dict.fromkeys(["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"], 10)  # DFEW's 7
    clips = _fold_clips({(1, "train"): even, (1, "test"): even, (2, "train"): even,
                         (2, "test"): {"happiness": 28, "sadness": 2, "anger": 0}})  # fmt: skip
    rows = {(r["fold"], r["split"]): r for r in balance.fold_balance(clips, balance.class_balance(clips)).to_pylist()}
    assert rows[(1, "test")]["imbalance_ratio"] == 1.0
    skewed = rows[(2, "test")]
    assert skewed["smallest_class"] == "anger" and skewed["min_share"] == 0 and skewed["imbalance_ratio"] is None
    assert skewed["divergence"] > 0.3 > rows[(1, "train")]["divergence"]  # blocking at the default threshold
    assert rows[(1, "train")]["n_labelled"] == 70


def test_gate_blocks_a_large_test_fold_unlike_its_corpus_but_not_a_tiny_one(tmp_path):
    from emopipe.config import Params
    from emopipe.quality.validate import validate_tables

    classes = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"]
    even = dict.fromkeys(classes, 30)
    skewed = {**dict.fromkeys(classes, 5), "happiness": 180}  # 210 clips, most of them happy
    clips = _fold_clips({(1, "train"): even, (1, "test"): even, (2, "train"): even, (2, "test"): skewed})
    table = balance.fold_balance(clips, balance.class_balance(clips))
    result = validate_tables({"fold_balance": table}, Params(work_dir=tmp_path), run_name="t")
    (blocked,) = result.blocking_failures
    assert blocked.startswith("the test split of fold 2 of ") and "it must be at most 0.3" in blocked
    tiny = _fold_clips({(1, "train"): even, (1, "test"): {**dict.fromkeys(classes, 1), "happiness": 6}})
    table = balance.fold_balance(tiny, balance.class_balance(tiny))
    assert validate_tables({"fold_balance": table}, Params(work_dir=tmp_path), run_name="t2").success
