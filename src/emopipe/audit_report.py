"""The bias audit of a validated or published dataset folder: a self-contained HTML report and a datasheet.

`render()` reads whatever the folder holds (clips, quarantine, fused labels, validation.json and the metric tables
under reports/) and writes, besides a plots/ folder with each plot as a PNG file:

- `bias_report.html`: one page with no external CSS, JS or fonts; every plot is a PNG drawn with matplotlib's Agg
  canvas (`matplotlib.figure.Figure`, never pyplot) and inlined as base64, with an `alt` text and a
  `data-plot="<name>"` attribute. Every value taken from a table is HTML-escaped.
- `datasheet.md`: a "Datasheet for Datasets"-style account (Gebru et al. 2021): motivation, composition,
  demographics and where each value came from (annotated, derived or estimated), collection and licences, intended
  and prohibited uses, and the known biases and gaps computed from the tables.

Every input but the folder itself is optional. The metric tables (class_balance, balance_summary, representation,
label_dependence, model_parity, agreement, near_duplicates) come from `tables` when given there, else from
`folder/reports/<name>.parquet` (or `folder/<name>.parquet`); class balance and representation are computed from
the clips when neither has them. A section whose input is missing says so instead of failing.
"""

from __future__ import annotations

import base64
import html
import math
import pathlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import io, schemas
from emopipe.config import ValidateConfig

HTML_FILE = "bias_report.html"
DATASHEET_FILE = "datasheet.md"
PLOTS_DIR = "plots"
METRIC_TABLES = (
    "class_balance",
    "balance_summary",
    "representation",
    "label_dependence",
    "model_parity",
    "agreement",
    "near_duplicates",
)
ATTRIBUTES = ("gender", "age_group", "accent")  # demographic columns of clips.yaml, each with a `<name>_source`
SOURCES = ("annotated", "derived", "estimated")
P_LEVEL = 0.05  # a label_dependence association counts only where its p-value is below this
EMPTY = "\N{EM DASH}"

EU_AI_ACT = (
    "Regulation (EU) 2024/1689 (the EU AI Act), Article 5(1)(f), prohibits placing on the market, putting into "
    "service for this purpose, or using AI systems to infer the emotions of a natural person in the areas of "
    "workplaces and education institutions, except where the system is intended for medical or safety reasons. "
    "The prohibition applies from 2 February 2025. Outside those settings, emotion-recognition systems are "
    "high-risk (Annex III, point 1(c)) and their deployers must inform the people exposed to them (Article 50(3))."
)
BARRETT_2019 = (
    "Barrett, L. F., Adolphs, R., Marsella, S., Martinez, A. M., & Pollak, S. D. (2019). Emotional expressions "
    "reconsidered: challenges to inferring emotion from human facial movements. Psychological Science in the Public "
    "Interest, 20(1), 1-68. doi:10.1177/1529100619832930"
)
CONTESTED_SCIENCE = (
    "Inferring emotions from faces rests on contested science: a review of the evidence found that facial movements "
    "do not reliably and specifically express emotion categories across people, situations and cultures "
    f"({BARRETT_2019}). The labels in this dataset are what actors portrayed or what annotators perceived, not what "
    "anyone felt."
)

