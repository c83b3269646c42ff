"""Agreement of model labels with human labels, as WAR and UAR: a pure `clips, labels -> agreement` function.

WAR (weighted average recall) is plain accuracy, dominated by the large classes; UAR (unweighted average recall) is
the mean of the per-class recalls, the usual headline for imbalanced emotion corpora (DFEW, MAFW). Both are computed
twice: over every clip with a human label, where an abstention is its own predicted class that never matches (so it
counts as wrong), and over the answered clips only. Cohen's kappa (agreement beyond chance) is computed over every
clip with a human label, an abstention again being its own class. The metric maths is scikit-learn's.

Besides the table: `confusion_png` draws one labeler's confusion matrix, and `metrics_json` turns the table into the
nested dict a DVC metrics file holds.
"""

from __future__ import annotations

import math
import pathlib
from collections import defaultdict
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.stages.fusion import resolve_labeler

AGREEMENT = schemas.load_schema("agreement")
ALL = "ALL"  # the corpus value of the rows over every corpus together
ABSTAIN = "__abstain__"  # the predicted class standing for an abstention; never a human label


def _ordered(classes: set[str]) -> list[str]:
    """Classes in canonical order, any non-canonical ones sorted after."""
    canonical = schemas.taxonomy().canonical
    return [c for c in canonical if c in classes] + sorted(classes - set(canonical))


