"""The instrument audit and the join of trusted estimates, on constructed clips and estimates (pure functions)."""

import pyarrow as pa
import pytest

from emopipe import schemas
from emopipe.config import ParamsError, ValidateConfig, parse_params
from emopipe.estimators import audit
from emopipe.stages import bias

ESTIMATES = schemas.load_schema("estimates")
COLUMNS = ("clip_id", "corpus", "label", "gender", "gender_source", "age_group", "age_group_source")
LABELS = ("neutral", "happiness", "sadness", "anger")
CFG = ValidateConfig(min_estimator_group_count=10)


def _clips(rows):
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in COLUMNS})


def _corpus(corpus, n, gender=None, source=None, start=0, **extra):
    return [
        {"clip_id": f"{corpus}:{start + i}", "corpus": corpus, "label": LABELS[i % 4], "gender": gender,
         "gender_source": source if gender else None, **extra}
        for i in range(n)
    ]  # fmt: skip


def _estimates(guesses, estimator="face@1", attribute="gender", kind="face"):
    """guesses: clip_id -> (value, confidence); value None is an abstention."""
    rows = [
        {"clip_id": c, "corpus": c.split(":")[0], "sha256": "0" * 64, "estimator": estimator, "kind": kind,
         "attribute": attribute, "value": v, "confidence": p, "abstain_reason": None if v else "no_face"}
        for c, (v, p) in guesses.items()
    ]  # fmt: skip
    return schemas.from_rows(rows, ESTIMATES)


def _ravdess():
    return _corpus("ravdess", 20, "female", "derived") + _corpus("ravdess", 20, "male", "derived", start=20)


def _row(table, corpus="ALL", group="ALL", estimator=None):
    rows = [r for r in table.to_pylist() if r["corpus"] == corpus and r["truth_group"] == group]
    return next(r for r in rows if estimator in (None, r["estimator"]))


def test_an_estimator_wrong_for_one_group_is_flagged_and_its_estimates_stay_out():
    rows = _ravdess() + _corpus("dfew", 10)
    clips = _clips(rows)
    guesses = {r["clip_id"]: ("male", 0.95) for r in rows}  # right for every man, wrong for half the women
    guesses |= {f"ravdess:{i}": ("female", 0.95) for i in range(10)}
    estimates = _estimates(guesses)
    table = audit.instrument_audit(clips, estimates, audit.estimator_facts(estimates), CFG)
    assert table.schema.equals(audit.INSTRUMENT_AUDIT)
    female, male, overall = _row(table, group="female"), _row(table, group="male"), _row(table)
    assert (female["n_answered"], female["error_rate"], female["passed"]) == (20, 0.5, False)
    assert "error rate 0.50 > 0.15 for true female" in female["note"]
    assert (male["error_rate"], male["passed"]) == (0.0, True)
    assert overall["accuracy"] == 0.75 and overall["passed"] is False and overall["truth_sources"] == "derived"
    assert schemas.as_dict(female["confusions"]) == {"female": 10, "male": 10}
    assert not any(table["trusted"].to_pylist())
    assert overall["verdict"].startswith("kept out of the bias tables") and "true female" in overall["verdict"]

    joined = audit.with_estimates(clips, estimates, table)
    assert joined["gender"].to_pylist() == clips["gender"].to_pylist()  # nothing filled in
    dependence = bias.label_dependence(joined)
    assert "dfew" not in dependence["corpus"].to_pylist()  # no estimated gender reaches the bias tables
    coverage = {r["corpus"]: r for r in audit.attribute_coverage(clips, estimates, table).to_pylist()}
    assert coverage["dfew"]["n_untrusted"] == 10 and coverage["dfew"]["share_unknown"] == 1.0
    assert coverage["dfew"]["estimators_kept_out"] == ["face@1"] and coverage["ravdess"]["n_given"] == 40