COLLECTION = {
    "ravdess": "the Ryerson Audio-Visual Database of Emotional Speech and Song: 24 professional actors (12 female, "
    "12 male) speaking and singing two fixed statements in a studio, portraying each emotion at two intensities; "
    "the label is the emotion the actor was asked to portray, and gender is derived from the actor number.",
    "dfew": "Dynamic Facial Expression in the Wild: about 16,000 clips cut from more than 1,500 films, each labelled "
    "by crowd annotators with the emotion they perceived; the corpus records no demographics.",
    "mafw": "Multimodal Affective Database in the Wild: about 10,000 clips from films, TV series and other video, "
    "labelled by annotators with 11 single classes, compound labels and descriptions; gender, where shipped, comes "
    "from MAFW's automatic (model) labels and is recorded as estimated; about 1,100 clips reuse DFEW footage.",
    "footage": "footage collected by the operator of this pipeline; its provenance, consent and licence are whatever "
    "its collector declared (params.yaml ingest.sources[].license).",
}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{border-bottom:3px solid #345;padding-bottom:.3rem}h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.thin td{background:#fff1c2}tr.very-thin td{background:#ffd1cc}tr.flag td{background:#fff1c2}
.pass{color:#176d2c;font-weight:600}.fail{color:#b00020;font-weight:600}
.note{color:#555;font-size:.9rem}figure{margin:1rem 0}figcaption{color:#555;font-size:.85rem}
img{max-width:100%;height:auto;border:1px solid #ddd}code{background:#f4f4f4;padding:0 .2rem}
nav ul{columns:2}.legend span{padding:0 .4rem;margin-right:.6rem}
"""


@dataclass
class _Inputs:
    """What the folder holds, loaded once."""

    folder: pathlib.Path
    clips: list[dict[str, Any]]
    has_clips: bool
    quarantine: list[dict[str, Any]]
    fused: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]]
    computed: list[str]
    gate: dict[str, Any] | None
    version: str | None
    lineage: dict[str, Any] | None
    confusion: list[pathlib.Path]
    thresholds: ValidateConfig
    plots: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def attributes(self) -> tuple[str, ...]:
        """The demographic columns reported: clips.yaml's and any other the gate audits (intersections left out)."""
        return _simple_attributes(self.thresholds)

    @property
    def corpora(self) -> list[str]:
        names = {r["corpus"] for r in self.clips}
        for table in ("class_balance", "balance_summary", "representation"):
            names |= {r["corpus"] for r in self.tables.get(table, [])}
        return sorted(names)

    def corpus_clips(self, corpus: str) -> list[dict[str, Any]]:
        return [r for r in self.clips if r["corpus"] == corpus]


# ---------------------------------------------------------------------------------------------------- loading


def _simple_attributes(thresholds: ValidateConfig) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in (*ATTRIBUTES, *thresholds.bias_attributes) if "*" not in a))


def _as_dict(value: Any) -> dict[str, Any]:
    """A stored map column's value (a list of {key, value} entries, see emopipe.schemas) as a dict."""
    return schemas.as_dict(value)


def _read(path: pathlib.Path) -> pa.Table | None:
    return pq.read_table(path) if path.is_file() else None


def _metric_table(folder: pathlib.Path, name: str, given: dict[str, pa.Table] | None) -> pa.Table | None:
    if given and given.get(name) is not None:
        return given[name]
    for path in (folder / "reports" / f"{name}.parquet", folder / f"{name}.parquet"):
        if (table := _read(path)) is not None:
            return table
    return None


def _lineage(folder: pathlib.Path) -> dict[str, Any] | None:
    """lineage.json of a published version: beside the folder (a data-repo checkout) or inside it."""
    for path in (folder / "lineage.json", folder.parent / "lineage.json"):
        if path.is_file():
            data = io.read_json(path)
            return data if isinstance(data, dict) else None
    return None


def _load(
    folder: pathlib.Path, tables: dict[str, pa.Table] | None, version: str | None, thresholds: ValidateConfig
) -> _Inputs:
    from emopipe.stages import balance

    clips_table = _read(folder / "clips.parquet")
    clips: list[dict[str, Any]] = []
    attributes = _simple_attributes(thresholds)
    if clips_table is not None and "corpus" in clips_table.column_names:
        wanted = ["corpus", "label", "folds", "license", "media_form", "modality", "has_video", "has_audio"]
        wanted += [c for a in attributes for c in (a, f"{a}_source")]
        present = [c for c in wanted if c in clips_table.column_names]
        clips = clips_table.select(present).to_pylist()
        for row in clips:
            for column in wanted:
                row.setdefault(column, None)
    quarantine = _read(folder / "quarantine.parquet")
    fused = _read(folder / "fused_labels.parquet")

    loaded: dict[str, list[dict[str, Any]]] = {}
    computed: list[str] = []
    for name in METRIC_TABLES:
        if (table := _metric_table(folder, name, tables)) is not None:
            loaded[name] = table.to_pylist()
    if clips_table is not None and {"corpus", "label"} <= set(clips_table.column_names):
        if "class_balance" not in loaded:
            loaded["class_balance"] = balance.class_balance(clips_table).to_pylist()
            computed.append("class_balance")
        if "balance_summary" not in loaded:
            cb = schemas.from_rows(loaded["class_balance"], balance.CLASS_BALANCE)
            loaded["balance_summary"] = balance.balance_summary(clips_table, cb).to_pylist()
            computed.append("balance_summary")
        if "representation" not in loaded:
            # representation() reads each attribute's source column
            present = tuple(a for a in attributes if {a, f"{a}_source"} <= set(clips_table.column_names))
            loaded["representation"] = balance.representation(clips_table, present).to_pylist()
            computed.append("representation")

    gate = io.read_json(folder / "validation.json") if (folder / "validation.json").is_file() else None
    lineage = _lineage(folder)
    if version is None and lineage:
        version = lineage.get("version")
    confusion = sorted((folder / "reports" / "confusion").glob("*.png"))
    return _Inputs(
        folder=folder,
        clips=clips,
        has_clips=clips_table is not None,
        quarantine=quarantine.to_pylist() if quarantine is not None else [],
        fused=fused.to_pylist() if fused is not None else [],
        tables=loaded,
        computed=computed,
        gate=gate if isinstance(gate, dict) else None,
        version=version,
        lineage=lineage,
        confusion=confusion,
        thresholds=thresholds,
    )


# ---------------------------------------------------------------------------------------------------- formatting


def _fmt(value: Any, kind: str | None = None) -> str:
    """A table value as text; `kind` "share" prints a percentage, "p" a p-value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if kind == "share":
            return f"{100 * value:.1f}%"
        if kind == "p":
            return f"{value:.3g}"
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v, kind)}" for k, v in value.items()) or EMPTY
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # an Arrow map
            return _fmt(_as_dict(value), kind)
        return ", ".join(_fmt(v, kind) for v in value) or EMPTY
    return str(value)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _esc(value: Any, kind: str | None = None) -> str:
    return html.escape(_fmt(value, kind))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "plot"


def _html_table(
    headers: list[str],
    rows: Iterable[list[Any]],
    kinds: list[str | None] | None = None,
    row_classes: list[str | None] | None = None,
) -> str:
    kinds = kinds or [None] * len(headers)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else None
        cells = "".join(
            f'<td class="num">{_esc(v, k)}</td>'
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{_esc(v, k)}</td>"
            for v, k in zip(row, kinds, strict=True)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _md_safe(text: str) -> str:
    """Text from the data, safe in Markdown: whatever could open an HTML tag is escaped ("a < b" stays)."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def _md_cell(value: Any, kind: str | None = None) -> str:
    return _md_safe(_fmt(value, kind)).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: Iterable[list[Any]], kinds: list[str | None] | None = None) -> str:
    kinds = kinds or [None] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(v, k) for v, k in zip(row, kinds, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# ---------------------------------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _img(inputs: _Inputs, name: str, fig: Any, alt: str, caption: str | None = None) -> str:
    """Render `fig` to PNG, remember it for the plots folder and return the <figure> with the inline image."""
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    data = buf.getvalue()
    inputs.plots.append((name, data))
    return _img_tag(name, data, alt, caption)


def _img_tag(name: str, data: bytes, alt: str, caption: str | None = None) -> str:
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="{src}" alt="{html.escape(alt, quote=True)}" '
        f'data-plot="{html.escape(name, quote=True)}">{cap}</figure>'
    )


def _class_bar(inputs: _Inputs, corpus: str, rows: list[dict[str, Any]]) -> str:
    labels = [r["label"] for r in rows]
    counts = [r["count"] for r in rows]
    warn = inputs.thresholds.min_class_share.warning
    colors = ["#d9822b" if r["share"] < warn else "#3b6ea5" for r in rows]
    fig = _figure(max(5.0, 0.6 * len(labels) + 2.0), 3.2)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(labels)), counts, color=colors)
    ax.bar_label(bars, labels=[str(c) for c in counts], fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_ylabel("clips")
    ax.set_title(f"{corpus}: clips per class (orange: share below {100 * warn:.0f}%)")
    ax.margins(y=0.15)
    alt = f"Bar chart of clips per class in {corpus}: " + ", ".join(
        f"{lab} {c}" for lab, c in zip(labels, counts, strict=True)
    )
    return _img(inputs, f"class_distribution/{corpus}", fig, alt)


def _grouped_bar(
    inputs: _Inputs,
    name: str,
    categories: list[str],
    series: dict[str, list[float | None]],
    *,
    labels: tuple[str, str, str],
    ymax: float | None = 1.0,
) -> str:
    """Bars of each series side by side per category; `labels` is (title, y label, alt text)."""
    title, ylabel, alt = labels
    n = max(1, len(series))
    width = 0.8 / n
    fig = _figure(max(7.5, 0.45 * len(categories) * n + 4.0), 3.4)  # room for the legend on the right
    ax = fig.add_subplot()
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(categories))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width=width, label=label)
    ax.set_xticks(range(len(categories)), categories, rotation=35 if len(categories) > 4 else 0, ha="right")
    ax.set_ylabel(ylabel)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _img(inputs, name, fig, alt)


