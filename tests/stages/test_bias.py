"""Bias audits: label dependence on demographic groups and model parity across groups, on constructed corpora."""

import math

import pyarrow as pa
import pytest

from emopipe import schemas
from emopipe.config import Params, ValidateConfig
from emopipe.stages import bias

CLIP_COLUMNS = ("corpus", "clip_id", "label", "gender", "gender_source", "age_group", "age_group_source")
CLASSES = ("neutral", "happiness", "sadness", "anger")  # sadness and anger are negative emotions
BALANCED = {c: 10 for c in CLASSES}


def _rows(counts_by_group, corpus="dfew", attribute="gender", source="derived", start=0):
    """Clip rows: `counts_by_group` maps a group to {class: count}."""
    rows = []
    for group, counts in counts_by_group.items():
        for label, count in counts.items():
            for _ in range(count):
                i = start + len(rows)
                rows.append(
                    {"corpus": corpus, "clip_id": f"{corpus}:{i}", "label": label, attribute: group}
                    | {f"{attribute}_source": source}
                )
    return rows


def _clips(rows):
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in CLIP_COLUMNS})


def _by_attribute(table, corpus="dfew"):
    return {r["attribute"]: r for r in table.to_pylist() if r["corpus"] == corpus}


def test_balanced_corpus_shows_no_dependence():
    clips = _clips(_rows({"female": BALANCED, "male": BALANCED}))
    row = _by_attribute(bias.label_dependence(clips))["gender"]
    assert row["testable"] and row["note"] is None and row["n_clips"] == 80
    assert row["groups"] == ["female", "male"] and row["classes"] == list(CLASSES)
    assert row["cramers_v"] == pytest.approx(0.0, abs=1e-12) and row["p_value"] == pytest.approx(1.0)
    assert row["max_gap"] == 0.0 and row["max_gap_class"] is None and row["dof"] == 3
    assert row["min_cell_count"] == 10 and row["attribute_sources"] == "derived"


def test_anger_three_times_as_often_for_one_gender_is_found():
    female = {"anger": 30, "happiness": 24, "sadness": 23, "neutral": 23}
    male = {"anger": 10, "happiness": 30, "sadness": 30, "neutral": 30}
    clips = _clips(_rows({"male": male, "female": female}))
    row = _by_attribute(bias.label_dependence(clips))["gender"]
    cfg = ValidateConfig()
    assert row["testable"] and row["p_value"] < 0.01
    assert row["cramers_v"] > cfg.max_cramers_v.warning and row["max_gap"] > cfg.max_class_gap.warning
    assert row["cramers_v"] == pytest.approx(math.sqrt(row["chi2"] / 200))  # V for two groups: sqrt(chi2 / n)
    assert row["max_gap"] == pytest.approx(0.2) and row["max_gap_class"] == "anger"
    assert row["max_gap_groups"] == "female > male" and row["max_gap_shares"] == "0.30 vs 0.10"


def test_thin_group_is_untestable_and_not_merged():
    rows = _rows(
        {"18-30": {"anger": 49, "happiness": 49}, "31-45": {"anger": 49, "happiness": 49}}, attribute="age_group"
    )
    rows += _rows({"61+": {"anger": 4}}, attribute="age_group", start=len(rows))  # 4 of 200 clips: 2 %
    row = _by_attribute(bias.label_dependence(_clips(rows)))["age_group"]
    assert row["groups"] == ["18-30", "31-45", "61+"] and row["n_clips"] == 200
    assert not row["testable"] and "'61+' (4 clips)" in row["note"]
    assert row["chi2"] is None and row["p_value"] is None and row["cramers_v"] is None
    assert row["max_gap"] == pytest.approx(0.5) and row["max_gap_class"] == "happiness"  # descriptive, still set
    assert row["max_gap_groups"] == "18-30 > 61+" and row["max_gap_shares"] == "0.50 vs 0.00"
    assert row["min_cell_count"] == 1  # 4 clips x 98 / 200 happiness = 1.96 expected, rounded down


def test_low_expected_count_names_the_cell_and_unknowns_are_left_out():
    rows = _rows({"female": {"anger": 20, "disgust": 2}, "male": {"anger": 20, "disgust": 2}})
    rows.append({"corpus": "dfew", "clip_id": "dfew:x", "label": None, "gender": "female", "gender_source": "derived"})
    rows.append({"corpus": "dfew", "clip_id": "dfew:y", "label": "anger", "gender": None})
    row = _by_attribute(bias.label_dependence(_clips(rows)))["gender"]
    assert row["n_clips"] == 44 and not row["testable"] and "class 'disgust'" in row["note"]


