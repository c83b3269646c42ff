"""Bias audits as pure functions: does the human label depend on a demographic group, and does a model serve
every group alike.

`label_dependence` (clips -> label_dependence) tests, per corpus and attribute, whether the human label is
independent of the group: a chi-square test of the group x class table (scipy), Cramér's V as the effect size, and
the largest gap in a class's share between two groups as a plain-language description. `model_parity`
(clips, labels[, extraction] -> model_parity) compares a labeler's per-group recall (UAR), accuracy and rate of
negative-emotion predictions with fairlearn's `MetricFrame`, and adds fairlearn's demographic parity ratio and
equalized odds difference on "predicted a negative emotion" against "the human label is a negative emotion"; with
an extraction table it also compares the face detector's hit rate across groups.

Both look at single attributes and at the intersection of each pair (`gender*age_group`, groups such as
`female|18-30`), so a bias that lives in one cell (older women only) is seen where the single attributes dilute it.
Every row says where its attribute values came from (`attribute_sources`: annotated, derived, estimated), so a row
over attributes a model estimated (emopipe.estimators, joined in only for clips the corpus leaves unknown and only
from estimators that passed their instrument audit) says so. Groups are never merged: a group too thin for the
statistics makes its row untestable, with a note naming it; the statistics are then null while the descriptive
per-group numbers are still reported. No statistic is computed by hand: the maths is scipy's, scikit-learn's and
fairlearn's.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from emopipe import schemas
from emopipe.stages.agreement import ABSTAIN, ALL

LABEL_DEPENDENCE = schemas.load_schema("label_dependence")
MODEL_PARITY = schemas.load_schema("model_parity")
DEMOGRAPHICS = ("gender", "age_group")
CROSS = "*"  # joins attribute names into an intersectional attribute: gender*age_group
JOIN = "|"  # joins group values into an intersectional group: female|18-30
UNRECORDED = "unrecorded"  # the source of an attribute value whose source column is null or absent

# Per attribute (single or intersection): each clip's group (None when unknown) and the sources of its value.
Attributes = dict[str, tuple[list[str | None], list[frozenset[str]]]]


def _require(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    if missing := [c for c in columns if c not in table.column_names]:
        raise ValueError(f"{name}: missing columns {missing}")


def _ordered(classes: set[str]) -> list[str]:
    """Classes in canonical order, any non-canonical ones sorted after."""
    canonical = schemas.taxonomy().canonical
    return [c for c in canonical if c in classes] + sorted(classes - set(canonical))


def _attributes(clips: pa.Table, attributes: tuple[str, ...]) -> Attributes:
    """Each attribute present in `clips`, then the intersection of each pair of them, in that order.

    Args:
        clips: the clips table; `<attribute>_source` columns are read where present.
        attributes: demographic column names; names not in `clips` are skipped.
    """
    out: Attributes = {}
    n = clips.num_rows
    for name in attributes:
        if name not in clips.column_names:
            continue
        values = clips[name].to_pylist()
        src = clips[f"{name}_source"].to_pylist() if f"{name}_source" in clips.column_names else [None] * n
        out[name] = (
            values,
            [frozenset({s or UNRECORDED}) if v is not None else frozenset() for v, s in zip(values, src, strict=True)],
        )
    for a, b in itertools.combinations(list(out), 2):
        (va, sa), (vb, sb) = out[a], out[b]
        values = [f"{x}{JOIN}{y}" if x is not None and y is not None else None for x, y in zip(va, vb, strict=True)]
        out[f"{a}{CROSS}{b}"] = (values, [x | y for x, y in zip(sa, sb, strict=True)])
    return out


def _nullable(value: float) -> float | None:
    """A float, or None for NaN (fairlearn and scipy answer NaN where a metric is undefined)."""
    value = float(value)
    return None if math.isnan(value) else value


def _dependence_row(
    corpus: str, attribute: str, sources: set[str], groups_of: list[str], labels: list[str], *, min_cell_count: int
) -> dict[str, Any]:
    """One label_dependence row.

    Args:
        corpus: the corpus.
        attribute: the attribute name.
        sources: sources of the attribute values counted.
        groups_of: each counted clip's group.
        labels: each counted clip's human label.
        min_cell_count: smallest expected cell count for the chi-square test.
    """
    from scipy.stats import chi2_contingency
    from scipy.stats.contingency import association, expected_freq

    groups, classes = sorted(set(groups_of)), _ordered(set(labels))
    counts = Counter(zip(groups_of, labels, strict=True))
    observed = np.array([[counts[g, c] for c in classes] for g in groups], dtype=np.int64)
    expected = expected_freq(observed)
    per_group = observed.sum(axis=1)

    reasons = []
    if len(groups) < 2:
        reasons.append(f"one group only ({groups[0]!r})")
    if len(classes) < 2:
        reasons.append(f"one class only ({classes[0]!r})")
    thin = [(g, int(n)) for g, n in zip(groups, per_group, strict=True) if n < min_cell_count]
    if thin:
        listed = ", ".join(f"{g!r} ({n} clips)" for g, n in thin)
        reasons.append(f"groups with fewer than {min_cell_count} clips, not merged: {listed}")
    elif not reasons and expected.min() < min_cell_count:
        i, j = np.unravel_index(int(np.argmin(expected)), expected.shape)
        reasons.append(
            f"expected count {expected[i, j]:.2f} < {min_cell_count} for group {groups[i]!r}, class {classes[j]!r}"
        )
    row: dict[str, Any] = {
        "corpus": corpus,
        "attribute": attribute,
        "attribute_sources": ",".join(sorted(sources)),
        "n_clips": len(labels),
        "groups": groups,
        "classes": classes,
        "min_cell_count": math.floor(float(expected.min())),
        "testable": not reasons,
        "note": "; ".join(reasons) or None,
    }
    if not reasons:
        chi2, p_value, dof, _ = chi2_contingency(observed, correction=False)
        row |= {
            "chi2": float(chi2),
            "dof": int(dof),
            "p_value": float(p_value),
            "cramers_v": _nullable(association(observed, method="cramer")),
        }
        if len(groups) > 2:  # with two groups the one cell against the rest is the whole comparison (max_gap)
            row |= _deviating_cell(observed, groups, classes)
    if len(groups) >= 2:
        shares = observed / per_group[:, None]
        gaps = shares.max(axis=0) - shares.min(axis=0)
        j = int(np.argmax(gaps))  # first largest: ties go to the class first in canonical order
        row["max_gap"] = float(gaps[j])
        if gaps[j] > 0:
            hi, lo = int(np.argmax(shares[:, j])), int(np.argmin(shares[:, j]))
            row |= {
                "max_gap_class": classes[j],
                "max_gap_groups": f"{groups[hi]} > {groups[lo]}",
                "max_gap_shares": f"{shares[hi, j]:.2f} vs {shares[lo, j]:.2f}",
            }
    return row


def _deviating_cell(observed: np.ndarray, groups: list[str], classes: list[str]) -> dict[str, Any]:
    """The (group, class) cell whose class share differs most significantly from every other group's together.

    A bias that lives in one group of many (one gender x age cell) barely moves the chi-square test of the whole
    table, whose degrees of freedom grow with every cell. Each cell is tested on its own instead: the 2 x 2 table of
    (this group, the other groups) x (this class, the other classes), Pearson's chi-square without continuity
    correction (scipy; the square of the cell's adjusted standardized residual), its p-value multiplied by the
    number of cells tested (Bonferroni), so a corpus with many cells does not find one by chance.

    Args:
        observed: the group x class counts.
        groups: the row names.
        classes: the column names.
    """
    from scipy.stats import chi2_contingency

    n_cells = observed.size
    total, per_group, per_class = int(observed.sum()), observed.sum(axis=1), observed.sum(axis=0)
    best: tuple[float, float, int, int] | None = None  # (p, -|gap|, i, j): smallest p, then the largest gap
    for i, j in itertools.product(range(len(groups)), range(len(classes))):
        a = int(observed[i, j])
        table = np.array([[a, per_group[i] - a], [per_class[j] - a, total - per_group[i] - per_class[j] + a]])
        if (table.sum(axis=1) == 0).any() or (table.sum(axis=0) == 0).any():
            continue
        _, p, _, _ = chi2_contingency(table, correction=False)
        gap = a / per_group[i] - (per_class[j] - a) / (total - per_group[i])
        key = (min(1.0, float(p) * n_cells), -abs(gap), i, j)
        best = key if best is None or key < best else best
    if best is None:
        return {}
    p, _, i, j = best
    rest = total - int(per_group[i])
    return {
        "cell_group": groups[i],
        "cell_class": classes[j],
        "cell_share": float(observed[i, j] / per_group[i]),
        "rest_share": float((per_class[j] - observed[i, j]) / rest),
        "cell_gap": abs(float(observed[i, j] / per_group[i] - (per_class[j] - observed[i, j]) / rest)),
        "cell_p_value": p,
    }


def label_dependence(clips: pa.Table, attributes: tuple[str, ...] = DEMOGRAPHICS, min_cell_count: int = 5) -> pa.Table:
    """Per corpus and demographic attribute, whether the human label depends on the group.

    Counts the clips with a human label and a known attribute value into a group x class table (classes present
    only) and runs scipy's chi-square test of independence on it (`chi2_contingency`, no continuity correction)
    with Cramér's V (`scipy.stats.contingency.association`) as the effect size. A row is testable with at least two
    groups and two classes and every expected cell count at or above `min_cell_count`; otherwise the test columns
    are null and `note` says why. A group with fewer than `min_cell_count` clips is never merged into another: it
    makes the row untestable and the note names it. `max_gap` (the largest difference in one class's share between
    two groups) is descriptive and reported whenever there are two groups. The intersection of each pair of
    attributes (`gender*age_group`) gets its own rows where both are known. On a testable row with more than two
    groups, the cell (group, class) that differs most significantly from all other groups together is named with
    its Bonferroni-corrected p-value (`cell_*` columns): a bias in one cell of many is found there even where the
    test of the whole table has too little power to see it.

    Args:
        clips: at least corpus and label (the human canonical label, nullable) and the attribute columns; the
            `<attribute>_source` columns are read where present (a missing source reads "unrecorded").
        attributes: demographic columns to test; those not in `clips` are skipped, as are corpora where an
            attribute is never known.
        min_cell_count: smallest expected cell count the chi-square approximation is trusted at (5, the usual rule).

    Returns:
        The `label_dependence` table (schemas/label_dependence.yaml), by corpus, then attribute in `attributes`
        order followed by the intersections.
    """
    _require(clips, "clips", ("corpus", "label"))
    if min_cell_count < 1:
        raise ValueError(f"label_dependence: min_cell_count must be >= 1, got {min_cell_count}")
    corpora, labels = clips["corpus"].to_pylist(), clips["label"].to_pylist()
    attrs = _attributes(clips, attributes)
    rows = []
    for corpus in sorted(set(corpora)):
        for name, (values, sources) in attrs.items():
            idx = [i for i, c in enumerate(corpora) if c == corpus and labels[i] is not None and values[i] is not None]
            if not idx:
                continue
            used = set().union(*(sources[i] for i in idx))
            rows.append(
                _dependence_row(
                    corpus,
                    name,
                    used,
                    [values[i] for i in idx],
                    [labels[i] for i in idx],
                    min_cell_count=min_cell_count,
                )
            )
    return schemas.from_rows(rows, LABEL_DEPENDENCE)


def _uar(y_true: Any, y_pred: Any) -> float:
    """Mean recall over the human classes present (scikit-learn); a prediction outside them only costs recall.

    Args:
        y_true: human labels of one group.
        y_pred: model labels of that group, `ABSTAIN` for an abstention.
    """
    from sklearn.metrics import recall_score

    labels = sorted(set(y_true))
    return float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def _negative_rate(y_true: Any, y_pred: Any) -> float:
    """Share of the predictions that are negative emotions.

    Args:
        y_true: human labels (unused: MetricFrame passes both).
        y_pred: model labels, `ABSTAIN` for an abstention (not negative).
    """
    negative = schemas.taxonomy().negative
    return float(np.mean([p in negative for p in y_pred]))


def _count(y_true: Any, y_pred: Any) -> int:
    """Number of clips.

    Args:
        y_true: human labels.
        y_pred: model labels (unused).
    """
    return len(y_true)


def _ratio(values: dict[str, float]) -> float | None:
    """Lowest / highest value; None when the highest is 0."""
    high = max(values.values())
    return min(values.values()) / high if high > 0 else None


def _parity_row(
    key: tuple[str, str, str],
    groups_of: list[str],
    y_true: list[str],
    y_pred: list[str | None],
    faces: list[float | None] | None,
    *,
    min_group_count: int,
) -> dict[str, Any]:
    """One model_parity row.

    Args:
        key: (corpus, labeler, attribute).
        groups_of: each counted clip's group.
        y_true: each clip's human label.
        y_pred: each clip's model label, None for an abstention.
        faces: each clip's extraction face_share (None where unknown), or None without an extraction table.
        min_group_count: fewest clips a group needs for the row to be testable.
    """
    from fairlearn.metrics import MetricFrame, demographic_parity_ratio, equalized_odds_difference
    from sklearn.metrics import accuracy_score

    corpus, labeler, attribute = key
    pred = [p if p is not None else ABSTAIN for p in y_pred]
    frame = MetricFrame(
        metrics={"recall": _uar, "accuracy": accuracy_score, "negative_rate": _negative_rate, "n": _count},
        y_true=np.asarray(y_true, dtype=object),
        y_pred=np.asarray(pred, dtype=object),
        sensitive_features=np.asarray(groups_of, dtype=object),
    )
    by_group = frame.by_group.to_dict()
    groups = sorted(set(groups_of))
    n = {g: int(by_group["n"][g]) for g in groups}
    recall = {g: float(by_group["recall"][g]) for g in groups}

    reasons = []
    if len(groups) < 2:
        reasons.append(f"one group only ({groups[0]!r})")
    if thin := [g for g in groups if n[g] < min_group_count]:
        listed = ", ".join(f"{g!r} ({n[g]} clips)" for g in thin)
        reasons.append(f"groups with fewer than {min_group_count} clips, not merged: {listed}")
    testable = not reasons

    face_rate = None
    face_n: dict[str, int] = {}
    if faces is not None:
        per: dict[str, list[float]] = defaultdict(list)
        for g, f in zip(groups_of, faces, strict=True):
            if f is not None:
                per[g].append(f)
        face_rate = {g: float(np.mean(per[g])) for g in groups if per[g]}
        face_n = {g: len(per[g]) for g in groups}

    row: dict[str, Any] = {
        "corpus": corpus,
        "labeler": labeler,
        "attribute": attribute,
        "groups": groups,
        "n_per_group": list(n.items()),
        "recall_per_group": list(recall.items()),
        "accuracy_per_group": [(g, float(by_group["accuracy"][g])) for g in groups],
        "negative_rate_per_group": [(g, float(by_group["negative_rate"][g])) for g in groups],
        "face_hit_rate_per_group": list(face_rate.items()) if face_rate is not None else None,
        "testable": testable,
    }
    if testable:
        negative = schemas.taxonomy().negative
        truth = np.array([t in negative for t in y_true], dtype=np.int64)
        said = np.array([p in negative for p in pred], dtype=np.int64)
        sensitive = np.asarray(groups_of, dtype=object)
        high, low = max(recall.values()), min(recall.values())
        row |= {
            "recall_ratio": _ratio(recall),
            "recall_gap": high - low,
            "worst_group": min(groups, key=lambda g: (recall[g], g)),
            "demographic_parity_ratio": _nullable(demographic_parity_ratio(truth, said, sensitive_features=sensitive)),
        }
        if high == 0:
            reasons.append("recall_ratio undefined: every group has recall 0")
        if row["demographic_parity_ratio"] is None:
            reasons.append("demographic_parity_ratio undefined: no group got a negative prediction")
        # fairlearn reads a true- or false-positive rate with no clip to measure it on as 0, which fakes a gap
        one_sided = [g for g in groups if len({int(t) for t, s in zip(truth, groups_of, strict=True) if s == g}) < 2]
        if one_sided:
            listed = ", ".join(repr(g) for g in one_sided)
            reasons.append(
                f"equalized_odds_difference undefined: only negative or only non-negative labels in {listed}"
            )
        else:
            row["equalized_odds_difference"] = _nullable(
                equalized_odds_difference(truth, said, sensitive_features=sensitive)
            )
        if face_rate is not None:
            short = [g for g in groups if face_n[g] < min_group_count]
            if short:
                listed = ", ".join(f"{g!r} ({face_n[g]})" for g in short)
                reasons.append(f"face_hit_ratio undefined: fewer than {min_group_count} face_share values in {listed}")
            else:
                row["face_hit_ratio"] = _ratio(face_rate)
                if row["face_hit_ratio"] is None:
                    reasons.append("face_hit_ratio undefined: no face found in any group")
    row["note"] = "; ".join(reasons) or None
    return row


def _face_shares(extraction: pa.Table) -> dict[str, float | None]:
    """face_share per clip_id from an extraction table.

    Args:
        extraction: at least clip_id and face_share; one row per clip.
    """
    _require(extraction, "extraction", ("clip_id", "face_share"))
    out: dict[str, float | None] = {}
    for clip_id, share in zip(extraction["clip_id"].to_pylist(), extraction["face_share"].to_pylist(), strict=True):
        if clip_id in out:
            raise ValueError(f"extraction: duplicate clip_id {clip_id!r}")
        out[clip_id] = None if share is None else float(share)
    return out


def model_parity(
    clips: pa.Table,
    labels: pa.Table,
    attributes: tuple[str, ...] = DEMOGRAPHICS,
    extraction: pa.Table | None = None,
    min_group_count: int = 10,
) -> pa.Table:
    """Per corpus (and ALL), labeler and demographic attribute, how evenly a labeler serves the groups.

    Counts the clips with a human label, a known attribute value and a row from the labeler (joined on clip_id); a
    null model label is an abstention and counts as a wrong prediction. fairlearn's `MetricFrame` gives per group the
    UAR (scikit-learn macro recall over the human classes present in the group), accuracy, the share of negative-
    emotion predictions and the clip count; `recall_ratio`, `recall_gap` and `worst_group` summarise the recalls.
    fairlearn's `demographic_parity_ratio` and `equalized_odds_difference` are computed on y_pred = "the labeler said
    a negative emotion" against y_true = "the human label is a negative emotion" (schemas/taxonomy.yaml `negative`).
    With `extraction`, the mean face_share per group audits the face detector (`face_hit_ratio`). A row is testable
    with at least two groups, each of at least `min_group_count` clips; thin groups are not merged. Parity metrics
    are null on untestable rows, and `note` says why; the per-group maps are always filled.

    Args:
        clips: at least clip_id (unique), corpus and label (human canonical label, nullable) and the attribute
            columns.
        labels: at least clip_id, labeler and label (model canonical label, null = abstention); one row per
            (clip_id, labeler). Rows for clips not in `clips` or without a human label are ignored.
        attributes: demographic columns; those not in `clips` are skipped. The intersection of each pair is added.
        extraction: optional extraction table (clip_id, face_share; one row per clip) for the face-detector audit.
        min_group_count: fewest clips a group needs for the row to be testable.

    Returns:
        The `model_parity` table (schemas/model_parity.yaml), by corpus (ALL first), labeler, then attribute.
    """
    _require(clips, "clips", ("clip_id", "corpus", "label"))
    _require(labels, "labels", ("clip_id", "labeler", "label"))
    if min_group_count < 1:
        raise ValueError(f"model_parity: min_group_count must be >= 1, got {min_group_count}")
    clip_ids, corpora, human = (clips[c].to_pylist() for c in ("clip_id", "corpus", "label"))
    index: dict[str, int] = {}
    for i, (clip_id, corpus) in enumerate(zip(clip_ids, corpora, strict=True)):
        if clip_id in index:
            raise ValueError(f"clips: duplicate clip_id {clip_id!r}")
        if corpus == ALL:
            raise ValueError(f"clips: corpus name {ALL!r} is reserved for the all-corpora rows")
        index[clip_id] = i
    face_by_clip = _face_shares(extraction) if extraction is not None else None

    members: dict[tuple[str, str], list[tuple[int, str | None]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for clip_id, labeler, pred in zip(*(labels[c].to_pylist() for c in ("clip_id", "labeler", "label")), strict=True):
        if (clip_id, labeler) in seen:
            raise ValueError(f"labels: {labeler!r} has more than one row for clip {clip_id!r}")
        seen.add((clip_id, labeler))
        i = index.get(clip_id)
        if i is None or human[i] is None:
            continue
        for key in ((corpora[i], labeler), (ALL, labeler)):
            members[key].append((i, pred))

    attrs = _attributes(clips, attributes)
    rows = []
    for corpus, labeler in sorted(members):
        for name, (values, sources) in attrs.items():
            known = [(i, p) for i, p in members[corpus, labeler] if values[i] is not None]
            if not known:
                continue
            faces = None
            if face_by_clip is not None:
                faces = [face_by_clip.get(clip_ids[i]) for i, _ in known]
            row = _parity_row(
                (corpus, labeler, name),
                [values[i] for i, _ in known],
                [human[i] for i, _ in known],
                [p for _, p in known],
                faces,
                min_group_count=min_group_count,
            )
            row["attribute_sources"] = ",".join(sorted(set().union(*(sources[i] for i, _ in known))))
            rows.append(row)
    return schemas.from_rows(rows, MODEL_PARITY)