def test_a_trusted_estimator_fills_only_the_values_a_corpus_left_unknown():
    footage = [{"clip_id": "footage:a", "corpus": "footage", "label": "anger", "gender": "Female",
                "gender_source": "annotated"}]  # fmt: skip
    mafw = _corpus("mafw", 4, "female", "estimated")  # MAFW's own (model) gender: no truth, and never replaced
    rows = _ravdess() + _corpus("dfew", 10) + footage + mafw
    clips = _clips(rows)
    guesses = {r["clip_id"]: (r["gender"], 0.97) for r in _ravdess()}
    guesses |= {f"dfew:{i}": ("male", 0.95 if i < 8 else 0.5) for i in range(10)}  # 2 below the threshold
    guesses |= {"footage:a": ("male", 0.99)} | {r["clip_id"]: ("male", 0.99) for r in mafw}
    estimates = _estimates(guesses)
    table = audit.instrument_audit(clips, estimates, audit.estimator_facts(estimates), CFG)
    overall = _row(table)
    assert overall["trusted"] and overall["verdict"].startswith("trusted: accuracy 0.98 on 41 clips")
    assert overall["n_truth"] == 41 and overall["truth_sources"] == "annotated,derived"  # not MAFW's estimates
    assert _row(table, "footage", "female")["error_rate"] == 1.0 and not _row(table, "footage")["testable"]

    joined = {r["clip_id"]: r for r in audit.with_estimates(clips, estimates, table).to_pylist()}
    assert [joined[f"dfew:{i}"]["gender"] for i in range(10)] == ["male"] * 8 + [None] * 2
    assert {joined[f"dfew:{i}"]["gender_source"] for i in range(8)} == {"estimated"}
    assert (joined["footage:a"]["gender"], joined["footage:a"]["gender_source"]) == ("Female", "annotated")
    assert {(joined[r["clip_id"]]["gender"], joined[r["clip_id"]]["gender_source"]) for r in mafw} == {
        ("female", "estimated")
    }
    assert all(joined[r["clip_id"]]["gender"] == r["gender"] for r in _ravdess())
    coverage = {r["corpus"]: r for r in audit.attribute_coverage(clips, estimates, table).to_pylist()}
    dfew = coverage["dfew"]
    assert (dfew["n_estimated"], dfew["n_low_confidence"], dfew["n_unknown"]) == (8, 2, 2)
    assert dfew["share_unknown"] == pytest.approx(0.2) and schemas.as_dict(dfew["estimated_groups"]) == {"male": 8}
    assert coverage["mafw"]["n_given"] == 4 and coverage["mafw"]["given_sources"] == "estimated"

    facts = audit.rai_facts(table, audit.attribute_coverage(clips, estimates, table))
    assert facts == [
        {
            "attribute": "gender", "source": "estimated", "estimator": "face", "version": "1", "kind": "face",
            "min_confidence": 0.8, "used_in_bias_audit": True, "verdict": overall["verdict"],
            "checked_on": ["footage", "ravdess"], "n_checked": 41, "accuracy": pytest.approx(40 / 41),
            "coverage": 1.0, "error_rate_per_group": {"female": pytest.approx(1 / 21), "male": 0.0},
            "used": {c: {"n_clips": n, "n_estimated": e, "share_estimated": e / n, "share_unknown": u}
                     for c, n, e, u in (("dfew", 10, 8, 0.2), ("footage", 1, 0, 0.0), ("mafw", 4, 0, 0.0),
                                        ("ravdess", 40, 0, 0.0))},
            "share_unknown": {"dfew": 0.2, "footage": 0.0, "mafw": 0.0, "ravdess": 0.0},
        }
    ]  # fmt: skip


def test_a_value_it_estimates_must_have_been_checked_and_outside_values_are_counted_not_compared():
    known = [{**r, "age_group": "27", "age_group_source": "annotated"} for r in _corpus("footage", 20)]
    straddling = [
        {**r, "age_group": "30-39", "age_group_source": "annotated"} for r in _corpus("footage", 3, start=20)
    ]
    rows = known + straddling + _corpus("dfew", 5)
    guesses = {r["clip_id"]: ("18-30", 0.9) for r in known + straddling} | {
        f"dfew:{i}": ("61+", 0.9) for i in range(5)
    }
    estimates = _estimates(guesses, estimator="age@1", attribute="age_group", kind="audio")
    table = audit.instrument_audit(_clips(rows), estimates, audit.estimator_facts(estimates), CFG)
    overall = _row(table)
    assert overall["accuracy"] == 1.0 and overall["passed"] and overall["n_outside_vocabulary"] == 3
    assert not overall["trusted"]
    assert "it estimates 61+ for 5 clips, but only 0 clips of true 61+ could check it" in overall["verdict"]


