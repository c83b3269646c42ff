"""The gate in plain words: every expectation kind in quality/*.yaml has a sentence on what it guards, and each
failure of a real gate run reads as a sentence naming the corpus, class, groups and numbers, never as a GX call."""

from __future__ import annotations

import re

import pytest

from emopipe import schemas
from emopipe.config import ValidateConfig
from emopipe.quality import suites, words
from emopipe.quality.record import ExpectationRecord

GX_SYNTAX = re.compile(r"expect_[a-z_]+|\w+=\S|\{'|\[\{|_to_be_")


def _declared() -> list[ExpectationRecord]:
    """Every expectation the suites in quality/ declare (schema-derived ones included), as unrun records."""
    pytest.importorskip("great_expectations")
    out = []
    for path in sorted(suites.quality_dir().glob("*.yaml")):
        table = path.stem
        for level in suites.LEVELS:
            suite = suites.build_suite(table, level, schemas.load_schema(table), ValidateConfig())
            for exp in suite.expectations:
                cfg = exp.configuration
                kwargs = {k: v for k, v in cfg.kwargs.items() if k not in {"batch_id", "result_format"}}
                out.append(ExpectationRecord(table, level, cfg.type, kwargs, success=True))
    return out


def test_every_expectation_kind_in_quality_has_a_sentence_and_a_limit():
    declared = _declared()
    kinds = {r.expectation_type for r in declared}
    assert len(kinds) >= 14 and kinds <= set(words.GUARDS), kinds - set(words.GUARDS)
    for record in declared:
        guard = words.guards(record)
        assert guard.endswith(".") and not GX_SYNTAX.search(guard), (record.suite, record.expectation_type)
        assert words.limit(record) and not GX_SYNTAX.search(words.limit(record)), record.kwargs
    # the columns the auditors' suites single out get a sentence of their own, not the generic one
    specific = {(r.table, r.kwargs.get("column")) for r in declared if words.guards(r) not in words.GUARDS.values()}
    for key in [("class_balance", "share"), ("representation", "share"), ("label_dependence", "cramers_v"),
                ("model_parity", "recall_ratio"), ("fused_labels", "disagreement"), ("extraction", "face_share"),
                ("clips", "duration_s")]:  # fmt: skip
        assert key in specific, key


def test_limits_in_words():
    def rec(typ: str, **kwargs) -> ExpectationRecord:
        return ExpectationRecord("fold_balance", "warning", typ, kwargs, success=False)

    between = "expect_column_values_to_be_between"
    assert words.limit(rec(between, column="min_share", min_value=0.05)) == "at least 5.0%"
    cond = {"pass_through_filter": "n_labelled >= 100", "type": "pass_through"}  # how GX 1.x stores it
    assert words.limit(rec(between, column="divergence", max_value=0.3, row_condition=cond)) == (
        "at most 0.3 (only splits of 100 labelled clips or more)"
    )
    null = ExpectationRecord("extraction", "blocking", "expect_column_values_to_be_null", {"column": "error",
                             "mostly": 0.95}, success=False)  # fmt: skip
    assert words.limit(null) == "always empty, for at least 95.0% of the rows"
    assert words.limit(rec("expect_column_values_to_be_in_set", column="x", value_set=["a", "b"])) == "one of a, b"


@pytest.fixture(scope="module")
def failed(hostile_gate) -> dict[str, list[str]]:
    """suite -> the sentences of its failed expectations."""
    out: dict[str, list[str]] = {}
    for record in hostile_gate.result.records:
        if not record.success:
            out.setdefault(record.suite, []).append(words.describe(record))
    return out


def test_every_failure_of_a_real_gate_run_is_a_sentence(hostile_gate):
    result = hostile_gate.result
    failed = [r for r in result.records if not r.success]
    kinds = {r.expectation_type for r in failed}
    assert len(kinds) >= 12, kinds  # the run breaks nearly every kind; the rest are covered below
    for record in failed:
        text = words.describe(record)
        assert text and not GX_SYNTAX.search(text.replace(record.exception or "\0", "")), (record.raw, text)
        assert record.raw.startswith(f"{record.suite}: expect_")  # the GX form stays in the record
    assert set(result.blocking_failures + result.warnings) == {words.describe(r) for r in failed}


