"""The gate's expectations in plain words: what each one guards, its limit, and what a failure means.

`guards(record)` is one sentence on what an expectation protects (by expectation type, sharpened for the columns
the suites in quality/ check); `limit(record)` says its threshold; `describe(record)` turns a failed record into a
sentence that names the corpus, class, groups and numbers, e.g. "the model disagrees with the human label on 168
of 192 clips; it predicted happiness for all of them". The raw Great Expectations form stays in `record.raw`.

Everything here is a pure function of an `ExpectationRecord` (emopipe.quality.record): no GX import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emopipe.quality.record import ExpectationRecord

MAX_NAMED = 3  # rows named in one sentence; the validation page lists more

# One sentence per expectation type used in quality/*.yaml (and the ones derived from schemas/): what it guards.
GUARDS: dict[str, str] = {
    "expect_table_columns_to_match_set": "Every column the table's schema declares is present, so code that reads "
    "the dataset finds what it expects.",
    "expect_column_to_exist": "The column is there, so readers and the checks that follow can rely on it.",
    "expect_column_values_to_be_of_type": "The column holds the type its schema declares, so a file written by "
    "another tool cannot drift unnoticed.",
    "expect_column_values_to_not_be_null": "No row lacks this value.",
    "expect_table_row_count_to_be_between": "The table holds a plausible number of rows, not a truncated or empty "
    "dataset.",
    "expect_column_values_to_be_unique": "No two rows share this identifier, so nothing is counted or trained on "
    "twice.",
    "expect_compound_columns_to_be_unique": "No two rows share this combination of values, so the same item is not "
    "stored twice.",
    "expect_column_values_to_match_regex": "Every value has the expected form.",
    "expect_column_values_to_be_in_set": "Every value comes from the declared vocabulary, so nothing unknown reaches "
    "training or the reports.",
    "expect_column_values_to_be_between": "Every value lies within its limits.",
    "expect_column_values_to_be_null": "Rows carry no value here (an error code) beyond the tolerated share.",
    "expect_column_mean_to_be_between": "The column's average stays within its limits.",
    "expect_column_max_to_be_between": "The column's largest value stays within its limits.",
    "expect_table_row_count_to_equal": "The table holds exactly the expected number of rows.",
}

# Sharper sentences for the columns the suites in quality/ check: (table, column or None, type or None) -> text.
_COLUMN_GUARDS: dict[tuple[str, str | None, str | None], str] = {
    ("clips", None, "expect_table_row_count_to_be_between"): "The dataset has enough clips to be worth publishing.",
    ("clips", "clip_id", None): "Each clip has one identity, so it is counted, split and labelled once.",
    ("clips", "sha256", "expect_compound_columns_to_be_unique"): "The same bytes do not enter one corpus twice "
    "(a copy would sit in train and test at once).",
    ("clips", "sha256", "expect_column_values_to_match_regex"): "Every clip carries a real SHA-256 checksum, so "
    "versions, deduplication and forgetting can find it.",
    ("clips", "label", "expect_column_values_to_be_in_set"): "Every emotion label belongs to the canonical taxonomy "
    "(schemas/taxonomy.yaml).",
    ("clips", "label", "expect_column_values_to_not_be_null"): "Clips without an emotion label are kept but flagged: "
    "they cannot train or evaluate a classifier.",
    ("clips", "gender_source", None): "Every gender value says where it came from (annotated, derived or estimated).",
    ("clips", "age_group_source", None): "Every age group says where it came from (annotated, derived or estimated).",
    ("clips", "media_form", None): "Every clip is a video, an audio file or a frame folder, as readers expect.",
    ("clips", "duration_s", None): "No clip is too short to be a sample or implausibly long.",
    ("clips", "fps", None): "Every video has a frame rate that decoders and frame sampling can work with.",
    ("clips", "width", None): "Every video is large enough to hold a face.",
    ("clips", "height", None): "Every video is large enough to hold a face.",
    ("clips", "size_bytes", None): "No clip is an empty file.",
    ("clips", "error", None): "No clip that failed to probe is published as a sample.",
    ("clips", "has_audio", "expect_column_values_to_not_be_null"): "Every clip went through the media probe.",
    ("clips", "has_video", "expect_column_values_to_not_be_null"): "Every clip went through the media probe.",
    (
        "class_balance",
        "share",
        None,
    ): "No emotion class is so rare that a model cannot learn it or be evaluated on it.",
    ("balance_summary", "imbalance_ratio", "expect_column_values_to_not_be_null"): "No class of a corpus is empty.",
    ("balance_summary", "imbalance_ratio", "expect_column_values_to_be_between"): "The largest class does not dwarf "
    "the smallest, which would let a model score well by ignoring it.",
    ("balance_summary", "divergence", None): "A corpus's class mix stays close enough to an even mix to train on.",
    ("fold_balance", "divergence", None): "Each split's class mix resembles its corpus's, so per-fold scores are "
    "comparable.",
    ("fold_balance", "min_share", None): "No class all but vanishes from a split of a protocol.",
    ("fold_balance", "imbalance_ratio", None): "No class is missing from a split of a protocol.",
    ("representation", "share", None): "Every demographic group is represented well enough to be measured, and no "
    "group is merged away.",
    ("representation", "n_unknown", None): "Every clip has a known value for each demographic attribute.",
    ("near_duplicates", None, "expect_table_row_count_to_equal"): "No footage appears in two corpora, where "
    "combining them would leak test clips into training.",
    ("extraction", "clip_id", None): "Every clip has exactly one features row.",
    ("extraction", "error", None): "Only a small share of clips fails feature extraction.",
    ("extraction", "n_log_mel_bins", None): "Every log-mel spectrogram has the 80 bins training code expects.",
    ("extraction", "n_egemaps", None): "Every clip with audio has the 88 eGeMAPS functionals.",
    ("extraction", "face_share", "expect_column_values_to_be_between"): "Face shares are proportions (0 to 1).",
    ("extraction", "face_share", "expect_column_mean_to_be_between"): "The face detector finds faces in most sampled "
    "frames; if not, it is missing faces or the footage has none.",
    ("labels", "clip_id", None): "One label per clip and labeler.",
    ("labels", "label", None): "Model labels belong to the canonical taxonomy.",
    ("labels", "abstain_reason", None): "Every abstention gives a known reason.",
    ("labels", "error", None): "The model itself fails on only a small share of clips.",
    ("labels", "confidence", None): "Confidences are probabilities (0 to 1).",
    ("agreement", "war", None): "Accuracy (WAR) is a proportion.",
    ("agreement", "uar", "expect_column_values_to_be_between"): "A labeler's agreement with the human labels (UAR) "
    "is high enough to trust its labels.",
    ("agreement", "coverage", None): "A labeler answers for most of the human-labelled clips.",
    ("fused_labels", "clip_id", None): "One training label per clip.",
    ("split_leaks", "kind", None): "No subject and no file is on both the train and the test side of one fold.",
    ("split_leaks", None, "expect_table_row_count_to_equal"): "No test clip of one corpus is a near-duplicate of a "
    "train clip of another in the same fold (emopipe export leaves such train clips out).",
    ("fused_labels", "train_label_source", None): "Every training label says where it came from "
    "(human, model or none).",
    ("fused_labels", "train_label", None): "Training labels belong to the canonical taxonomy.",
    ("fused_labels", "disagreement", None): "Shows where the model and the human label disagree.",
    ("label_dependence", "cramers_v", None): "The human label does not depend strongly on a demographic group "
    "(a group portrayed or annotated with a different mix of emotions).",
    ("label_dependence", "max_gap", None): "No class's share differs much between demographic groups.",
    ("label_dependence", "cell_gap", None): "No single group (such as one gender x age cell) is given a class much "
    "more or less often than every other group together.",
    ("model_parity", "recall_ratio", None): "The model serves every demographic group with similar recall (the "
    "four-fifths rule).",
    ("model_parity", "demographic_parity_ratio", None): "Every group is given a negative emotion at a similar rate.",
    ("model_parity", "equalized_odds_difference", None): "Given the human label, the model errs alike for every "
    "group.",
    ("model_parity", "face_hit_ratio", None): "The face detector finds every group's faces at a similar rate.",
    ("estimates", "estimator", None): "One estimate per clip and attribute estimator.",
    ("estimates", "kind", None): "Every estimator reads faces or audio, as declared.",
    ("estimates", "abstain_reason", None): "Every abstention of an estimator gives a known reason.",
    ("estimates", "confidence", None): "Confidences are probabilities (0 to 1).",
    ("estimates", "error", None): "The estimator's model itself fails on only a small share of clips.",
    ("instrument_audit", "truth_group", None): "One row per estimator, corpus and true group.",
    ("instrument_audit", "coverage", None): "Coverage is a proportion.",
    ("instrument_audit", "accuracy", "expect_column_values_to_be_between"): "An attribute estimator whose estimates "
    "are used is right often enough where the attribute is known (its instrument audit).",
    ("instrument_audit", "error_rate", None): "An attribute estimator whose estimates are used errs rarely for every "
    "true group, so its errors do not fall on one group.",
    ("instrument_audit", "max_label_error", None): "An attribute estimator whose estimates are used errs rarely for "
    "every emotion shown, so its errors cannot fake a dependence of the label on the group.",
    ("instrument_audit", "trusted", None): "Every attribute estimator passed its instrument audit; one that did not "
    "is kept out of the bias tables.",
    ("attribute_coverage", "attribute", None): "One coverage row per corpus and estimated attribute.",
    ("attribute_coverage", "share_unknown", None): "The share left unknown is a proportion.",
    ("attribute_coverage", "n_unknown", None): "Unknown clips are counted, never negative.",
}

# How a row of each table is named in a sentence.
_UNITS = {
    "clips": ("clip", "clips"),
    "extraction": ("clip", "clips"),
    "fused_labels": ("clip", "clips"),
    "labels": ("label", "labels"),
    "class_balance": ("class", "classes"),
    "balance_summary": ("corpus", "corpora"),
    "fold_balance": ("split", "splits"),
    "representation": ("group", "groups"),
    "label_dependence": ("attribute", "attributes"),
    "model_parity": ("comparison", "comparisons"),
    "agreement": ("labeler", "labelers"),
    "near_duplicates": ("group of clips", "groups of clips"),
    "estimates": ("estimate", "estimates"),
    "instrument_audit": ("check", "checks"),
    "attribute_coverage": ("attribute", "attributes"),
}

# (table, column) -> (what the value is, how to print it: share | ratio | int | seconds | fps | num)
_MEASURES: dict[tuple[str, str], tuple[str, str]] = {
    ("class_balance", "share"): ("share of the corpus's labelled clips", "share"),
    ("balance_summary", "imbalance_ratio"): ("largest class / smallest class", "ratio"),
    ("balance_summary", "divergence"): ("distance of the class mix from an even mix (Jensen-Shannon)", "num"),
    ("fold_balance", "divergence"): ("distance of the class mix from the corpus's (Jensen-Shannon)", "num"),
    ("fold_balance", "min_share"): ("share of the smallest class", "share"),
    ("representation", "share"): ("share of the clips whose value is known", "share"),
    ("representation", "n_unknown"): ("clips with no known value", "int"),
    ("label_dependence", "cramers_v"): ("association of the human label with the group (Cramér's V)", "num"),
    ("label_dependence", "max_gap"): ("largest difference of a class's share between groups", "points"),
    ("label_dependence", "cell_gap"): ("difference of a class's share between one group and the rest", "points"),
    ("model_parity", "recall_ratio"): ("worst group's recall / best group's", "num"),
    ("model_parity", "demographic_parity_ratio"): ("demographic parity ratio of negative-emotion predictions", "num"),
    ("model_parity", "equalized_odds_difference"): (
        "equalized odds difference of negative-emotion predictions",
        "num",
    ),
    ("model_parity", "face_hit_ratio"): ("face detection rate of the worst group / the best group's", "num"),
    ("agreement", "coverage"): ("share of the human-labelled clips it answered", "share"),
    ("agreement", "uar"): ("agreement with the human labels (UAR)", "num"),
    ("agreement", "war"): ("accuracy against the human labels (WAR)", "num"),
    ("clips", "duration_s"): ("duration", "seconds"),
    ("clips", "fps"): ("frame rate", "fps"),
    ("clips", "width"): ("width", "pixels"),
    ("clips", "height"): ("height", "pixels"),
    ("clips", "size_bytes"): ("size", "bytes"),
    ("extraction", "face_share"): ("share of sampled frames with a face", "share"),
    ("labels", "confidence"): ("confidence", "num"),
    ("estimates", "confidence"): ("confidence", "num"),
    ("instrument_audit", "accuracy"): ("share estimated right where the attribute is known", "share"),
    ("instrument_audit", "coverage"): ("share of the clips with a known value it answered", "share"),
    ("instrument_audit", "error_rate"): ("share estimated wrong among the clips of that true group", "share"),
    ("instrument_audit", "max_label_error"): ("share estimated wrong among the clips of one emotion label", "share"),
    ("attribute_coverage", "share_unknown"): ("share of clips left unknown", "share"),
    ("attribute_coverage", "n_unknown"): ("clips left unknown", "int"),
}

# (table, column) -> what rows with a value (to_be_null) or without one (to_not_be_null) are, in words.
_NULL_PHRASES = {
    ("clips", "error"): ("carries a probe error", "carry a probe error"),
    ("extraction", "error"): ("failed feature extraction", "failed feature extraction"),
    ("labels", "error"): ("is a model failure", "are model failures"),
    ("estimates", "error"): ("is a model failure", "are model failures"),
}
_NOT_NULL_PHRASES = {
    ("clips", "label"): ("has no emotion label", "have no emotion label"),
    ("clips", "has_audio"): ("was never probed (has_audio is empty)", "were never probed (has_audio is empty)"),
    ("clips", "has_video"): ("was never probed (has_video is empty)", "were never probed (has_video is empty)"),
    ("balance_summary", "imbalance_ratio"): ("has a class with no clips at all", "have a class with no clips at all"),
    ("fold_balance", "imbalance_ratio"): ("lacks a class entirely", "lack a class entirely"),
}
_CONDITIONS = {
    "testable == True and p_value < 0.05": "only where the test is valid and the dependence significant (p < 0.05)",
    "testable == True and cell_p_value < 0.05": "only where the test is valid and the cell differs significantly "
    "from the rest (p < 0.05 after correcting for the number of cells)",
    "n_labelled >= 100": "only splits of 100 labelled clips or more",
    "trusted == True and testable == True and truth_group == 'ALL'": "only trusted estimators, overall rows with "
    "enough answered clips",
    "trusted == True and testable == True and truth_group != 'ALL'": "only trusted estimators, group rows with "
    "enough answered clips",
    "trusted == True and testable == True": "only trusted estimators, rows with enough answered clips",
    "corpus == 'ALL' and truth_group == 'ALL'": "one row per estimator",
    "testable == True and truth_group == 'ALL'": "only overall rows with enough answered clips",
    "testable == True and truth_group != 'ALL'": "only group rows with enough answered clips",
}


# ---------------------------------------------------------------------------------------------------- formatting


def _plural(n: int, unit: tuple[str, str]) -> str:
    return f"{n} {unit[0] if n == 1 else unit[1]}"


def number(value: Any, kind: str = "num") -> str:
    """A number as a person reads it: shares as percentages, ratios with an "x", counts as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "points":
        return f"{100 * value:.1f} percentage points"
    unit = {"ratio": "x", "seconds": " s", "fps": " fps", "pixels": " px", "bytes": " bytes"}.get(kind, "")
    return _digits(value) + unit