# ---------------------------------------------------------------------------------------------------- computations


def _thin_level(share: float, thresholds: ValidateConfig) -> str | None:
    if share < thresholds.min_group_share.blocking:
        return "very-thin"
    if share < thresholds.min_group_share.warning:
        return "thin"
    return None


def _source_counts(clips: list[dict[str, Any]], attribute: str) -> Counter:
    """How the attribute's values came about: annotated / derived / estimated / unrecorded source / unknown value."""
    out: Counter = Counter()
    for row in clips:
        if row.get(attribute) is None:
            out["unknown"] += 1
        else:
            out[row.get(f"{attribute}_source") or "unrecorded"] += 1
    return out


def _group_value(row: dict[str, Any], attribute: str) -> str | None:
    """The row's group for an attribute, or for an intersection "a*b" its values joined by "|"; None if unknown."""
    values = [row.get(part) for part in attribute.split("*")]
    return None if any(v is None for v in values) else "|".join(str(v) for v in values)


def _attributes(inputs: _Inputs, corpus: str) -> list[str]:
    """Demographic attributes (and intersections) with at least one known value in the corpus."""
    rows = inputs.corpus_clips(corpus)
    known = [a for a in inputs.attributes if any(r.get(a) is not None for r in rows)]
    audited = [a for a in inputs.thresholds.bias_attributes if a in known]
    crossed = ["*".join(audited)] if len(audited) >= 2 else []
    crossed += [r["attribute"] for r in inputs.tables.get("label_dependence", []) if "*" in str(r.get("attribute"))]
    crossed = [a for a in dict.fromkeys(crossed) if any(_group_value(r, a) is not None for r in rows)]
    return known + crossed


def _classes(inputs: _Inputs, corpus: str) -> list[str]:
    ordered = [r["label"] for r in inputs.tables.get("class_balance", []) if r["corpus"] == corpus]
    present = {r["label"] for r in inputs.corpus_clips(corpus) if r["label"] is not None}
    return ordered + sorted(present - set(ordered))


def _fold_counts(rows: list[dict[str, Any]]) -> dict[tuple[int, str], Counter]:
    out: dict[tuple[int, str], Counter] = defaultdict(Counter)
    for row in rows:
        for entry in row.get("folds") or []:
            if not entry or entry.get("fold") is None:
                continue
            out[int(entry["fold"]), str(entry.get("split"))][row["label"] or "(unlabelled)"] += 1
    return dict(sorted(out.items()))


def _class_share_by_group(rows: list[dict[str, Any]], attribute: str) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if (group := _group_value(row, attribute)) is not None and row["label"] is not None:
            out[group][row["label"]] += 1
    return dict(sorted(out.items()))


def _dependence_flag(r: dict[str, Any], th: ValidateConfig) -> str | None:
    """Why a label_dependence row is a finding (the gate's warning levels), or None."""
    reasons = []
    v, p = r.get("cramers_v"), r.get("p_value")
    if r.get("testable") and v is not None and p is not None and p < P_LEVEL and v >= th.max_cramers_v.warning:
        reasons.append(
            f"the class mix depends on the group (chi2 {_fmt(r.get('chi2'))}, p {_fmt(p, 'p')}, "
            f"Cramér's V {_fmt(v)} >= {th.max_cramers_v.warning})"
        )
    gap = r.get("max_gap")
    if gap is not None and gap >= th.max_class_gap.warning:
        reasons.append(
            f"{_fmt(r.get('max_gap_class'))} differs by {_fmt(gap, 'share')} between groups "
            f"({_fmt(r.get('max_gap_groups'))}: {_fmt(r.get('max_gap_shares'))})"
        )
    return "; ".join(reasons) or None


def _parity_flags(r: dict[str, Any], th: ValidateConfig) -> list[str]:
    """Why a model_parity row is a finding (the gate's warning levels)."""
    out = []
    if (x := r.get("recall_ratio")) is not None and x < th.min_recall_ratio.warning:
        out.append(f"recall ratio {_fmt(x)} < {th.min_recall_ratio.warning}, worst group {_fmt(r.get('worst_group'))}")
    if (x := r.get("demographic_parity_ratio")) is not None and x < th.min_parity_ratio.warning:
        out.append(
            f"demographic parity ratio of negative-emotion predictions {_fmt(x)} < {th.min_parity_ratio.warning}"
        )
    if (x := r.get("equalized_odds_difference")) is not None and x > th.max_equalized_odds_difference.warning:
        out.append(f"equalized odds difference {_fmt(x)} > {th.max_equalized_odds_difference.warning}")
    if (x := r.get("face_hit_ratio")) is not None and x < th.min_face_hit_ratio.warning:
        out.append(f"face detector hit-rate ratio {_fmt(x)} < {th.min_face_hit_ratio.warning}")
    return out