def test_intersection_rows_where_both_attributes_are_known():
    rows = []
    for gender, age, n in (
        ("female", "18-30", 10),
        ("female", "31-45", 10),
        ("male", "18-30", 10),
        ("male", "31-45", 10),
    ):
        for i in range(n):
            rows.append(
                {"corpus": "dfew", "clip_id": f"dfew:{len(rows)}", "label": CLASSES[i % 2], "gender": gender}
                | {"gender_source": "derived", "age_group": age, "age_group_source": "estimated"}
            )
    rows += _rows({"female": BALANCED, "male": BALANCED}, corpus="ravdess")  # no age_group: no intersection
    table = bias.label_dependence(_clips(rows))
    dfew, ravdess = _by_attribute(table), _by_attribute(table, "ravdess")
    assert list(dfew) == ["gender", "age_group", "gender*age_group"] and list(ravdess) == ["gender"]
    cross = dfew["gender*age_group"]
    assert cross["groups"] == ["female|18-30", "female|31-45", "male|18-30", "male|31-45"]
    assert cross["attribute_sources"] == "derived,estimated" and cross["n_clips"] == 40 and cross["testable"]
    assert table.schema.equals(bias.LABEL_DEPENDENCE)


# --- model parity --------------------------------------------------------------------------------------------


def _model(clips, correct_by_group, labeler="m@1"):
    """Labels: per group, the first `correct` clips of each class right, the rest wrong (neutral, or an abstention
    for every third wrong clip; a wrong neutral clip is called anger)."""
    seen: dict[tuple[str, str], int] = {}
    rows = []
    for clip_id, group, truth in zip(*(clips[c].to_pylist() for c in ("clip_id", "gender", "label")), strict=True):
        k = seen[group, truth] = seen.get((group, truth), -1) + 1
        if k < correct_by_group[group]:
            pred = truth
        elif k % 3 == 0:
            pred = None
        else:
            pred = "neutral" if truth != "neutral" else "anger"
        rows.append({"clip_id": clip_id, "labeler": labeler, "label": pred})
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in ("clip_id", "labeler", "label")})


def _hand_fairness(clips, labels):
    """Selection rate, TPR and FPR of 'said negative' per gender, by plain counting."""
    negative = schemas.taxonomy().negative
    pred = dict(zip(labels["clip_id"].to_pylist(), labels["label"].to_pylist(), strict=True))
    stats = {}
    for group in ("female", "male"):
        pairs = [
            (t in negative, pred[c] in negative)
            for c, g, t in zip(*(clips[k].to_pylist() for k in ("clip_id", "gender", "label")), strict=True)
            if g == group
        ]
        pos = [s for t, s in pairs if t]
        neg = [s for t, s in pairs if not t]
        stats[group] = (sum(s for _, s in pairs) / len(pairs), sum(pos) / len(pos), sum(neg) / len(neg))
    return stats


@pytest.fixture
def parity_clips():
    return _clips(_rows({"female": BALANCED, "male": BALANCED}))


def test_model_with_half_the_recall_for_one_group(parity_clips):
    labels = _model(parity_clips, {"female": 8, "male": 4})
    table = bias.model_parity(parity_clips, labels, min_group_count=10)
    assert table.schema.equals(bias.MODEL_PARITY)
    rows = {r["corpus"]: r for r in table.to_pylist() if r["attribute"] == "gender"}
    assert set(rows) == {"ALL", "dfew"}
    row = rows["dfew"]
    assert row["testable"] and row["note"] is None and row["labeler"] == "m@1"
    assert schemas.as_dict(row["n_per_group"]) == {"female": 40, "male": 40}
    assert schemas.as_dict(row["recall_per_group"]) == pytest.approx({"female": 0.8, "male": 0.4})
    assert schemas.as_dict(row["accuracy_per_group"]) == pytest.approx({"female": 0.8, "male": 0.4})
    assert row["recall_ratio"] == pytest.approx(0.5) and row["recall_gap"] == pytest.approx(0.4)
    assert row["worst_group"] == "male"

    hand = _hand_fairness(parity_clips, labels)
    rates = {g: s[0] for g, s in hand.items()}
    assert schemas.as_dict(row["negative_rate_per_group"]) == pytest.approx(rates)
    assert row["demographic_parity_ratio"] == pytest.approx(min(rates.values()) / max(rates.values()))
    tpr_gap = abs(hand["female"][1] - hand["male"][1])
    fpr_gap = abs(hand["female"][2] - hand["male"][2])
    assert row["equalized_odds_difference"] == pytest.approx(max(tpr_gap, fpr_gap)) and tpr_gap > 0
    assert row["face_hit_rate_per_group"] is None and row["face_hit_ratio"] is None
    assert {k: v for k, v in rows["ALL"].items() if k != "corpus"} == {k: v for k, v in row.items() if k != "corpus"}