def _digits(value: float) -> str:
    """Three significant digits, never in exponent form: 10000 stays "10000", 0.000213 is "0.000213"."""
    if math.isinf(value):
        return "infinite" if value > 0 else "minus infinite"
    if float(value).is_integer():
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 1e-4 else f"{value:.2e}"


def _value(value: Any) -> str:
    """A data value quoted in a sentence: strings in quotes, nulls as 'empty'."""
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    return number(value)


def _listing(items: list[str], total: int | None = None) -> str:
    shown = items[:MAX_NAMED]
    more = (total if total is not None else len(items)) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def value_kind(record: ExpectationRecord) -> str:
    return _MEASURES.get((record.table, str(record.kwargs.get("column"))), ("", "num"))[1]


def _condition(record: ExpectationRecord) -> str | None:
    cond = record.kwargs.get("row_condition")
    if isinstance(cond, dict):  # GX 1.x stores a pandas condition as {"pass_through_filter": ..., "type": ...}
        cond = cond.get("pass_through_filter") or cond.get("condition")
    if not cond:
        return None
    return _CONDITIONS.get(str(cond), f"only rows where {cond}")


def limit(record: ExpectationRecord) -> str:
    """The expectation's threshold in words, e.g. "at least 1.0%", "one of human, model, none", "unique"."""
    kw, typ, kind = record.kwargs, record.expectation_type, value_kind(record)
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if typ == "expect_column_values_to_be_of_type":
        text = f"of type {kw.get('type_')}"
    elif typ == "expect_column_to_exist":
        text = "present"
    elif typ == "expect_table_columns_to_match_set":
        text = "has the columns " + ", ".join(str(c) for c in kw.get("column_set") or [])
    elif typ in ("expect_column_values_to_not_be_null",):
        text = "never empty"
    elif typ == "expect_column_values_to_be_null":
        text = "always empty"
    elif typ in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        text = "unique"
    elif typ == "expect_column_values_to_match_regex":
        text = f"matches {kw.get('regex')}"
    elif typ == "expect_column_values_to_be_in_set":
        values = [str(v) for v in kw.get("value_set") or []]
        text = "one of " + (", ".join(values[:12]) + (", …" if len(values) > 12 else "") if values else "nothing")
    elif typ == "expect_table_row_count_to_equal":
        text = f"exactly {number(kw.get('value'), 'int')} rows"
    elif lo is not None and hi is not None:
        text = f"between {number(lo, kind)} and {number(hi, kind)}"
    elif lo is not None:
        text = f"at least {number(lo, kind)}"
    elif hi is not None:
        text = f"at most {number(hi, kind)}"
    else:
        text = "any value"
    if typ == "expect_table_row_count_to_be_between" and (lo is not None or hi is not None):
        text += " rows"
    if typ == "expect_column_mean_to_be_between":
        text = f"mean {text}"
    if typ == "expect_column_max_to_be_between":
        text = f"largest value {text}"
    if (mostly := kw.get("mostly")) is not None and mostly < 1:
        text += f", for at least {number(mostly, 'share')} of the rows"
    if cond := _condition(record):
        text += f" ({cond})"
    return text