def _scores(y_true: list[str], y_pred: list[str]) -> tuple[float, float, list[str], list[float]]:
    """WAR, UAR (over the human classes present), those classes and their recalls.

    Args:
        y_true: human labels.
        y_pred: model labels, `ABSTAIN` for an abstention.
    """
    from sklearn.metrics import accuracy_score, recall_score

    classes = _ordered(set(y_true))
    war = float(accuracy_score(y_true, y_pred))
    uar = float(recall_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    recalls = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return war, uar, classes, [float(r) for r in recalls]


def _kappa(y_true: list[str], y_pred: list[str]) -> float | None:
    """Cohen's kappa; None when the human labels hold fewer than two classes.

    With a single human class the chance agreement equals the observed agreement, so kappa is 0 whatever the
    labeler does (or 0/0 when it always gives that class): it says nothing, and is left null.

    Args:
        y_true: human labels.
        y_pred: model labels, `ABSTAIN` for an abstention.
    """
    if len(set(y_true)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    kappa = float(cohen_kappa_score(y_true, y_pred))
    return None if math.isnan(kappa) else kappa


def _row(corpus: str, labeler: str, y_true: list[str], y_pred: list[str | None]) -> dict[str, Any]:
    """One agreement row.

    Args:
        corpus: corpus name, or `ALL`.
        labeler: labeler name.
        y_true: human labels (none null).
        y_pred: model labels, None for an abstention.
    """
    y_pred_abstain = [p if p is not None else ABSTAIN for p in y_pred]
    war, uar, classes, recalls = _scores(y_true, y_pred_abstain)
    answered = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if p is not None]
    war_answered = uar_answered = None
    if answered:
        war_answered, uar_answered, _, _ = _scores([t for t, _ in answered], [p for _, p in answered])
    return {
        "corpus": corpus,
        "labeler": labeler,
        "n_clips": len(y_true),
        "n_answered": len(answered),
        "coverage": len(answered) / len(y_true),
        "war": war,
        "uar": uar,
        "war_answered": war_answered,
        "uar_answered": uar_answered,
        "kappa": _kappa(y_true, y_pred_abstain),
        "classes": classes,
        "per_class_recall": list(zip(classes, recalls, strict=True)),
    }


def _require(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    if missing := [c for c in columns if c not in table.column_names]:
        raise ValueError(f"{name}: missing columns {missing}")


def _groups(clips: pa.Table, labels: pa.Table) -> dict[tuple[str, str], tuple[list[str], list[str | None]]]:
    """(human labels, model labels) per (corpus, labeler) and (ALL, labeler), over the clips with a human label.

    Args:
        clips: see `agreement`.
        labels: see `agreement`.
    """
    _require(clips, "clips", ("clip_id", "corpus", "label"))
    _require(labels, "labels", ("clip_id", "labeler", "label"))
    human: dict[str, tuple[str, str | None]] = {}
    for clip_id, corpus, label in zip(*(clips[c].to_pylist() for c in ("clip_id", "corpus", "label")), strict=True):
        if clip_id in human:
            raise ValueError(f"clips: duplicate clip_id {clip_id!r}")
        if corpus == ALL:
            raise ValueError(f"clips: corpus name {ALL!r} is reserved for the all-corpora rows")
        human[clip_id] = (corpus, label)

    groups: dict[tuple[str, str], tuple[list[str], list[str | None]]] = defaultdict(lambda: ([], []))
    seen: set[tuple[str, str]] = set()
    for clip_id, labeler, pred in zip(*(labels[c].to_pylist() for c in ("clip_id", "labeler", "label")), strict=True):
        if (clip_id, labeler) in seen:
            raise ValueError(f"labels: {labeler!r} has more than one row for clip {clip_id!r}")
        seen.add((clip_id, labeler))
        corpus, truth = human.get(clip_id, (None, None))
        if truth is None:  # no human label, or a clip outside `clips`
            continue
        for key in ((corpus, labeler), (ALL, labeler)):
            groups[key][0].append(truth)
            groups[key][1].append(pred)
    return dict(groups)


def agreement(clips: pa.Table, labels: pa.Table) -> pa.Table:
    """Per corpus and labeler, and per labeler over all corpora (corpus "ALL"), agreement with the human labels.

    Clips are joined on clip_id. A clip counts when it has a human label and the labeler has a row for it; a
    null model label is an abstention and counts as wrong in `war`, `uar` and `per_class_recall`, and is a class of
    its own in `kappa`. UAR averages the recall of the human classes present in that corpus (`uar_answered`: present
    among the answered clips). `kappa` is null where the human labels hold a single class.

    Args:
        clips: at least clip_id, corpus and label (the human canonical label, nullable); clip_id unique.
        labels: at least clip_id, labeler and label (the model's canonical label, null = abstention); one row
            per (clip_id, labeler). Rows for clips not in `clips` are ignored.

    Returns:
        The `agreement` table (schemas/agreement.yaml), sorted by corpus, labeler.
    """
    groups = _groups(clips, labels)
    rows = [_row(corpus, labeler, *groups[corpus, labeler]) for corpus, labeler in sorted(groups)]
    return schemas.from_rows(rows, AGREEMENT)


def _confusion(y_true: list[str], y_pred: list[str | None]) -> tuple[list[str], list[str], Any]:
    """Rows (human classes present), columns (those, other predicted classes, `ABSTAIN`) and the count matrix.

    Args:
        y_true: human labels.
        y_pred: model labels, None for an abstention.
    """
    from sklearn.metrics import confusion_matrix

    classes = _ordered(set(y_true))
    extra = _ordered({p for p in y_pred if p is not None} - set(classes))
    columns = [*classes, *extra, ABSTAIN]
    y_pred_abstain = [p if p is not None else ABSTAIN for p in y_pred]
    return classes, columns, confusion_matrix(y_true, y_pred_abstain, labels=columns)[: len(classes)]


def confusion_png(
    clips: pa.Table, labels: pa.Table, labeler: str, corpus: str | None, path: pathlib.Path
) -> pathlib.Path:
    """Draw one labeler's confusion matrix against the human labels as a PNG.

    Rows are the human classes present, in canonical order; columns are those classes, then any other class the
    labeler predicted (so no clip drops out of the picture), then "abstained". Each cell holds its clip count. The
    title names the labeler and corpus and gives WAR and UAR as in `agreement`.

    Args:
        clips: as for `agreement`.
        labels: as for `agreement`.
        labeler: "name@version", or a bare name if one version of it is in `labels`.
        corpus: one corpus, or None for every corpus together.
        path: where to write the PNG; its folder is created.

    Returns:
        `path`.

    Raises:
        ValueError: unknown or ambiguous labeler, or no clip with a human label for it in that corpus.
    """
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    _require(labels, "labels", ("clip_id", "labeler", "label"))
    labeler = resolve_labeler(labels["labeler"].to_pylist(), labeler)
    key = (ALL if corpus is None else corpus, labeler)
    groups = _groups(clips, labels)
    if key not in groups:
        raise ValueError(f"{labeler!r} has no clip with a human label in corpus {key[0]!r}")
    y_true, y_pred = groups[key]
    war, uar, _, _ = _scores(y_true, [p if p is not None else ABSTAIN for p in y_pred])
    classes, columns, matrix = _confusion(y_true, y_pred)

    fig = Figure(figsize=(max(4.0, 0.7 * len(columns) + 2.5), max(3.0, 0.5 * len(classes) + 2.0)), layout="tight")
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues", aspect="auto", vmin=0)
    high = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(int(count)), ha="center", va="center", color="white" if count > high else "black")
    ax.set_xticks(range(len(columns)), [c if c != ABSTAIN else "abstained" for c in columns], rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("model label")
    ax.set_ylabel("human label")
    ax.set_title(f"{labeler} | {key[0]} (n={len(y_true)})\nWAR {war:.3f}  UAR {uar:.3f}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def metrics_json(agreement_table: pa.Table) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """The agreement table as a DVC metrics dict: `{labeler: {corpus: {war, uar, kappa, coverage, n_clips}}}`.

    Floats are rounded to 6 decimals; a null kappa stays None (JSON null). The all-corpora rows appear under "ALL".

    Args:
        agreement_table: the output of `agreement`.
    """
    _require(agreement_table, "agreement", ("corpus", "labeler", "war", "uar", "kappa", "coverage", "n_clips"))
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for row in agreement_table.to_pylist():
        out.setdefault(row["labeler"], {})[row["corpus"]] = {
            **{k: None if row[k] is None else round(float(row[k]), 6) for k in ("war", "uar", "kappa", "coverage")},
            "n_clips": int(row["n_clips"]),
        }
    return out


# R1-Omni's published agreement (HumanMLLM/R1-Omni README, its own test splits), WAR and UAR in percent per corpus.
R1_OMNI_PUBLISHED: dict[str, tuple[float, float]] = {
    "dfew": (65.83, 56.27),
    "mafw": (57.68, 40.04),
    "ravdess": (43.00, 44.69),
}
PUBLISHED_METHOD = "R1-Omni (published)"
# The corpora of the seeds' table, in its column order; other corpora follow, sorted.
SEED_CORPORA = ("dfew", "mafw", "ravdess")
_CORPUS_TITLES = {"dfew": "DFEW", "mafw": "MAFW", "ravdess": "RAVDESS"}


def comparison(agreement_table: pa.Table, published: dict[str, tuple[float, float]] | None = None) -> pa.Table:
    """The agreement table in the seeds' form: one row per labeler, WAR and UAR (percent) per corpus, then a row
    with the published R1-Omni figures.

    Columns: `method` (labeler, or `PUBLISHED_METHOD`), `published` (bool), then per corpus `<corpus>_war`,
    `<corpus>_uar` (percent, 2 decimals; null where the labeler has no human-labelled clip there), `<corpus>_n`
    (clips) and `<corpus>_coverage`. The corpora are DFEW, MAFW, RAVDESS, then any other corpus in the table; the
    all-corpora rows are left out (the published table has none). The figures count an abstention as wrong, as
    R1-Omni's evaluation counts a reply that is not the label word.

    Args:
        agreement_table: the output of `agreement`.
        published: corpus -> (WAR, UAR) in percent; default `R1_OMNI_PUBLISHED`. Empty: no published row.
    """
    _require(agreement_table, "agreement", ("corpus", "labeler", "war", "uar", "n_clips", "coverage"))
    published = R1_OMNI_PUBLISHED if published is None else published
    rows = [r for r in agreement_table.to_pylist() if r["corpus"] != ALL]
    seen = {r["corpus"] for r in rows} | set(published)
    corpora = [*SEED_CORPORA, *sorted(seen - set(SEED_CORPORA))]
    by = {(r["labeler"], r["corpus"]): r for r in rows}
    out: list[dict[str, Any]] = []
    for labeler in sorted({r["labeler"] for r in rows}):
        row: dict[str, Any] = {"method": labeler, "published": False}
        for corpus in corpora:
            found = by.get((labeler, corpus))
            row[f"{corpus}_war"] = None if found is None else round(100 * found["war"], 2)
            row[f"{corpus}_uar"] = None if found is None else round(100 * found["uar"], 2)
            row[f"{corpus}_n"] = None if found is None else int(found["n_clips"])
            row[f"{corpus}_coverage"] = None if found is None else float(found["coverage"])
        out.append(row)
    if published:
        row = {"method": PUBLISHED_METHOD, "published": True}
        for corpus in corpora:
            war, uar = published.get(corpus, (None, None))
            row |= {f"{corpus}_war": war, f"{corpus}_uar": uar, f"{corpus}_n": None, f"{corpus}_coverage": None}
        out.append(row)
    fields = [pa.field("method", pa.string(), nullable=False), pa.field("published", pa.bool_(), nullable=False)]
    for corpus in corpora:
        fields += [pa.field(f"{corpus}_war", pa.float64()), pa.field(f"{corpus}_uar", pa.float64()),
                   pa.field(f"{corpus}_n", pa.int64()), pa.field(f"{corpus}_coverage", pa.float64())]  # fmt: skip
    schema = pa.schema(fields)
    return pa.Table.from_pylist(out, schema=schema) if out else schema.empty_table()


def comparison_markdown(table: pa.Table) -> str:
    """`comparison`'s table as the Markdown table of R1-Omni's README, with the clip counts underneath.

    Args:
        table: the output of `comparison`.
    """
    corpora = [name[: -len("_war")] for name in table.column_names if name.endswith("_war")]
    titles = [_CORPUS_TITLES.get(c, c) for c in corpora]
    header = ["Method", *(f"{t} ({m})" for t in titles for m in ("WAR", "UAR"))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    notes = []
    for row in table.to_pylist():
        cells = [row["method"]]
        for corpus in corpora:
            cells += ["–" if row[f"{corpus}_{m}"] is None else f"{row[f'{corpus}_{m}']:.2f}" for m in ("war", "uar")]
        lines.append("| " + " | ".join(cells) + " |")
        counted = [f"{_CORPUS_TITLES.get(c, c)} {row[f'{c}_n']} clips ({100 * row[f'{c}_coverage']:.0f}% answered)"
                   for c in corpora if row[f"{c}_n"] is not None]  # fmt: skip
        if counted:
            notes.append(f"- {row['method']}: " + ", ".join(counted))
    notes.append(
        "- WAR = accuracy, UAR = mean per-class recall, in %, over every clip with a human label (an abstention "
        f"counts as wrong). {PUBLISHED_METHOD}: the R1-Omni README, on its own test splits; the rows above are over "
        "this dataset's clips."
    )
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