def findings(inputs: _Inputs) -> list[tuple[str, str]]:
    """Known biases and gaps as (category, sentence), computed from the tables."""
    th = inputs.thresholds
    out: list[tuple[str, str]] = []
    for r in inputs.tables.get("representation", []):
        if (level := _thin_level(r["share"], th)) is not None:
            bound = th.min_group_share.blocking if level == "very-thin" else th.min_group_share.warning
            out.append(
                (
                    "thin group",
                    f"{r['corpus']}: {r['attribute']} = {r['group']} has {r['count']} clips, "
                    f"{_fmt(r['share'], 'share')} of those with a known {r['attribute']} "
                    f"(below {_fmt(bound, 'share')}).",
                )
            )
    for corpus in inputs.corpora:
        rows = inputs.corpus_clips(corpus)
        for attribute in inputs.attributes:
            counts = _source_counts(rows, attribute)
            if not rows:
                continue
            if counts["unknown"] == len(rows):
                if attribute in inputs.thresholds.bias_attributes:
                    out.append(("missing demographics", f"{corpus}: no clip has a known {attribute}; not audited."))
                continue
            if counts["unknown"]:
                out.append(
                    (
                        "missing demographics",
                        f"{corpus}: {counts['unknown']} of {len(rows)} clips have no {attribute}.",
                    )
                )
            if counts["estimated"]:
                out.append(
                    (
                        "estimated demographics",
                        f"{corpus}: {counts['estimated']} clips have a {attribute} estimated by a model, not "
                        "annotated; audits over it inherit the estimator's own errors and biases.",
                    )
                )
    for r in inputs.tables.get("balance_summary", []):
        ratio, min_share = r.get("imbalance_ratio"), r.get("min_share")
        if r.get("n_labelled") and ratio is None:
            out.append(
                ("imbalanced classes", f"{r['corpus']}: class {r['smallest_class']} has no clips (ratio undefined).")
            )
        elif ratio is not None and ratio >= th.max_imbalance_ratio.warning:
            out.append(
                (
                    "imbalanced classes",
                    f"{r['corpus']}: {r['largest_class']} has {ratio:.1f} times the clips of {r['smallest_class']}.",
                )
            )
        elif min_share is not None and min_share < th.min_class_share.warning:
            out.append(
                (
                    "imbalanced classes",
                    f"{r['corpus']}: class {r['smallest_class']} is only {_fmt(min_share, 'share')} of the labels.",
                )
            )
    for r in inputs.tables.get("label_dependence", []):
        where = f"{r.get('corpus')} / {r.get('attribute')}"
        if not r.get("testable"):
            out.append(("untestable", f"label dependence on {where} could not be tested: {_fmt(r.get('note'))}."))
        if reason := _dependence_flag(r, th):
            out.append(("label dependence", f"{where}: {reason}."))
    for r in inputs.tables.get("model_parity", []):
        where = f"{r.get('labeler')} on {r.get('corpus')} / {r.get('attribute')}"
        if not r.get("testable"):
            out.append(("untestable", f"model parity of {where} could not be tested: {_fmt(r.get('note'))}."))
        out += [("model parity", f"{where}: {reason}.") for reason in _parity_flags(r, th)]
    dups = inputs.tables.get("near_duplicates", [])
    if dups:
        n = sum(len(r.get("clip_ids") or []) for r in dups)
        out.append(
            ("cross-corpus duplicates", f"{len(dups)} frame groups ({n} clips) appear in more than one corpus.")
        )
    tax = schemas.taxonomy()
    for corpus in inputs.corpora:
        for other in (tax.corpora.get(corpus) or {}).get("overlaps_with", []) or []:
            if other in inputs.corpora:
                out.append(
                    (
                        "cross-corpus duplicates",
                        f"{corpus} reuses footage of {other}: split by near-duplicate groups before training on both.",
                    )
                )
    if inputs.gate:
        out += [("gate blocking failure", m) for m in inputs.gate.get("blocking_failures") or []]
        out += [("gate warning", m) for m in inputs.gate.get("warnings") or []]
    return out


# ---------------------------------------------------------------------------------------------------- HTML sections


def _summary_html(inputs: _Inputs, gaps: list[tuple[str, str]]) -> str:
    parts = ['<section id="summary"><h2>Summary</h2>']
    facts = [("Version", inputs.version or "unversioned"), ("Folder", str(inputs.folder))]
    if inputs.gate and inputs.gate.get("dataset_digest"):
        facts.append(("Dataset digest", inputs.gate["dataset_digest"]))
    if inputs.lineage and inputs.lineage.get("published_at"):
        facts.append(("Published", inputs.lineage["published_at"]))
    parts.append(_html_table(["field", "value"], [list(f) for f in facts]))

    summary = {r["corpus"]: r for r in inputs.tables.get("balance_summary", [])}
    quarantined = Counter(r.get("corpus") for r in inputs.quarantine)
    rows = []
    for corpus in inputs.corpora:
        s = summary.get(corpus, {})
        n = len(inputs.corpus_clips(corpus)) if inputs.has_clips else s.get("n_clips")
        rows.append(
            [corpus, n, s.get("n_labelled"), quarantined.get(corpus, 0), s.get("n_classes"), s.get("imbalance_ratio")]
        )
    if rows:
        parts.append("<h3>Clips per corpus</h3>")
        parts.append(_html_table(["corpus", "clips", "labelled", "quarantined", "classes", "imbalance ratio"], rows))
    else:
        parts.append(_note("No clips table in this folder."))

    parts.append("<h3>Quality gate</h3>")
    if inputs.gate is None:
        parts.append(_note("No validation.json: this folder has not been through the quality gate."))
    else:
        ok = bool(inputs.gate.get("success"))
        blocking = inputs.gate.get("blocking_failures") or []
        warnings = inputs.gate.get("warnings") or []
        parts.append(
            f'<p>Outcome: <span class="{"pass" if ok else "fail"}">{"passed" if ok else "FAILED"}</span> '
            f"({_plural(len(blocking), 'blocking failure')}, {_plural(len(warnings), 'warning')})</p>"
        )
        for head, items in (("Blocking failures", blocking), ("Warnings", warnings)):
            if items:
                lis = "".join(f"<li><code>{html.escape(str(m))}</code></li>" for m in items)
                parts.append(f"<h4>{head}</h4><ul>{lis}</ul>")
        if inputs.gate.get("data_docs"):
            parts.append(
                f"<p>Great Expectations Data Docs: <code>{html.escape(str(inputs.gate['data_docs']))}</code></p>"
            )
    if inputs.computed:
        parts.append(_note(f"Computed from the clips (not found in the folder): {', '.join(inputs.computed)}."))
    parts.append('<h3 id="known-gaps">Known biases and gaps</h3>')
    if gaps:
        rows = [[cat, text] for cat, text in gaps]
        parts.append(_html_table(["kind", "finding"], rows))
    else:
        parts.append(_note("None found in the tables this folder holds."))
    parts.append("</section>")
    return "".join(parts)