def guards(record: ExpectationRecord) -> str:
    """One sentence on what the expectation protects."""
    column = record.kwargs.get("column")
    if column is None and record.kwargs.get("column_list"):
        column = record.kwargs["column_list"][-1]
    for key in (
        (record.table, column, record.expectation_type),
        (record.table, column, None),
        (record.table, None, record.expectation_type),
    ):
        if key in _COLUMN_GUARDS:
            return _COLUMN_GUARDS[key]
    return GUARDS.get(record.expectation_type, "A check declared in quality/" + record.table + ".yaml.")


# ---------------------------------------------------------------------------------------------------- subjects


def _subject(table: str, row: dict[str, Any]) -> str:
    """A row of a metric or per-clip table named in words, from the id columns its failure carries."""
    g = row.get

    def has(*keys: str) -> bool:
        return all(g(k) is not None for k in keys)

    if table == "class_balance" and has("corpus", "label"):
        return f"class {g('label')} in {g('corpus')}"
    if table == "fold_balance" and has("corpus", "fold", "split"):
        return f"the {g('split')} split of fold {g('fold')} of {g('corpus')}"
    if table == "representation" and has("corpus", "attribute", "group"):
        return f"{g('attribute')} group '{g('group')}' in {g('corpus')}"
    if table == "label_dependence" and has("corpus", "attribute"):
        return f"{g('corpus')} by {g('attribute')}"
    if table == "model_parity" and has("corpus", "labeler", "attribute"):
        return f"{g('labeler')} on {g('corpus')} by {g('attribute')}"
    if table == "agreement" and has("corpus", "labeler"):
        return f"{g('labeler')} on {g('corpus')}"
    if table == "labels" and has("clip_id", "labeler"):
        return f"{g('labeler')} on clip {g('clip_id')}"
    if table == "estimates" and has("clip_id", "estimator"):
        return f"{g('estimator')} on clip {g('clip_id')}"
    if table == "instrument_audit" and has("estimator", "corpus", "truth_group"):
        where = "every corpus" if g("corpus") == "ALL" else g("corpus")
        group = "all clips" if g("truth_group") == "ALL" else f"true {g('truth_group')}"
        return f"estimator {g('estimator')} on {where} ({group})"
    if table == "split_leaks" and has("protocol", "fold", "corpus", "kind", "key"):
        what = {"subject": "subject", "sha256": "file (sha256)", "near_duplicate": "near-duplicate (frame hash)"}
        return f"{what.get(g('kind'), g('kind'))} {g('key')} in fold {g('fold')} of {g('protocol')} ({g('corpus')})"
    if table == "attribute_coverage" and has("corpus", "attribute"):
        return f"{g('attribute')} in {g('corpus')}"
    if has("clip_id"):
        return f"clip {g('clip_id')}"
    if table == "balance_summary" and has("corpus"):
        return str(g("corpus"))
    if has("frame_hash"):
        return f"frame hash {g('frame_hash')}"
    if has("row"):
        return f"row {g('row')}"
    return " ".join(f"{k} {v}" for k, v in row.items()) or "a row"