def test_fair_model_and_face_hit_rate(parity_clips):
    labels = _model(parity_clips, {"female": 8, "male": 8})
    ids, genders = parity_clips["clip_id"].to_pylist(), parity_clips["gender"].to_pylist()
    faces = [1.0 if g == "female" else (0.5 if i % 2 else None) for i, g in enumerate(genders)]
    extraction = pa.table({"clip_id": ids, "face_share": pa.array(faces, pa.float32())})
    row = bias.model_parity(parity_clips, labels, extraction=extraction).to_pylist()[-1]
    assert row["corpus"] == "dfew" and row["attribute"] == "gender"
    assert row["recall_ratio"] == pytest.approx(1.0) and row["equalized_odds_difference"] == pytest.approx(0.0)
    assert row["demographic_parity_ratio"] == pytest.approx(1.0)
    assert schemas.as_dict(row["face_hit_rate_per_group"]) == pytest.approx({"female": 1.0, "male": 0.5})
    assert row["face_hit_ratio"] == pytest.approx(0.5)


def test_thin_groups_make_parity_untestable(parity_clips):
    labels = _model(parity_clips, {"female": 8, "male": 4})
    row = bias.model_parity(parity_clips, labels, min_group_count=50).to_pylist()[-1]
    assert not row["testable"] and "'female' (40 clips)" in row["note"] and "'male' (40 clips)" in row["note"]
    assert row["recall_ratio"] is None and row["worst_group"] is None and row["demographic_parity_ratio"] is None
    # the per-group values are descriptive: still set when the row is not testable
    assert schemas.as_dict(row["recall_per_group"]) == pytest.approx({"female": 0.8, "male": 0.4})


def test_unlabelled_or_unknown_clips_are_left_out_and_duplicates_refused(parity_clips):
    extra = _clips(
        [
            {"corpus": "dfew", "clip_id": "dfew:u", "label": None, "gender": "female"},
            {"corpus": "dfew", "clip_id": "dfew:v", "label": "anger", "gender": None},
        ]
    )
    clips = pa.concat_tables([parity_clips, extra])
    labels = _model(parity_clips, {"female": 8, "male": 8})
    more = pa.table({"clip_id": ["dfew:u", "dfew:v"], "labeler": ["m@1"] * 2, "label": ["anger"] * 2})
    row = bias.model_parity(clips, pa.concat_tables([labels, more])).to_pylist()[-1]
    assert schemas.as_dict(row["n_per_group"]) == {"female": 40, "male": 40}
    with pytest.raises(ValueError, match="more than one row"):
        bias.model_parity(clips, pa.concat_tables([labels, labels]))


# --- the GX suites -------------------------------------------------------------------------------------------


def test_suites_block_known_biases_with_the_group_class_and_numbers(tmp_path):
    """`anger` three times as often for one gender at equal group sizes, and a model whose recall for one
    group is half the other's: both fail the gate at the default thresholds, naming what is biased."""
    from emopipe.quality.validate import validate_tables

    female = {"anger": 30, "happiness": 24, "sadness": 23, "neutral": 23}
    male = {"anger": 10, "happiness": 30, "sadness": 30, "neutral": 30}
    rows = _rows({"female": female, "male": male})
    thin = _rows({"18-30": {"anger": 20}, "61+": {"happiness": 3}}, corpus="mafw", attribute="age_group")
    clips = _clips(rows + thin)
    parity_clips = _clips(_rows({"female": BALANCED, "male": BALANCED}))
    cfg = ValidateConfig()  # the defaults params.yaml ships with
    tables = {
        "label_dependence": bias.label_dependence(clips),
        "model_parity": bias.model_parity(parity_clips, _model(parity_clips, {"female": 8, "male": 4})),
    }
    result = validate_tables(tables, Params(work_dir=tmp_path, validate=cfg), run_name="t")
    assert not result.success
    dependence = [m for m in result.blocking_failures if m.startswith("in dfew, the ")]
    assert len(dependence) == 2  # Cramér's V 0.25 > 0.2 and the anger gap 0.20 > 0.15; the thin mafw row untested
    assert dependence[0].startswith("in dfew, the human label depends on gender: Cramér's V is 0.25")
    assert dependence[1].startswith("in dfew, the share of anger differs by 20.0 percentage points between gender")
    for message in dependence:
        assert "anger" in message and "(female > male: 0.30 vs 0.10)" in message
    (parity,) = [m for m in result.blocking_failures if "of the best group's recall" in m]
    assert " on dfew: the worst gender group (male) gets 0.5 of the best group's recall" in parity

    balanced = bias.label_dependence(_clips(_rows({"female": BALANCED, "male": BALANCED})))
    fair = bias.model_parity(parity_clips, _model(parity_clips, {"female": 8, "male": 8}))
    params = Params(work_dir=tmp_path, validate=cfg)
    result = validate_tables({"label_dependence": balanced, "model_parity": fair}, params, run_name="t2")
    assert result.success and not result.warnings, result.summary()