def _class_html(inputs: _Inputs) -> str:
    parts = ['<section id="class-distribution"><h2>Class distribution</h2>']
    balance = inputs.tables.get("class_balance", [])
    if not balance:
        parts.append(_note("No class_balance table and no clips to compute it from."))
    for corpus in inputs.corpora:
        rows = [r for r in balance if r["corpus"] == corpus]
        if not rows:
            continue
        parts.append(f"<h3>{html.escape(corpus)}</h3>")
        parts.append(_class_bar(inputs, corpus, rows))
        folds = _fold_counts(inputs.corpus_clips(corpus))
        if not folds:
            parts.append(_note(f"{corpus}: no published folds (folds is null for every clip)."))
            continue
        classes = _classes(inputs, corpus)
        extra = sorted({lab for c in folds.values() for lab in c} - set(classes))
        columns = classes + extra
        table_rows = [
            [fold, split, sum(c.values()), *(c.get(lab, 0) for lab in columns)] for (fold, split), c in folds.items()
        ]
        parts.append(f"<h4>Class counts per fold and split ({html.escape(corpus)})</h4>")
        parts.append(_html_table(["fold", "split", "clips", *columns], table_rows))
    parts.append("</section>")
    return "".join(parts)


def _representation_html(inputs: _Inputs) -> str:
    th = inputs.thresholds
    parts = ['<section id="representation"><h2>Demographic representation</h2>']
    rows = inputs.tables.get("representation", [])
    if not rows:
        parts.append(_note("No representation table, and no demographic values in the clips."))
    else:
        parts.append(
            '<p class="legend">Groups below the gate\'s warning share '
            f'<span style="background:#fff1c2">{_fmt(th.min_group_share.warning, "share")} (thin)</span> and '
            f'blocking share <span style="background:#ffd1cc">{_fmt(th.min_group_share.blocking, "share")} '
            "(very thin)</span> are highlighted. Source says where the values came from: annotated by the corpus, "
            "derived from annotations, or estimated by a model.</p>"
        )
        classes = [_thin_level(r["share"], th) for r in rows]
        table_rows = [
            [r["corpus"], r["attribute"], r["group"], r["count"], r["share"], r["sources"], r["n_unknown"], lvl or ""]
            for r, lvl in zip(rows, classes, strict=True)
        ]
        parts.append(
            _html_table(
                ["corpus", "attribute", "group", "count", "share", "source", "unknown", "flag"],
                table_rows,
                kinds=[None, None, None, None, "share", None, None, None],
                row_classes=classes,
            )
        )
    if inputs.clips:
        parts.append("<h3>Where the demographic values came from</h3>")
        src_rows = []
        for corpus in inputs.corpora:
            rows_c = inputs.corpus_clips(corpus)
            for attribute in inputs.attributes:
                c = _source_counts(rows_c, attribute)
                src_rows.append([corpus, attribute, *(c.get(s, 0) for s in SOURCES), c["unrecorded"], c["unknown"]])
        parts.append(_html_table(["corpus", "attribute", *SOURCES, "source unrecorded", "unknown value"], src_rows))
    parts.append("</section>")
    return "".join(parts)