def _named(record: ExpectationRecord, value_column: str | None = None, kind: str = "num") -> str:
    """The first rows of a failure, each named and, when given, with its value of `value_column`."""
    items = []
    for row in record.unexpected_rows:
        text = _subject(record.table, row)
        if value_column is not None and value_column in row:
            text += f" ({number(row[value_column], kind)})" if kind != "value" else f" ({_value(row[value_column])})"
        items.append(text)
    if not items and record.unexpected_values:
        items = [_value(v) for v in record.unexpected_values]
    return _listing(items, record.unexpected_count)


def _counts(record: ExpectationRecord, column: str) -> list[tuple[Any, int]]:
    """(value, count) over every unexpected row (the record's value_counts), most frequent first."""
    return [(v, int(n)) for v, n in record.value_counts.get(column) or []]


def _of(record: ExpectationRecord, denominator: int | None) -> str:
    """ "3 of 20 clips" (or "3 clips" without a denominator)."""
    unit = _UNITS.get(record.table, ("row", "rows"))
    n = _n(record)
    if denominator:
        return f"{n} of {denominator} {unit[0] if denominator == 1 else unit[1]}"
    return _plural(n, unit)


def _n(record: ExpectationRecord) -> int:
    return record.unexpected_count if record.unexpected_count is not None else len(record.unexpected_rows)