@pytest.mark.parametrize(
    ("suite", "sentence"),
    [
        ("fused_labels.warning", "the model disagrees with the human label on 168 of 192 clips of ravdess; "
         "it predicted happiness for all of them (human labels: anger 84, sadness 84)"),
        ("class_balance.blocking", "class disgust in ravdess: the share of the corpus's labelled clips is 0.0%; it "
         "must be at least 1.0%"),
        ("class_balance.warning", "2 of 3 classes have a share of the corpus's labelled clips below 5.0%: class fear "
         "in ravdess (3.0%), class disgust in ravdess (0.0%)"),
        ("balance_summary.warning", "in dfew the largest class (sadness) has 19 times the clips of the smallest "
         "(anger); it should be at most 10x"),
        ("balance_summary.blocking", "1 of 2 corpora has a class with no clips at all: ravdess (no disgust)"),
        ("fold_balance.blocking", "the test split of fold 2 of dfew: the distance of the class mix from the "
         "corpus's (Jensen-Shannon) is 0.41; it must be at most 0.3"),
        ("fold_balance.warning", "1 of 2 splits lacks a class entirely: the test split of fold 3 of dfew (no fear)"),
        ("representation.blocking", "gender group '<script>alert(1)</script>' in footage: the share of the clips "
         "whose value is known is 5.0%; it must be at least 10.0%"),
        ("representation.warning", "up to 12 clips of one corpus have no known value for a demographic attribute"),
        ("label_dependence.blocking", "in dfew, the human label depends on gender: Cramér's V is 0.25 and it must "
         "be at most 0.2; anger differs most (female > male: 0.30 vs 0.10)"),
        ("label_dependence.blocking", "in dfew, the share of anger differs by 20.0 percentage points between gender "
         "groups; it must be at most 15.0 percentage points (female > male: 0.30 vs 0.10)"),
        ("model_parity.blocking", "fer@1 on dfew: the worst gender group (male) gets 0.5 of the best group's "
         "recall; it must be at least 0.6"),
        ("model_parity.warning", "fer@1 on dfew: the demographic parity ratio of negative-emotion predictions "
         "between gender groups is 0.5; it should be at least 0.8"),
        ("agreement.warning", "fer@1 on ravdess: the agreement with the human labels (UAR) is 0.125; it should be "
         "at least 0.3"),
        ("extraction.blocking", "3 of 20 clips (15.0%) failed feature extraction (decode_failed 3); at most 5.0% "
         "may: clip ravdess:00, clip ravdess:01, clip ravdess:02"),
        ("extraction.warning", "on average a face was found in 10.0% of the sampled frames (mean at least 50.0%)"),
        ("near_duplicates.warning", "1 group of clips shares its first frame across corpora"),
        ("labels.blocking", "1 of 2 labels (50.0%) is a model failure (model_crashed 1); at most 5.0% may"),
        ("labels.blocking", "2 labels share their clip_id and labeler with another row: fer@1 on clip ravdess:00"),
        ("clips.blocking", "the clips table has 12 rows; it needs at least 20 rows"),
        ("clips.blocking", "clip footage:07: the duration is 0.05 s; it must be between 0.2 s and 600 s"),
        ("clips.blocking", "2 clips have the same content (sha256) as another clip of the same corpus: clip "
         "footage:02, clip footage:03"),
        ("clips.blocking", "1 of 11 clips has label outside the taxonomy"),
        ("clips.blocking", "1 of 12 clips has gender_source outside the vocabulary (one of annotated, derived, "
         "estimated): '<script>alert(1)</script>' (1)"),
        ("clips.blocking", "1 of 12 clips has a sha256 that is not 64 hexadecimal digits: clip footage:04 "
         "('not-a-checksum')"),
        ("clips.blocking", "column width of the clips table holds str values; its schema declares int"),
        ("clips.blocking", "the clips table has no column accent"),
        ("clips.blocking", "the clips table lacks the declared columns accent"),
        ("clips.blocking", "1 of 12 clips (8.3%) was never probed (has_audio is empty): clip footage:10"),
        ("clips.warning", "1 of 12 clips (8.3%) has no emotion label: clip footage:11"),
    ],
)  # fmt: skip
def test_failures_name_the_corpus_class_groups_and_numbers(failed, suite, sentence):
    assert any(m.startswith(sentence) for m in failed.get(suite, [])), failed.get(suite)


def test_a_check_that_could_not_run_says_why(failed):
    crashed = [m for m in failed["clips.blocking"] if "could not run" in m]
    assert any(m.startswith("clips: the check 'width at least 16 px' could not run: ") for m in crashed), crashed


def test_records_of_other_shapes_still_read_as_words():
    """A passed record, an expectation kind no sentence is written for, rows without id columns."""
    passed = ExpectationRecord("clips", "blocking", "expect_column_values_to_be_unique", {"column": "clip_id"}, True)
    assert words.describe(passed) == "clips: unique (passed)"
    odd = ExpectationRecord(
        "clips", "warning", "expect_column_kl_divergence_to_be_less_than", {"column": "fps"}, False, observed_value=3.5
    )
    assert words.describe(odd) == "clips: column kl divergence to be less than failed (observed 3.5)"
    bare = ExpectationRecord(
        "clips", "blocking", "expect_column_values_to_be_between", {"column": "fps", "min_value": 5.0}, False,
        element_count=10, unexpected_count=2, unexpected_rows=[{"row": 3}, {"row": 7}],
    )  # fmt: skip
    assert words.describe(bare) == "2 of 10 clips have a frame rate below 5 fps: row 3, row 7"
    assert words.number(10000.0, "seconds") == "10000 s" and words.number(0.000213) == "0.000213"