def _class_share_html(inputs: _Inputs) -> str:
    parts = ['<section id="class-share"><h2>Class share per group</h2>']
    parts.append(
        _note(
            "Share of each group's human-labelled clips that carry each class, from the clips table. A group whose "
            "bars differ from the others' is portrayed or annotated with a different mix of emotions."
        )
    )
    drew = False
    for corpus in inputs.corpora:
        rows = inputs.corpus_clips(corpus)
        classes = _classes(inputs, corpus)
        for attribute in _attributes(inputs, corpus):
            by_group = _class_share_by_group(rows, attribute)
            if not by_group or not classes:
                continue
            series: dict[str, list[float | None]] = {
                f"{g} (n={sum(c.values())})": [c.get(lab, 0) / sum(c.values()) for lab in classes]
                for g, c in by_group.items()
            }
            alt = (
                f"Grouped bar chart: share of each class within each {attribute} group of {corpus} "
                f"({', '.join(by_group)})"
            )
            parts.append(f"<h3>{html.escape(corpus)}: {html.escape(attribute)}</h3>")
            parts.append(
                _grouped_bar(
                    inputs,
                    f"class_share/{corpus}/{attribute}",
                    classes,
                    series,
                    labels=(f"{corpus}: class share by {attribute}", "share of the group's clips", alt),
                    ymax=None,
                )
            )
            drew = True
    if not drew:
        parts.append(_note("No corpus has both human labels and a known demographic attribute."))
    dep = inputs.tables.get("label_dependence")
    parts.append("<h3>Label dependence on demographics</h3>")
    if dep is None:
        parts.append(_note("No label_dependence table in this folder."))
    else:
        th = inputs.thresholds
        table_rows = [
            [
                r.get("corpus"),
                r.get("attribute"),
                r.get("n_clips"),
                r.get("chi2"),
                r.get("dof"),
                r.get("p_value"),
                r.get("cramers_v"),
                r.get("max_gap"),
                r.get("max_gap_class"),
                r.get("max_gap_groups"),
                r.get("max_gap_shares"),
                r.get("testable"),
                r.get("attribute_sources"),
                r.get("note"),
            ]
            for r in dep
        ]
        parts.append(
            _html_table(
                [
                    "corpus",
                    "attribute",
                    "clips",
                    "chi2",
                    "dof",
                    "p",
                    "Cramér's V",
                    "largest gap",
                    "class",
                    "groups",
                    "shares",
                    "testable",
                    "attribute sources",
                    "note",
                ],
                table_rows,
                kinds=[None, None, None, None, None, "p", None, "share", None, None, None, None, None, None],
                row_classes=["flag" if _dependence_flag(r, th) else None for r in dep],
            )
        )
        parts.append(
            _note(
                f"Highlighted: Cramér's V at or above {th.max_cramers_v.warning} with p below {P_LEVEL}, or a class "
                f"share gap at or above {_fmt(th.max_class_gap.warning, 'share')} (the gate's warning levels)."
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _parity_html(inputs: _Inputs) -> str:
    parts = ['<section id="model-parity"><h2>Model parity</h2>']
    parity = inputs.tables.get("model_parity")
    if parity is None:
        parts.append(_note("No model_parity table in this folder."))
        parts.append("</section>")
        return "".join(parts)
    for r in parity:
        recall = _as_dict(r.get("recall_per_group"))
        if not recall:
            continue
        groups = sorted(recall)
        series: dict[str, list[float | None]] = {"recall (UAR)": [recall[g] for g in groups]}
        if neg := _as_dict(r.get("negative_rate_per_group")):
            series["negative-emotion rate"] = [neg.get(g) for g in groups]
        if face := _as_dict(r.get("face_hit_rate_per_group")):
            series["face hit rate"] = [face.get(g) for g in groups]
        corpus, labeler, attribute = str(r.get("corpus")), str(r.get("labeler")), str(r.get("attribute"))
        alt = f"Bar chart of {labeler} recall per {attribute} group on {corpus}: " + ", ".join(
            f"{g} {_fmt(recall[g])}" for g in groups
        )
        parts.append(f"<h3>{html.escape(labeler)} | {html.escape(corpus)} | {html.escape(attribute)}</h3>")
        parts.append(
            _grouped_bar(
                inputs,
                f"parity/{corpus}/{labeler}/{attribute}",
                groups,
                series,
                labels=(
                    f"{labeler} on {corpus}: per-{attribute} rates (recall ratio {_fmt(r.get('recall_ratio'))})",
                    "rate",
                    alt,
                ),
            )
        )
    table_rows = [
        [
            r.get("corpus"),
            r.get("labeler"),
            r.get("attribute"),
            _as_dict(r.get("n_per_group")),
            _as_dict(r.get("recall_per_group")),
            r.get("recall_ratio"),
            r.get("worst_group"),
            r.get("demographic_parity_ratio"),
            r.get("equalized_odds_difference"),
            _as_dict(r.get("face_hit_rate_per_group")),
            r.get("face_hit_ratio"),
            r.get("testable"),
            r.get("note"),
        ]
        for r in parity
    ]
    th = inputs.thresholds
    parts.append(
        _html_table(
            [
                "corpus",
                "labeler",
                "attribute",
                "clips per group",
                "recall per group",
                "recall ratio",
                "worst group",
                "demographic parity ratio",
                "equalized odds difference",
                "face hit rate per group",
                "face hit ratio",
                "testable",
                "note",
            ],
            table_rows,
            row_classes=["flag" if _parity_flags(r, th) else None for r in parity],
        )
    )
    parts.append(
        _note(
            f"Highlighted: recall ratio below {th.min_recall_ratio.warning} (the four-fifths rule), demographic "
            f"parity ratio below {th.min_parity_ratio.warning}, equalized odds difference above "
            f"{th.max_equalized_odds_difference.warning} or face hit ratio below {th.min_face_hit_ratio.warning}."
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _agreement_html(inputs: _Inputs) -> str:
    parts = ['<section id="agreement"><h2>Agreement with human labels</h2>']
    rows = inputs.tables.get("agreement")
    if rows is None:
        parts.append(_note("No agreement table in this folder."))
    else:
        parts.append(
            _html_table(
                ["corpus", "labeler", "clips", "answered", "coverage", "WAR", "UAR", "kappa"],
                [
                    [
                        r.get("corpus"),
                        r.get("labeler"),
                        r.get("n_clips"),
                        r.get("n_answered"),
                        r.get("coverage"),
                        r.get("war"),
                        r.get("uar"),
                        r.get("kappa"),
                    ]
                    for r in rows
                ],
                kinds=[None, None, None, None, "share", None, None, None],
            )
        )
        parts.append(_note("WAR: accuracy; UAR: mean per-class recall; an abstention counts as wrong in both."))
    for path in inputs.confusion:
        name = f"confusion/{path.stem}"
        parts.append(_img_tag(name, path.read_bytes(), f"Confusion matrix {path.stem}", path.name))
    parts.append("</section>")
    return "".join(parts)


def _html(inputs: _Inputs, title: str, gaps: list[tuple[str, str]]) -> str:
    body = [
        _summary_html(inputs, gaps),
        _class_html(inputs),
        _representation_html(inputs),
        _class_share_html(inputs),
        _parity_html(inputs),
        _agreement_html(inputs),
    ]
    nav = "".join(
        f'<li><a href="#{a}">{html.escape(t)}</a></li>'
        for a, t in (
            ("summary", "Summary"),
            ("known-gaps", "Known biases and gaps"),
            ("class-distribution", "Class distribution"),
            ("representation", "Demographic representation"),
            ("class-share", "Class share per group"),
            ("model-parity", "Model parity"),
            ("agreement", "Agreement with human labels"),
        )
    )
    heading = html.escape(title) + (f" {EMPTY} {html.escape(inputs.version)}" if inputs.version else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}</title><style>{_CSS}</style></head><body>"
        f"<h1>{heading}</h1><nav><ul>{nav}</ul></nav>{''.join(body)}"
        f'<footer class="note"><p>{html.escape(EU_AI_ACT)}</p><p>{html.escape(CONTESTED_SCIENCE)}</p></footer>'
        "</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------------- datasheet


def _datasheet(inputs: _Inputs, title: str, gaps: list[tuple[str, str]]) -> str:
    tax = schemas.taxonomy()
    corpora = inputs.corpora
    md: list[str] = [f"# Datasheet: {title}" + (f" {inputs.version}" if inputs.version else ""), ""]
    if inputs.gate and inputs.gate.get("dataset_digest"):
        md += [f"Dataset digest: `{inputs.gate['dataset_digest']}`", ""]

    md += [
        "## Motivation",
        "",
        "This dataset gathers emotion-recognition video and audio corpora into one versioned table of clips with a "
        "single emotion taxonomy (schemas/taxonomy.yaml), the demographics each corpus records and where each value "
        "came from, model labels where configured, and the outcome of a quality gate. It exists to train and "
        "evaluate affective-computing models for research, and to make their class and demographic biases "
        "measurable before anyone relies on them.",
        "",
        "## Composition",
        "",
    ]
    balance = inputs.tables.get("class_balance", [])
    summary = {r["corpus"]: r for r in inputs.tables.get("balance_summary", [])}
    quarantined = Counter(r.get("corpus") for r in inputs.quarantine)
    if corpora:
        rows = []
        for corpus in corpora:
            s = summary.get(corpus, {})
            n = len(inputs.corpus_clips(corpus)) if inputs.has_clips else s.get("n_clips")
            rows.append([corpus, n, s.get("n_labelled"), quarantined.get(corpus, 0), s.get("imbalance_ratio")])
        md += [_md_table(["corpus", "clips", "labelled", "quarantined", "imbalance ratio"], rows), ""]
    else:
        md += ["No clips table was found.", ""]
    for corpus in corpora:
        rows = [[r["label"], r["count"], r["share"]] for r in balance if r["corpus"] == corpus]
        if rows:
            md += [
                f"### Clips per class: {corpus}",
                "",
                _md_table(["class", "clips", "share"], rows, [None, None, "share"]),
                "",
            ]
    if inputs.clips:
        md += ["### Modalities", ""]
        rows = []
        for corpus in corpora:
            c = inputs.corpus_clips(corpus)
            forms = Counter(r.get("media_form") or "unknown" for r in c)
            modality = Counter(r.get("modality") or "unrecorded" for r in c)
            rows.append(
                [
                    corpus,
                    dict(sorted(forms.items())),
                    dict(sorted(modality.items())),
                    sum(1 for r in c if r.get("has_video")),
                    sum(1 for r in c if r.get("has_audio")),
                ]
            )
        md += [_md_table(["corpus", "media form", "modality", "with video", "with audio"], rows), ""]
    if inputs.fused:
        src = Counter(r.get("train_label_source") for r in inputs.fused)
        md += [
            "### Labels",
            "",
            f"Human labels: {src.get('human', 0)} clips; confident model labels: {src.get('model', 0)} clips; "
            f"no label: {src.get('none', 0)} clips (fused_labels).",
            "",
        ]

    md += [
        "## Demographics and their sources",
        "",
        "Each demographic value records where it came from: **annotated** (shipped by the corpus), **derived** "
        "(computed from the corpus's own annotations, e.g. RAVDESS gender from the actor number) or **estimated** "
        "(inferred by a model; an estimate about a person, to be used for auditing only). Unknown values are "
        "counted, never guessed.",
        "",
    ]
    if inputs.clips:
        rows = []
        for corpus in corpora:
            c = inputs.corpus_clips(corpus)
            for attribute in inputs.attributes:
                cnt = _source_counts(c, attribute)
                rows.append([corpus, attribute, *(cnt.get(s, 0) for s in SOURCES), cnt["unrecorded"], cnt["unknown"]])
        md += [_md_table(["corpus", "attribute", *SOURCES, "source unrecorded", "unknown"], rows), ""]
    rep = inputs.tables.get("representation", [])
    if rep:
        rows = [
            [
                r["corpus"],
                r["attribute"],
                r["group"],
                r["count"],
                r["share"],
                r["sources"],
                _thin_level(r["share"], inputs.thresholds) or "",
            ]
            for r in rep
        ]
        md += [
            "### Groups",
            "",
            _md_table(
                ["corpus", "attribute", "group", "clips", "share", "source", "flag"],
                rows,
                [None, None, None, None, "share", None, None],
            ),
            "",
        ]

    md += ["## Collection and licences", ""]
    licences: dict[str, set[str]] = defaultdict(set)
    for r in inputs.clips:
        if r.get("license"):
            licences[r["corpus"]].add(r["license"])
    rows = []
    for corpus in corpora:
        declared = tax.license(corpus) if corpus in tax.corpora else None
        rows.append([corpus, declared, sorted(licences.get(corpus, set()))])
    md += [_md_table(["corpus", "licence (taxonomy)", "licence (clips)"], rows), ""]
    md += [
        *(f"- **{corpus}:** {COLLECTION.get(corpus, 'no description on record.')}" for corpus in corpora),
        "",
        "Portrayed and perceived emotions are not felt emotions. Each corpus keeps its own licence: the dataset may "
        "be used only as every included corpus's licence allows.",
        "",
        "## Intended uses",
        "",
        "- Training and evaluating affective-computing models for research, on data whose subjects consented to "
        "such use and within each corpus's licence.",
        "- Measuring class and demographic imbalance and model disparities (this report) before a model is used.",
        "",
        "## Prohibited and out-of-scope uses",
        "",
        f"- **EU AI Act:** {EU_AI_ACT} Do not use this dataset to build, tune or evaluate such systems for "
        "workplaces or education institutions.",
        f"- **Contested science:** {CONTESTED_SCIENCE} Do not use models trained on it to make decisions about "
        "individuals (hiring, grading, policing, credit, insurance, health) or to claim to read what someone feels.",
        "- Do not identify people, and do not infer the demographics of people from these models; estimated "
        "demographic values serve the audit only.",
        "- Do not redistribute clips of corpora whose licence forbids it.",
        "",
        "## Known biases and gaps",
        "",
    ]
    if gaps:
        md += [f"- **{cat}:** {_md_safe(text)}" for cat, text in gaps]
    else:
        md += ["None found in the tables this folder holds (which does not mean there are none)."]
    for name in ("label_dependence", "model_parity"):
        if name not in inputs.tables:
            md.append(f"- **not measured:** no {name} table was available, so it is not audited here.")
    md.append("")
    if inputs.gate is not None:
        ok = "passed" if inputs.gate.get("success") else "FAILED"
        md += [
            "## Quality gate",
            "",
            f"The gate {ok} with {_plural(len(inputs.gate.get('blocking_failures') or []), 'blocking failure')} "
            f"and {_plural(len(inputs.gate.get('warnings') or []), 'warning')} (listed above).",
            "",
        ]
    return "\n".join(md)


# ---------------------------------------------------------------------------------------------------- entry point


def render(
    folder: pathlib.Path,
    out_dir: pathlib.Path,
    tables: dict[str, pa.Table] | None = None,
    title: str = "emopipe bias audit",
    version: str | None = None,
    *,
    thresholds: ValidateConfig | None = None,
) -> dict[str, pathlib.Path]:
    """Write the bias report and the datasheet of a validated or published dataset folder.

    Args:
        folder: the dataset folder (clips.parquet, validation.json, reports/, ...); every file in it is optional.
        out_dir: where to write; created.
        tables: metric tables to use instead of the folder's, by name: class_balance, balance_summary,
            representation, label_dependence, model_parity, agreement, near_duplicates.
        title: the report's title.
        version: the dataset version to print; None takes it from a published version's lineage.json if any.
        thresholds: the gate thresholds that mark thin groups and imbalanced classes; None: the defaults.

    Returns:
        {"html": bias_report.html, "datasheet": datasheet.md}, plus "plots": the folder holding every plot as a
        PNG when there is at least one.
    """
    folder, out_dir = pathlib.Path(folder), pathlib.Path(out_dir)
    inputs = _load(folder, tables, version, thresholds or ValidateConfig())
    gaps = findings(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / HTML_FILE
    html_path.write_text(_html(inputs, title, gaps), encoding="utf-8")
    datasheet_path = out_dir / DATASHEET_FILE
    datasheet_path.write_text(_datasheet(inputs, title, gaps), encoding="utf-8")
    out: dict[str, pathlib.Path] = {"html": html_path, "datasheet": datasheet_path}
    if inputs.plots:
        plots = out_dir / PLOTS_DIR
        plots.mkdir(exist_ok=True)
        for name, data in inputs.plots:
            (plots / f"{_slug(name.replace('/', '__'))}.png").write_bytes(data)
        out["plots"] = plots
    return out


def render_dataset(
    ds: Any,
    out_dir: pathlib.Path,
    tables: dict[str, pa.Table] | None = None,
    *,
    gate: Any = None,
    version: str | None = None,
    title: str = "emopipe bias audit",
    thresholds: ValidateConfig | None = None,
) -> dict[str, pathlib.Path]:
    """Write the bias report and the datasheet of a dataset (emopipe.dataset.Dataset), from its tables as read."""
    thresholds = thresholds or ValidateConfig()
    inputs = _load(ds.path, tables, version, thresholds)
    attributes = _simple_attributes(thresholds)
    clips_table = ds.clips
    wanted = ["corpus", "label", "folds", "license", "media_form", "modality", "has_video", "has_audio"]
    wanted += [c for a in attributes for c in (a, f"{a}_source")]
    inputs.clips = clips_table.select([c for c in wanted if c in clips_table.column_names]).to_pylist()
    for row in inputs.clips:
        for column in wanted:
            row.setdefault(column, None)
    inputs.has_clips = True
    inputs.quarantine = ds.quarantine.to_pylist()
    inputs.fused = ds.fused_labels.to_pylist() if ds.fused_labels is not None else []
    if gate is not None:
        inputs.gate = gate.to_dict() if hasattr(gate, "to_dict") else dict(gate)
    lineage = ds.lineage
    inputs.lineage = lineage
    inputs.version = version or (lineage or {}).get("version")
    for name in ("class_balance", "balance_summary", "representation"):
        if name in inputs.computed and tables and name in tables:
            inputs.tables[name] = tables[name].to_pylist()
    gaps = findings(inputs)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / HTML_FILE
    html_path.write_text(_html(inputs, title, gaps), encoding="utf-8")
    datasheet_path = out_dir / DATASHEET_FILE
    datasheet_path.write_text(_datasheet(inputs, title, gaps), encoding="utf-8")
    out: dict[str, pathlib.Path] = {"html": html_path, "datasheet": datasheet_path}
    if inputs.plots:
        plots = out_dir / PLOTS_DIR
        plots.mkdir(exist_ok=True)
        for name, data in inputs.plots:
            (plots / f"{_slug(name.replace('/', '__'))}.png").write_bytes(data)
        out["plots"] = plots
    return out