def _verb(record: ExpectationRecord, singular: str, plural: str) -> str:
    """The verb agreeing with the count of unexpected rows: "1 of 12 clips has", "2 of 12 clips have"."""
    return singular if _n(record) == 1 else plural


# ---------------------------------------------------------------------------------------------------- failures


def _fused_disagreement(record: ExpectationRecord) -> str:
    """ "the model disagrees with the human label on 168 of 192 clips; it predicted happiness for all of them"."""
    n = _n(record)
    both = (record.element_count or 0) - (record.missing_count or 0)  # disagreement is null unless both labels exist
    text = (
        f"the model disagrees with the human label on {n} of {_plural(both, ('clip', 'clips'))}"
        if both
        else (f"the model disagrees with the human label on {_plural(n, ('clip', 'clips'))}")
    )
    corpora = _counts(record, "corpus")
    if len(corpora) == 1:
        text += f" of {corpora[0][0]}"
    predicted = _counts(record, "model_label")
    if len(predicted) == 1:
        text += f"; it predicted {predicted[0][0]} for {'all of them' if n > 1 else 'it'}"
    elif predicted:
        top, count = predicted[0]
        text += f"; it predicted {top} for {count} of them"
    human = _counts(record, "human_label")
    if human and len(human) <= MAX_NAMED:
        text += " (human labels: " + ", ".join(f"{label} {count}" for label, count in human) + ")"
    return text