def test_errors_that_depend_on_the_emotion_shown_keep_an_estimator_out():
    rows = _corpus("ravdess", 50, "female", "derived") + _corpus("ravdess", 50, "male", "derived", start=50)
    rows = [{**r, "label": "anger" if i % 10 == 0 else "neutral"} for i, r in enumerate(rows)]
    guesses = {r["clip_id"]: (r["gender"] if r["label"] != "anger" else "xx", 0.9) for r in rows}
    guesses = {c: ({"xx": {"female": "male", "male": "female"}[g]}.get(v, v), p)
               for (c, (v, p)), g in zip(guesses.items(), [r["gender"] for r in rows], strict=True)}  # fmt: skip
    estimates = _estimates(guesses)
    table = audit.instrument_audit(_clips(rows), estimates, audit.estimator_facts(estimates), CFG)
    overall = _row(table)
    # within the limits overall and for each true group ...
    assert overall["accuracy"] == 0.9 and _row(table, group="female")["error_rate"] == pytest.approx(0.1)
    assert (overall["max_label_error_label"], overall["max_label_error"]) == ("anger", 1.0)
    assert schemas.as_dict(overall["error_by_label"]) == {"neutral": 0.0, "anger": 1.0}
    assert not overall["trusted"] and "on clips labelled anger" in overall["verdict"]  # ... but not for anger


def test_nothing_to_check_it_against_means_not_trusted():
    rows = _corpus("dfew", 30)
    estimates = _estimates({r["clip_id"]: ("female", 0.99) for r in rows})
    table = audit.instrument_audit(_clips(rows), estimates, audit.estimator_facts(estimates), CFG)
    assert table.num_rows == 1 and not table["trusted"][0].as_py()  # the verdict row exists with nothing to score
    assert "no clip with an annotated or derived gender" in table["verdict"][0].as_py()


def test_of_two_trusted_estimators_the_more_confident_one_fills_a_clip():
    rows = _ravdess() + _corpus("dfew", 2)
    right = {r["clip_id"]: (r["gender"], 0.95) for r in _ravdess()}
    face = _estimates(right | {"dfew:0": ("female", 0.9), "dfew:1": ("female", 0.99)}, estimator="face@1")
    voice = _estimates(right | {"dfew:0": ("male", 0.97), "dfew:1": ("male", 0.85)}, "voice@1", kind="audio")
    estimates = pa.concat_tables([face, voice])
    stages = {"estimate_attributes": {"estimators": [{"estimator": "voice@1", "min_confidence": 0.9}]}}
    facts = audit.estimator_facts(estimates, stages)
    assert facts["voice@1"]["min_confidence"] == 0.9 and facts["face@1"]["min_confidence"] == 0.8
    joined, tables = audit.audit_tables(_clips(rows), estimates, stages, CFG)
    assert all(tables["instrument_audit"]["trusted"].to_pylist())
    assert joined["gender"].to_pylist()[-2:] == ["male", "female"]  # dfew:1's voice estimate is below its 0.9


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        ({"attribute": "ethnicity"}, "estimate_attributes.estimators[0].attribute: must be one of ['gender', "
         "'age_group', 'skin_tone'], got 'ethnicity'"),
        ({"label_map": {"Woman": "F"}}, "estimate_attributes.estimators[0].label_map: maps onto ['F'], not values of "
         "gender (female, male)"),
        ({"kind": "video"}, "estimate_attributes.estimators[0].kind: must be one of 'face' or 'audio', got 'video'"),
        ({"min_confidence": 1.5}, "estimate_attributes.estimators[0].min_confidence: must be <= 1.0, got 1.5"),
        ({"path": None}, "estimate_attributes.estimators[0].path: must be a string, got null"),
    ],
)  # fmt: skip
def test_a_wrong_estimator_setting_is_one_line_naming_the_key(tmp_path, spec, line):
    base = {"name": "g", "kind": "face", "path": "models/g", "attribute": "gender"}
    with pytest.raises(ParamsError) as err:
        parse_params({"estimate_attributes": {"estimators": [{**base, **spec}]}}, tmp_path)
    assert err.value.problems == [f"params: {line}"]


def test_an_estimated_only_attribute_may_be_audited(tmp_path):
    params = parse_params({"validate": {"bias_attributes": ["gender", "skin_tone", "gender*skin_tone"]}}, tmp_path)
    assert params.validate.bias_attributes == ("gender", "skin_tone", "gender*skin_tone")
    assert params.estimate_attributes.estimators == ()  # nothing is estimated by default
