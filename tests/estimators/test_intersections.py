"""Intersections: a bias that lives in one gender x age cell only, on a constructed corpus, is found by the
intersectional rows of label dependence and labeler parity (and by the gate), where the single attributes dilute it."""

import pyarrow as pa
import pytest

from emopipe.config import Params, ValidateConfig
from emopipe.stages import bias

GENDERS, AGES = ("female", "male"), ("18-30", "31-45", "46-60", "61+")
HOT = ("female", "61+")  # the one cell
COLUMNS = ("corpus", "clip_id", "label", "gender", "gender_source", "age_group", "age_group_source")


def _corpus(per_cell=100):
    """8 cells of `per_cell` clips, four classes in equal shares; in female|61+ anger is 41 % instead of 25 %."""
    rows = []
    for gender in GENDERS:
        for age in AGES:
            q = per_cell // 4
            counts = {"neutral": q, "happiness": q, "sadness": q, "anger": q}
            if (gender, age) == HOT:
                counts = {"neutral": 20, "happiness": 20, "sadness": 19, "anger": 41}
            for label, n in counts.items():
                rows += [
                    {"corpus": "dfew", "clip_id": f"dfew:{len(rows) + k}", "label": label, "gender": gender,
                     "gender_source": "annotated", "age_group": age, "age_group_source": "estimated"}
                    for k in range(n)
                ]  # fmt: skip
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS})


def _labeler(clips, wrong_in=HOT, labeler="m@1"):
    """Right on every clip but three in four of the `wrong_in` cell's, which it calls neutral (or anger)."""
    rows, seen = [], 0
    for clip_id, gender, age, truth in zip(*(clips[c].to_pylist() for c in ("clip_id", "gender", "age_group",
                                                                            "label")), strict=True):  # fmt: skip
        pred = truth
        if (gender, age) == wrong_in:
            seen += 1
            if seen % 4:
                pred = "neutral" if truth != "neutral" else "anger"
        rows.append({"clip_id": clip_id, "labeler": labeler, "label": pred})
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in ("clip_id", "labeler", "label")})


def test_label_dependence_in_one_cell_is_found_by_the_intersection_only():
    rows = {r["attribute"]: r for r in bias.label_dependence(_corpus()).to_pylist()}
    assert list(rows) == ["gender", "age_group", "gender*age_group"]
    cfg = ValidateConfig()
    gender, age, cross = rows["gender"], rows["age_group"], rows["gender*age_group"]
    # the single attributes: nothing significant, gaps below the warning level
    assert gender["p_value"] > 0.05 and gender["max_gap"] < cfg.max_class_gap.warning
    assert age["p_value"] > 0.05 and age["max_gap"] < cfg.max_class_gap.warning
    assert age["cell_p_value"] > 0.05  # 61+ against the other ages: diluted by the men of 61+
    # the intersection names the cell, its class and both shares, significant after correcting for 32 cells
    assert cross["testable"] and len(cross["groups"]) == 8
    assert (cross["cell_group"], cross["cell_class"]) == ("female|61+", "anger")
    assert cross["cell_share"] == pytest.approx(0.41) and cross["rest_share"] == pytest.approx(0.25)
    assert cross["cell_gap"] > cfg.max_class_gap.blocking and cross["cell_p_value"] < 0.05
    assert cross["p_value"] > 0.05  # the test of the whole 8 x 4 table does not see it
    assert cross["max_gap_class"] == "anger" and cross["max_gap_groups"].startswith("female|61+ > ")
    assert cross["attribute_sources"] == "annotated,estimated"


def test_labeler_parity_in_one_cell_is_found_by_the_intersection():
    clips = _corpus()
    table = bias.model_parity(clips, _labeler(clips), min_group_count=10)
    rows = {r["attribute"]: r for r in table.to_pylist() if r["corpus"] == "dfew"}
    cross = rows["gender*age_group"]
    assert cross["worst_group"] == "female|61+" and cross["recall_ratio"] < ValidateConfig().min_recall_ratio.blocking
    assert rows["gender"]["recall_ratio"] > cross["recall_ratio"] and rows["age_group"]["worst_group"] == "61+"
    assert cross["attribute_sources"] == "annotated,estimated" and rows["gender"]["attribute_sources"] == "annotated"


def test_the_gate_refuses_the_cell_bias_naming_the_cell(tmp_path):
    from emopipe.quality.validate import validate_tables

    clips = _corpus()
    tables = {
        "label_dependence": bias.label_dependence(clips),
        "model_parity": bias.model_parity(clips, _labeler(clips)),
    }
    result = validate_tables(tables, Params(work_dir=tmp_path), run_name="cell")
    assert not result.success
    (cell,) = [m for m in result.blocking_failures if "is labelled anger" in m]
    assert cell.startswith("in dfew, gender*age_group group female|61+ is labelled anger in 41.0% of its clips "
                           "against 25.0% for every other group")  # fmt: skip
    dependence = [m for m in result.blocking_failures + result.warnings if m.startswith("in dfew, ")]
    assert dependence and all("gender*age_group" in m for m in dependence)  # nothing on gender or age alone
    (parity,) = [m for m in result.blocking_failures if "of the best group's recall" in m and "(female|61+)" in m]
    assert "gender*age_group" in parity