def _must(record: ExpectationRecord) -> str:
    """ "it must be at most 0.2" (blocking) or "it should be ..." (warning), without the row condition."""
    verb = "must" if record.level == "blocking" else "should"
    return f"it {verb} be {limit(record).split(' (only')[0]}"


def _dependence(record: ExpectationRecord, row: dict[str, Any]) -> str:
    column = record.kwargs.get("column")
    if column == "cramers_v":
        text = (
            f"in {row.get('corpus')}, the human label depends on {row.get('attribute')}: Cramér's V is "
            f"{number(row.get('cramers_v'))} and {_must(record)}"
        )
        if row.get("max_gap_class"):
            text += f"; {row.get('max_gap_class')} differs most"
    elif column == "cell_gap":
        share, rest = row.get("cell_share"), row.get("rest_share")
        return (
            f"in {row.get('corpus')}, {row.get('attribute')} group {row.get('cell_group')} is labelled "
            f"{row.get('cell_class')} in {number(share, 'share')} of its clips against {number(rest, 'share')} for "
            f"every other group (p {number(row.get('cell_p_value'))} after correcting for the number of cells); "
            f"the difference is {number(row.get('cell_gap'), 'points')} and {_must(record)}"
        )
    else:
        text = (
            f"in {row.get('corpus')}, the share of {row.get('max_gap_class') or 'a class'} differs by "
            f"{number(row.get('max_gap'), 'points')} between {row.get('attribute')} groups; {_must(record)}"
        )
    if row.get("max_gap_groups"):
        text += f" ({row.get('max_gap_groups')}: {row.get('max_gap_shares')})"
    return text


def _parity(record: ExpectationRecord, row: dict[str, Any]) -> str:
    column = str(record.kwargs.get("column"))
    who = f"{row.get('labeler')} on {row.get('corpus')}"
    worst = row.get("worst_group")
    if column == "recall_ratio":
        text = f"{who}: the worst {row.get('attribute')} group"
        text += f" ({worst})" if worst else ""
        return text + f" gets {number(row.get(column))} of the best group's recall; {_must(record)}"
    if column == "face_hit_ratio":
        return (
            f"{who}: the face detector finds the faces of one {row.get('attribute')} group at "
            f"{number(row.get(column))} times the rate of another; {_must(record)}"
        )
    noun = _MEASURES[("model_parity", column)][0] if ("model_parity", column) in _MEASURES else column
    return f"{who}: the {noun} between {row.get('attribute')} groups is {number(row.get(column))}; {_must(record)}"


def _imbalance(record: ExpectationRecord, row: dict[str, Any]) -> str:
    text = f"in {row.get('corpus')} the largest class"
    text += f" ({row['largest_class']})" if row.get("largest_class") else ""
    text += f" has {number(row.get('imbalance_ratio'))} times the clips of the smallest"
    text += f" ({row['smallest_class']})" if row.get("smallest_class") else ""
    return f"{text}; {_must(record)}"


def _between(record: ExpectationRecord) -> str:
    column = str(record.kwargs.get("column"))
    noun, kind = _MEASURES.get((record.table, column), (column, "num"))
    rows = record.unexpected_rows
    special = {"label_dependence": _dependence, "model_parity": _parity}
    if record.table == "balance_summary" and column == "imbalance_ratio":
        special["balance_summary"] = _imbalance
    if record.table in special and rows:
        return "; ".join(special[record.table](record, r) for r in rows[:MAX_NAMED]) + _more(record)
    if len(rows) == 1 and _n(record) == 1:
        row = rows[0]
        return f"{_subject(record.table, row)}: the {noun} is {number(row.get(column), kind)}; {_must(record)}"
    return f"{_of(record, record.element_count)} {_verb(record, 'has', 'have')} {_a(noun)} {_breach(record)}: " + (
        _named(record, column, kind)
    )


def _a(noun: str) -> str:
    """`noun` with its indefinite article ("an agreement", "a share")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _breach(record: ExpectationRecord) -> str:
    """ "below 5.0%", "above 0.3" or "outside 0.2 s to 600 s": which side of the limit a value fell on."""
    kind, lo, hi = value_kind(record), record.kwargs.get("min_value"), record.kwargs.get("max_value")
    if lo is not None and hi is not None:
        return f"outside {number(lo, kind)} to {number(hi, kind)}"
    return f"below {number(lo, kind)}" if lo is not None else f"above {number(hi, kind)}"


def _more(record: ExpectationRecord) -> str:
    more = _n(record) - min(len(record.unexpected_rows), MAX_NAMED)
    return f"; and {more} more" if more > 0 else ""


def _in_set(record: ExpectationRecord) -> str:
    column = str(record.kwargs.get("column"))
    if record.table == "fused_labels" and column == "disagreement":
        return _fused_disagreement(record)
    if record.table == "instrument_audit" and column == "trusted" and record.unexpected_rows:
        return "; ".join(
            f"{_subject(record.table, r)} failed its instrument audit and its estimates stay out of the bias tables"
            + (f" ({r['verdict'].removeprefix('kept out of the bias tables: ')})" if r.get("verdict") else "")
            for r in record.unexpected_rows[:MAX_NAMED]
        ) + _more(record)
    if record.table == "split_leaks" and column == "kind" and record.unexpected_rows:
        return (
            "a protocol leaks: "
            + "; ".join(
                f"{_subject(record.table, r)} is on both its train and its test side"
                for r in record.unexpected_rows[:MAX_NAMED]
            )  # fmt: skip
            + _more(record)
        )
    known = (record.element_count or 0) - (record.missing_count or 0)
    values = _counts(record, column)
    found = ", ".join(f"{_value(v)} ({c})" for v, c in values[:MAX_NAMED]) if values else _named(record)
    vocabulary = "the taxonomy" if column == "label" else "the vocabulary"
    text = (
        f"{_of(record, known or None)} {_verb(record, 'has', 'have')} {column} outside {vocabulary} "
        f"({limit(record)}): {found}"
    )
    corpora = _counts(record, "corpus")
    if len(corpora) == 1:
        text += f", {'in' if _n(record) == 1 else 'all in'} {corpora[0][0]}"
    return text


def _null(record: ExpectationRecord, expect_null: bool) -> str:
    column = str(record.kwargs.get("column"))
    table = record.table
    phrases = _NULL_PHRASES if expect_null else _NOT_NULL_PHRASES
    default = (
        (f"has a value in {column}", f"have a value in {column}")
        if expect_null
        else (f"has no {column}", f"have no {column}")
    )
    what = _verb(record, *phrases.get((table, column), default))
    n, total = _n(record), record.element_count
    per_clip = table not in {"fold_balance", "balance_summary"}  # a share of 2 corpora says nothing
    text = _of(record, total) + (f" ({number(n / total, 'share')})" if total and per_clip else "") + f" {what}"
    if expect_null and (reasons := _counts(record, column)):
        text += " (" + ", ".join(f"{v} {c}" for v, c in reasons[:MAX_NAMED]) + ")"
    mostly = record.kwargs.get("mostly")
    if expect_null and mostly is not None and mostly < 1:
        text += f"; at most {number(1 - mostly, 'share')} may"
    if table in {"fold_balance", "balance_summary"}:
        rows = [f"{_subject(table, r)} (no {r['smallest_class']})" if r.get("smallest_class") else _subject(table, r)
                for r in record.unexpected_rows]  # fmt: skip
        return text + ": " + _listing(rows, n)
    return text + ": " + _named(record) if record.unexpected_rows or record.unexpected_values else text


def _unique(record: ExpectationRecord) -> str:
    columns = record.kwargs.get("column_list") or [record.kwargs.get("column")]
    what = " and ".join(str(c) for c in columns)
    text = f"{_of(record, None)} share their {what} with another row"
    if record.table == "clips" and "sha256" in columns:
        text = f"{_of(record, None)} have the same content (sha256) as another clip of the same corpus"
    return text + ": " + _named(record)


def _regex(record: ExpectationRecord) -> str:
    column = str(record.kwargs.get("column"))
    has = _verb(record, "has", "have")
    what = (
        "that is not 64 hexadecimal digits"
        if (record.table, column) == ("clips", "sha256")
        else (f"that does not match {record.kwargs.get('regex')}")
    )
    return f"{_of(record, record.element_count)} {has} {_a(column)} {what}: " + _named(record, column, "value")


def _table_level(record: ExpectationRecord) -> str:
    typ, kw, obs, table = record.expectation_type, record.kwargs, record.observed_value, record.table
    column = kw.get("column")
    if typ == "expect_column_to_exist":
        return f"the {table} table has no column {column}"
    if typ == "expect_table_columns_to_match_set":
        missing = ((record.details or {}).get("mismatched") or {}).get("missing")
        if not missing and isinstance(obs, list):
            missing = [c for c in kw.get("column_set") or [] if c not in obs]
        return f"the {table} table lacks the declared columns {', '.join(str(c) for c in missing or [])}".rstrip()
    if typ == "expect_column_values_to_be_of_type":
        return f"column {column} of the {table} table holds {obs} values; its schema declares {kw.get('type_')}"
    if typ == "expect_table_row_count_to_be_between":
        return f"the {table} table has {number(obs, 'int')} rows; it needs {limit(record)}"
    if typ == "expect_table_row_count_to_equal":
        if table == "near_duplicates":
            n = int(obs or 0)
            return (
                f"{_plural(n, _UNITS['near_duplicates'])} {'shares its' if n == 1 else 'share their'} first frame "
                "across corpora: combining those corpora would leak test clips into training"
            )
        return f"the {table} table has {number(obs, 'int')} rows, not {number(kw.get('value'), 'int')}"
    if typ == "expect_column_mean_to_be_between":
        if table == "extraction" and column == "face_share":
            return (
                f"on average a face was found in {number(obs, 'share')} of the sampled frames ({limit(record)}): the "
                "face detector misses faces, or the footage has none"
            )
        noun, kind = _MEASURES.get((table, str(column)), (str(column), "num"))
        return f"the mean {noun} of the {table} table is {number(obs, kind)} ({limit(record)})"
    if typ == "expect_column_max_to_be_between":
        if table == "representation" and column == "n_unknown":
            return (
                f"up to {number(obs, 'int')} clips of one corpus have no known value for a demographic attribute; "
                "they are counted as unknown, never guessed (see the representation table)"
            )
        noun, kind = _MEASURES.get((table, str(column)), (str(column), "num"))
        return f"the largest {noun} in the {table} table is {number(obs, kind)} ({limit(record)})"
    return ""


_FAILURES: dict[str, Callable[[ExpectationRecord], str]] = {
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_be_null": lambda r: _null(r, True),
    "expect_column_values_to_not_be_null": lambda r: _null(r, False),
    "expect_column_values_to_be_unique": _unique,
    "expect_compound_columns_to_be_unique": _unique,
    "expect_column_values_to_match_regex": _regex,
}


def describe(record: ExpectationRecord) -> str:
    """A failed (or errored) expectation as a sentence for a person; a passed one as what it checked.

    Names the table's rows the way a person names them (the corpus, class, fold, group, labeler, clip) with their
    numbers and the limit they broke; never the GX call. The raw form stays in `record.raw`.
    """
    if record.exception:
        what = f"{record.kwargs['column']} {limit(record)}" if record.kwargs.get("column") else limit(record)
        return f"{record.table}: the check '{what}' could not run: {_one_line(record.exception)}"
    if record.success:
        return f"{record.table}: {limit(record)} (passed)"
    handler = _FAILURES.get(record.expectation_type)
    text = handler(record) if handler else _table_level(record)
    if not text:  # an expectation type no sentence is written for yet: still no GX call syntax
        text = f"{record.table}: {record.expectation_type.removeprefix('expect_').replace('_', ' ')} failed"
        if record.observed_value is not None:
            text += f" (observed {_value(record.observed_value)})"
    return text


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:300]
