"""The bias audit of a dataset: a self-contained HTML report and a datasheet, laid out by templates.

`render(inputs, out_dir)` takes a `ReportInputs` (the tables and facts of one dataset, however they were read: a
folder, a published version, the dataset object) and writes, besides a plots/ folder with each plot as a PNG file:

- `bias_report.html` (templates/bias_report.html.j2): one page with no external CSS, JS or fonts; every plot is a
  PNG drawn with matplotlib's Agg canvas (`matplotlib.figure.Figure`, never pyplot) and inlined as base64, with an
  `alt` text, a caption and a `data-plot="<name>"` attribute. The template autoescapes every value.
- `datasheet.md` (templates/datasheet.md.j2): a "Datasheet for Datasets"-style account (Gebru et al. 2021):
  motivation, composition, demographics and where each value came from (annotated, derived or estimated), collection
  and licences, intended and prohibited uses, and the known biases and gaps computed from the tables.

A generated corpus (`synthetic`) is said to be generated at the top of both and in its collection notes; the gate's
messages are shown in words and the report links the offline validation page (quality/page.py). Python computes the
context here; the templates only lay it out. `render_folder(folder, out_dir)` builds the inputs from a dataset
folder (clips, quarantine, fused labels, validation.json, reports/<metric>.parquet, source.json, lineage.json).
Every input is optional: a section whose input is missing says so instead of failing.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import os
import pathlib
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import schemas, templates
from emopipe.config import ValidateConfig

HTML_FILE = "bias_report.html"
DATASHEET_FILE = "datasheet.md"
VALIDATION_PAGE = "validation.html"  # the gate's offline page, beside validation.json
PLOTS_DIR = "plots"
METRIC_TABLES = (
    "class_balance",
    "balance_summary",
    "representation",
    "label_dependence",
    "model_parity",
    "agreement",
    "near_duplicates",
    "instrument_audit",
    "attribute_coverage",
)
ATTRIBUTES = ("gender", "age_group", "accent")  # demographic columns of clips.yaml, each with a `<name>_source`
SOURCES = ("annotated", "derived", "estimated")
P_LEVEL = 0.05  # a label_dependence association counts only where its p-value is below this
EMPTY = "\N{EM DASH}"
CLASS_COLOUR, THIN_CLASS_COLOUR = "#3b6ea5", "#d9822b"
# (header, label_dependence column, format) of the report's label dependence table
DEPENDENCE_COLUMNS = (
    ("corpus", "corpus", None),
    ("attribute", "attribute", None),
    ("clips", "n_clips", None),
    ("chi2", "chi2", None),
    ("dof", "dof", None),
    ("p", "p_value", "p"),
    ("Cramér's V", "cramers_v", None),
    ("largest gap", "max_gap", "share"),
    ("class", "max_gap_class", None),
    ("groups", "max_gap_groups", None),
    ("shares", "max_gap_shares", None),
    ("most deviating cell", "cell_group", None),
    ("its class", "cell_class", None),
    ("cell share", "cell_share", "share"),
    ("rest's share", "rest_share", "share"),
    ("cell p (corrected)", "cell_p_value", "p"),
    ("testable", "testable", None),
    ("attribute sources", "attribute_sources", None),
    ("note", "note", None),
)
# (header, model_parity column, format) of the report's model parity table
PARITY_COLUMNS = (
    ("corpus", "corpus", None),
    ("labeler", "labeler", None),
    ("attribute", "attribute", None),
    ("attribute sources", "attribute_sources", None),
    ("clips per group", "n_per_group", "map"),
    ("recall per group", "recall_per_group", "map"),
    ("recall ratio", "recall_ratio", None),
    ("worst group", "worst_group", None),
    ("demographic parity ratio", "demographic_parity_ratio", None),
    ("equalized odds difference", "equalized_odds_difference", None),
    ("face hit rate per group", "face_hit_rate_per_group", "map"),
    ("face hit ratio", "face_hit_ratio", None),
    ("testable", "testable", None),
    ("note", "note", None),
)
# (header, instrument_audit column, format) of the report's instrument audit table
INSTRUMENT_COLUMNS = (
    ("estimator", "estimator", None),
    ("attribute", "attribute", None),
    ("corpus", "corpus", None),
    ("true group", "truth_group", None),
    ("clips with a known value", "n_truth", None),
    ("answered", "n_answered", None),
    ("coverage", "coverage", "share"),
    ("accuracy", "accuracy", "share"),
    ("error rate", "error_rate", "share"),
    ("estimated as", "confusions", "map"),
    ("worst emotion label", "max_label_error_label", None),
    ("its error rate", "max_label_error", "share"),
    ("outside the vocabulary", "n_outside_vocabulary", None),
    ("testable", "testable", None),
    ("passed", "passed", None),
    ("note", "note", None),
)
# (header, attribute_coverage column, format) of the report's coverage table of estimated attributes
COVERAGE_COLUMNS = (
    ("corpus", "corpus", None),
    ("attribute", "attribute", None),
    ("clips", "n_clips", None),
    ("given by the corpus", "n_given", None),
    ("their sources", "given_sources", None),
    ("estimated", "n_estimated", None),
    ("estimated groups", "estimated_groups", "map"),
    ("below the confidence threshold", "n_low_confidence", None),
    ("only from estimators kept out", "n_untrusted", None),
    ("unknown", "n_unknown", None),
    ("share unknown", "share_unknown", "share"),
    ("estimators used", "estimators_used", None),
    ("kept out", "estimators_kept_out", None),
)
INFERENCE_LAW = (
    "Estimating a person's gender, age or skin tone from their face or voice processes personal data about them "
    "(GDPR Article 4(1)): it needs a lawful basis (Article 6), transparency towards the people shown, and usually a "
    "data protection impact assessment (Article 35). Skin tone can reveal racial or ethnic origin, a special category "
    "under GDPR Article 9: inferring it is processing special-category data, prohibited unless an exception applies "
    "(explicit consent, Article 9(2)(a), or research with safeguards, Article 9(2)(j) with Article 89(1)). The EU AI "
    "Act prohibits biometric categorisation systems that deduce or infer race, political opinions, trade union "
    "membership, religious or philosophical beliefs, sex life or sexual orientation (Article 5(1)(g); labelling or "
    "filtering lawfully acquired biometric datasets is outside that prohibition), classes other biometric "
    "categorisation by sensitive or protected attributes as high-risk (Annex III, point 1(b)), and lets providers "
    "process special categories exceptionally, with safeguards, where strictly necessary to detect and correct bias "
    "(Article 10(5)). The estimates here serve that bias audit only: they are not facts about anyone, are not "
    "published as such, and must not be used to categorise people."
)
TITLE_POINTS = 12.0  # matplotlib's axes title size ("large" at the default 10 pt)

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
MOTIVATION = (
    "This dataset gathers emotion-recognition video and audio corpora into one versioned table of clips with a "
    "single emotion taxonomy (schemas/taxonomy.yaml), the demographics each corpus records and where each value "
    "came from, model labels where configured, and the outcome of a quality gate. It exists to train and "
    "evaluate affective-computing models for research, and to make their class and demographic biases "
    "measurable before anyone relies on them."
)
MOTIVATION_SYNTHETIC = (
    " Parts of it are generated rather than recorded (see the note above): those parts exercise the pipeline and "
    "its checks, and say nothing about people or their emotions."
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


@dataclass
class ReportInputs:
    """Everything the bias report and the datasheet of one dataset show; every field is optional.

    Args:
        clips: the clips table (schemas/clips.yaml), as read.
        quarantine: the quarantine table.
        fused_labels: one training label per clip (schemas/fused_labels.yaml).
        tables: metric tables by name: class_balance, balance_summary, representation, label_dependence,
            model_parity, agreement, near_duplicates; class balance and representation are computed from the clips
            when missing.
        gate: the gate's result as stored in validation.json (GateResult.to_dict()).
        lineage: a published version's lineage record (lineage.json); its version, run and date are shown.
        version: the version to show; None takes lineage["version"].
        corpora: corpus name -> root folder (never shown: a published report names no local folder).
        synthetic: corpus name -> what was generated, for corpora that are not recordings of people.
        confusion: confusion-matrix PNGs (`<labeler name>__<corpus>.png`, as label_clips writes them).
        thresholds: the gate thresholds that mark thin groups and imbalanced classes.
        validation_page: the gate's offline page (validation.html); the report links it relative to itself.
        audit_clips: the clips as the bias tables count them: trusted estimates joined into the attributes the
            corpus left unknown (emopipe.estimators.audit.with_estimates); None: the clips as they are. Plots,
            source counts and findings read these, and say "estimated" where a value is.
    """

    clips: pa.Table | None = None
    quarantine: pa.Table | None = None
    fused_labels: pa.Table | None = None
    tables: dict[str, pa.Table] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    lineage: dict[str, Any] | None = None
    version: str | None = None
    corpora: dict[str, str] = field(default_factory=dict)
    synthetic: dict[str, str] = field(default_factory=dict)
    confusion: list[pathlib.Path] = field(default_factory=list)
    thresholds: ValidateConfig = field(default_factory=ValidateConfig)
    validation_page: pathlib.Path | None = None
    audit_clips: pa.Table | None = None


@dataclass
class _View:
    """The inputs as rows, with the tables the report computes itself; what every section reads."""

    clips: list[dict[str, Any]]
    has_clips: bool
    quarantine: list[dict[str, Any]]
    fused: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]]
    computed: list[str]
    gate: dict[str, Any] | None
    version: str | None
    lineage: dict[str, Any] | None
    synthetic: dict[str, str]
    confusion: list[pathlib.Path]
    thresholds: ValidateConfig
    plots: list[tuple[str, bytes]] = field(default_factory=list)
    drawn: dict[str, bytes] = field(default_factory=dict)  # figure key -> PNG of a render already in the folder
    keys: dict[str, str] = field(default_factory=dict)  # plot name -> the key of the figure drawn for it

    @property
    def attributes(self) -> tuple[str, ...]:
        """The demographic columns reported: clips.yaml's, any other the gate audits and any estimated one
        (intersections left out)."""
        return _simple_attributes(self.thresholds, self.tables.get("instrument_audit"))

    @property
    def corpora(self) -> list[str]:
        names = {r["corpus"] for r in self.clips}
        for table in ("class_balance", "balance_summary", "representation"):
            names |= {r["corpus"] for r in self.tables.get(table, [])}
        return sorted(names)

    def corpus_clips(self, corpus: str) -> list[dict[str, Any]]:
        return [r for r in self.clips if r["corpus"] == corpus]


@dataclass
class _Cell:
    text: str
    num: bool = False


@dataclass
class _Row:
    cells: list[_Cell]
    cls: str | None = None


@dataclass
class _Table:
    """A table as a template lays it out: headers and rows of formatted cells."""

    headers: list[str]
    rows: list[_Row]


@dataclass
class _Plot:
    name: str
    src: str
    alt: str
    caption: str


# ---------------------------------------------------------------------------------------------------- loading


def _simple_attributes(thresholds: ValidateConfig, audit: list[dict[str, Any]] | None = None) -> tuple[str, ...]:
    estimated = [r["attribute"] for r in audit or []]
    return tuple(dict.fromkeys(a for a in (*ATTRIBUTES, *thresholds.bias_attributes, *estimated) if "*" not in a))


def _as_dict(value: Any) -> dict[str, Any]:
    """A stored map column's value (a list of {key, value} entries, see emopipe.schemas) as a dict."""
    return schemas.as_dict(value)


def _view(inputs: ReportInputs) -> _View:
    from emopipe.stages import balance

    clips_table = inputs.audit_clips if inputs.audit_clips is not None else inputs.clips
    clips: list[dict[str, Any]] = []
    audit = inputs.tables.get("instrument_audit")
    attributes = _simple_attributes(inputs.thresholds, audit.to_pylist() if audit is not None else None)
    if clips_table is not None and "corpus" in clips_table.column_names:
        wanted = ["corpus", "label", "folds", "license", "media_form", "modality", "has_video", "has_audio"]
        wanted += [c for a in attributes for c in (a, f"{a}_source")]
        present = [c for c in wanted if c in clips_table.column_names]
        clips = clips_table.select(present).to_pylist()
        for row in clips:
            for column in wanted:
                row.setdefault(column, None)

    loaded = {name: t.to_pylist() for name, t in inputs.tables.items() if name in METRIC_TABLES and t is not None}
    computed: list[str] = []
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
    lineage = inputs.lineage if isinstance(inputs.lineage, dict) else None
    version = inputs.version or (lineage or {}).get("version")
    return _View(
        clips=clips,
        has_clips=clips_table is not None,
        quarantine=inputs.quarantine.to_pylist() if inputs.quarantine is not None else [],
        fused=inputs.fused_labels.to_pylist() if inputs.fused_labels is not None else [],
        tables=loaded,
        computed=computed,
        gate=inputs.gate if isinstance(inputs.gate, dict) else None,
        version=str(version) if version else None,
        lineage=lineage,
        synthetic=dict(inputs.synthetic),
        confusion=list(inputs.confusion),
        thresholds=inputs.thresholds,
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "plot"


def _table(
    headers: list[str],
    rows: list[list[Any]],
    kinds: list[str | None] | None = None,
    row_classes: list[str | None] | None = None,
) -> _Table:
    kinds = kinds or [None] * len(headers)
    out = []
    for i, row in enumerate(rows):
        cells = [
            _Cell(_fmt(v, k), isinstance(v, int | float) and not isinstance(v, bool))
            for v, k in zip(row, kinds, strict=True)
        ]
        out.append(_Row(cells, row_classes[i] if row_classes else None))
    return _Table(headers, out)


def _columns_table(
    columns: tuple[tuple[str, str, str | None], ...], rows: list[dict[str, Any]], row_classes: list[str | None]
) -> _Table:
    """A table of metric rows laid out by (header, key, kind) columns; "map" cells read an Arrow map as a dict."""
    values = [[_as_dict(r.get(k)) if kind == "map" else r.get(k) for _, k, kind in columns] for r in rows]
    kinds = [kind if kind != "map" else None for _, _, kind in columns]
    return _table([h for h, _, _ in columns], values, kinds=kinds, row_classes=row_classes)


def _md_table(headers: list[str], rows: list[list[Any]], kinds: list[str | None] | None = None) -> dict[str, Any]:
    """Headers and formatted cells for the datasheet's Markdown tables (the template escapes each cell)."""
    kinds = kinds or [None] * len(headers)
    return {"headers": headers, "rows": [[_fmt(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows]}


# ---------------------------------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _title(ax: Any, text: str, width_in: float) -> None:
    """A title wrapped to the figure's width, so a long corpus or labeler name is never cut off."""
    chars = max(24, int(width_in * 72 / (TITLE_POINTS * 0.62)))
    ax.set_title(textwrap.fill(text, width=chars, break_long_words=True), fontsize=TITLE_POINTS)


def _bars(ax: Any, xs: list[float], values: list[float | None], *, width: float, color: Any, label: str | None = None):
    """Bars that stay visible at zero: a zero is a line of the bar's colour on the axis, a missing value "n/a"."""
    heights = [v if v is not None else 0.0 for v in values]
    bars = ax.bar(xs, heights, width=width, color=color, label=label, edgecolor=color, linewidth=1.6)
    for x, v in zip(xs, values, strict=True):
        if v is None:
            ax.annotate(
                "n/a", (x, 0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7, color="#777"
            )
    return bars


def _lift_baseline(ax: Any) -> None:
    """Start the y axis just below zero so a zero bar's line is drawn above the axis, not under it."""
    bottom, top = ax.get_ylim()
    if bottom >= 0:
        ax.set_ylim(-0.02 * (top - bottom), top)


def class_bar_figure(corpus: str, rows: list[dict[str, Any]], warn_share: float) -> Any:
    """The clips per class of one corpus as a bar chart (Figure); classes below the warning share in orange.

    Args:
        corpus: the corpus named in the title.
        rows: its class_balance rows (label, count, share).
        warn_share: the gate's warning share (min_class_share.warning).
    """
    labels = [str(r["label"]) for r in rows]
    counts = [r["count"] for r in rows]
    width = max(5.0, 0.6 * len(labels) + 2.0)
    fig = _figure(width, 3.4)
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        colour = THIN_CLASS_COLOUR if r["share"] < warn_share else CLASS_COLOUR
        _bars(ax, [i], [r["count"]], width=0.8, color=colour)
    for i, c in enumerate(counts):
        ax.annotate(str(c), (i, c), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_ylabel("clips")
    _title(ax, f"{corpus}: clips per class (orange: share below {100 * warn_share:.0f}%)", width)
    ax.margins(y=0.15)
    _lift_baseline(ax)
    return fig


def grouped_bar_figure(
    categories: list[str], series: dict[str, list[float | None]], title: str, ylabel: str, ymax: float | None = 1.0
) -> Any:
    """Bars of each series side by side per category (Figure), the legend beside the axes.

    Args:
        categories: the x positions (classes, groups).
        series: legend label -> one value per category; None is "n/a", 0 is drawn as a line on the axis.
        title: the title, wrapped to the figure's width.
        ylabel: the y axis label.
        ymax: the top of the y axis, or None to fit the data.
    """
    import matplotlib

    n = max(1, len(series))
    bar = 0.8 / n
    width = max(7.5, 0.45 * len(categories) * n + 4.0)  # room for the legend on the right
    fig = _figure(width, 3.6)
    ax = fig.add_subplot()
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * bar for j in range(len(categories))]
        _bars(ax, xs, values, width=bar, color=colours[i % len(colours)], label=label)
    ax.set_xticks(range(len(categories)), categories, rotation=35 if len(categories) > 4 else 0, ha="right")
    ax.set_ylabel(ylabel)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    _lift_baseline(ax)
    _title(ax, title, width * 0.75)  # the legend takes about a quarter of the width
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _png(fig: Any) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


FIGURES_INDEX = "figures.json"  # in plots/: each PNG's figure key, so a render into the same folder reuses it


def _figure_key(build: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    import matplotlib

    spec = repr((build.__name__, args, sorted(kwargs.items()), matplotlib.__version__))
    return hashlib.sha256(spec.encode()).hexdigest()[:32]


def _plot_png(view: _View, name: str, build: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """The PNG of `build(*args, **kwargs)` for the plot `name`: drawn, or taken from the folder's previous render
    when that drew the same figure from the same values (publishing renders the gate's report again with the
    version's name: its figures are the gate's)."""
    key = _figure_key(build, args, kwargs)
    view.keys[name] = key
    if key not in view.drawn:
        view.drawn[key] = _png(build(*args, **kwargs))
    return view.drawn[key]


def _drawn_before(plots: pathlib.Path) -> dict[str, bytes]:
    """Figure key -> PNG bytes of the plots an earlier render left in `plots` (nothing when there is no index)."""
    try:
        index = json.loads((plots / FIGURES_INDEX).read_text(encoding="utf-8"))
        return {key: (plots / file).read_bytes() for file, key in index.items() if "/" not in file}
    except (OSError, ValueError, AttributeError):
        return {}


def _plot(view: _View, name: str, data: bytes, alt: str, caption: str, *, keep: bool = True) -> _Plot:
    """An inline plot for a template; `keep` also writes it to the plots folder."""
    if keep:
        view.plots.append((name, data))
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return _Plot(name, src, alt, caption)


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


def _estimated(rows: list[dict[str, Any]], attribute: str) -> tuple[int, int]:
    """(clips whose value of the attribute, or of any part of an intersection, is estimated; clips with a value)."""
    known = [r for r in rows if _group_value(r, attribute) is not None]
    parts = attribute.split("*")
    return sum(1 for r in known if any(r.get(f"{a}_source") == "estimated" for a in parts)), len(known)


def _estimated_words(n_estimated: int, n_known: int, attribute: str) -> str:
    """A caption's sentence on how much of an attribute a model estimated ("" when none of it)."""
    if not n_estimated:
        return ""
    how = "all" if n_estimated == n_known else f"{n_estimated} of {n_known}"
    return (
        f" The {attribute} of {how} of these clips is estimated by a model (estimated), not recorded by the corpus: "
        "see the instrument audit for how well the estimator did where it could be checked."
    )


def _attributes(view: _View, corpus: str) -> list[str]:
    """Demographic attributes (and intersections) with at least one known value in the corpus."""
    rows = view.corpus_clips(corpus)
    known = [a for a in view.attributes if any(r.get(a) is not None for r in rows)]
    audited = [a for a in view.thresholds.bias_attributes if a in known]
    crossed = [f"{a}*{b}" for a, b in itertools.combinations(audited, 2)]  # pairs, as the bias code crosses them
    crossed += [r["attribute"] for r in view.tables.get("label_dependence", []) if "*" in str(r.get("attribute"))]
    crossed = [a for a in dict.fromkeys(crossed) if any(_group_value(r, a) is not None for r in rows)]
    return known + crossed


def _classes(view: _View, corpus: str) -> list[str]:
    ordered = [r["label"] for r in view.tables.get("class_balance", []) if r["corpus"] == corpus]
    present = {r["label"] for r in view.corpus_clips(corpus) if r["label"] is not None}
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
    cell, cp = r.get("cell_gap"), r.get("cell_p_value")
    if r.get("testable") and cell is not None and cp is not None and cp < P_LEVEL and cell >= th.max_class_gap.warning:
        reasons.append(
            f"group {_fmt(r.get('cell_group'))} is labelled {_fmt(r.get('cell_class'))} in "
            f"{_fmt(r.get('cell_share'), 'share')} of its clips against {_fmt(r.get('rest_share'), 'share')} for "
            f"every other group (p {_fmt(cp, 'p')}, corrected for the number of cells)"
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


def _verdicts(view: _View) -> list[dict[str, Any]]:
    """One instrument_audit row per estimator: its overall row (every corpus, every group), with the verdict."""
    return [r for r in view.tables.get("instrument_audit", []) if r["corpus"] == "ALL" and r["truth_group"] == "ALL"]


def findings(view: _View) -> list[tuple[str, str]]:
    """Known biases and gaps as (category, sentence), computed from the tables."""
    th = view.thresholds
    out: list[tuple[str, str]] = [
        (
            "generated data",
            f"{corpus} is generated, not recorded from people; its labels, demographics and biases describe the "
            "generator, not a population.",
        )
        for corpus in sorted(view.synthetic)
    ]
    for r in _verdicts(view):
        who = f"{r['estimator']} ({r['attribute']}, from the {'face crops' if r['kind'] == 'face' else 'audio'})"
        if r["trusted"]:
            out.append(("estimated demographics", f"{who} estimates {r['attribute']} where a corpus records none: "
                        f"{r['verdict']}."))  # fmt: skip
        else:
            out.append(("estimator kept out", f"{who} failed its instrument audit: {r['verdict']}."))
    for r in view.tables.get("attribute_coverage", []):
        if r["n_estimated"] or r["n_low_confidence"] or r["n_untrusted"]:
            out.append(
                (
                    "estimated demographics",
                    f"{r['corpus']}: {r['attribute']} estimated for {r['n_estimated']} of {r['n_clips']} clips; "
                    f"{_fmt(r['share_unknown'], 'share')} left unknown ({r['n_low_confidence']} below the confidence "
                    f"threshold, {r['n_untrusted']} estimated only by estimators kept out).",
                )
            )
    for r in view.tables.get("representation", []):
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
    for corpus in view.corpora:
        rows = view.corpus_clips(corpus)
        for attribute in view.attributes:
            counts = _source_counts(rows, attribute)
            if not rows:
                continue
            if counts["unknown"] == len(rows):
                if attribute in view.thresholds.bias_attributes:
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
    for r in view.tables.get("balance_summary", []):
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
    for r in view.tables.get("label_dependence", []):
        where = f"{r.get('corpus')} / {r.get('attribute')}"
        if not r.get("testable"):
            out.append(("untestable", f"label dependence on {where} could not be tested: {_fmt(r.get('note'))}."))
        if reason := _dependence_flag(r, th):
            out.append(("label dependence", f"{where}: {reason}."))
    for r in view.tables.get("model_parity", []):
        where = f"{r.get('labeler')} on {r.get('corpus')} / {r.get('attribute')}"
        if not r.get("testable"):
            out.append(("untestable", f"model parity of {where} could not be tested: {_fmt(r.get('note'))}."))
        out += [("model parity", f"{where}: {reason}.") for reason in _parity_flags(r, th)]
    dups = view.tables.get("near_duplicates", [])
    if dups:
        n = sum(len(r.get("clip_ids") or []) for r in dups)
        out.append(
            ("cross-corpus duplicates", f"{len(dups)} frame groups ({n} clips) appear in more than one corpus.")
        )
    tax = schemas.taxonomy()
    for corpus in view.corpora:
        for other in (tax.corpora.get(corpus) or {}).get("overlaps_with", []) or []:
            if other in view.corpora:
                out.append(
                    (
                        "cross-corpus duplicates",
                        f"{corpus} reuses footage of {other}: split by near-duplicate groups before training on both.",
                    )
                )
    if view.gate:
        out += [("gate blocking failure", m) for m in view.gate.get("blocking_failures") or []]
        out += [("gate warning", m) for m in view.gate.get("warnings") or []]
    return out


# ---------------------------------------------------------------------------------------------------- sections


def _summary(view: _View, gaps: list[tuple[str, str]], validation_href: str | None) -> dict[str, Any]:
    lineage = view.lineage or {}
    facts: list[list[Any]] = [["Version", view.version or "not published yet (a version is assigned at publication)"]]
    if lineage.get("published_at"):
        facts.append(["Published", lineage["published_at"]])
    if lineage.get("run_id"):
        facts.append(["Run", lineage["run_id"]])
    if lineage.get("code_version"):
        facts.append(["Code version", lineage["code_version"]])
    digest = (view.gate or {}).get("dataset_digest") or lineage.get("dataset_digest")
    if digest:
        facts.append(["Dataset digest", digest])
    if view.corpora:
        facts.append(["Corpora", ", ".join(f"{c} (generated)" if c in view.synthetic else c for c in view.corpora)])

    summary = {r["corpus"]: r for r in view.tables.get("balance_summary", [])}
    quarantined = Counter(r.get("corpus") for r in view.quarantine)
    rows = []
    for corpus in view.corpora:
        s = summary.get(corpus, {})
        n = len(view.corpus_clips(corpus)) if view.has_clips else s.get("n_clips")
        rows.append(
            [corpus, n, s.get("n_labelled"), quarantined.get(corpus, 0), s.get("n_classes"), s.get("imbalance_ratio")]
        )
    gate = None
    if view.gate is not None:
        blocking = [str(m) for m in view.gate.get("blocking_failures") or []]
        warnings = [str(m) for m in view.gate.get("warnings") or []]
        gate = {
            "ok": bool(view.gate.get("success")),
            "counts": f"{_plural(len(blocking), 'blocking failure')}, {_plural(len(warnings), 'warning')}",
            "blocking": blocking,
            "warnings": warnings,
            "validation_href": validation_href,
            "data_docs": view.gate.get("data_docs"),
        }
    return {
        "facts": _table(["field", "value"], facts),
        "corpora": _table(["corpus", "clips", "labelled", "quarantined", "classes", "imbalance ratio"], rows)
        if rows
        else None,
        "gate": gate,
        "computed": f"Computed from the clips (not found with the dataset): {', '.join(view.computed)}."
        if view.computed
        else None,
        "gaps": _table(["kind", "finding"], [[cat, text] for cat, text in gaps]) if gaps else None,
    }


def _classes_section(view: _View) -> dict[str, Any]:
    balance = view.tables.get("class_balance", [])
    warn = view.thresholds.min_class_share.warning
    out: list[dict[str, Any]] = []
    for corpus in view.corpora:
        rows = [r for r in balance if r["corpus"] == corpus]
        if not rows:
            continue
        alt = f"Bar chart of clips per class in {corpus}: " + ", ".join(f"{r['label']} {r['count']}" for r in rows)
        caption = (
            f"Clips per class in {corpus}, {sum(r['count'] for r in rows)} labelled in all; orange bars are "
            f"classes below {100 * warn:.0f}% of them, a class with no clips is a line on the axis."
        )
        name = f"class_distribution/{corpus}"
        plot = _plot(view, name, _plot_png(view, name, class_bar_figure, corpus, rows, warn), alt, caption)
        folds = _fold_counts(view.corpus_clips(corpus))
        table = None
        if folds:
            classes = _classes(view, corpus)
            extra = sorted({lab for c in folds.values() for lab in c} - set(classes))
            columns = classes + extra
            table = _table(
                ["fold", "split", "clips", *columns],
                [
                    [fold, split, sum(c.values()), *(c.get(lab, 0) for lab in columns)]
                    for (fold, split), c in folds.items()
                ],
            )
        out.append({"name": corpus, "plot": plot, "folds": table})
    return {"empty": None if balance else "No class_balance table and no clips to compute it from.", "corpora": out}


def _representation_section(view: _View) -> dict[str, Any]:
    th = view.thresholds
    rows = view.tables.get("representation", [])
    table = None
    if rows:
        classes = [_thin_level(r["share"], th) for r in rows]
        table = _table(
            ["corpus", "attribute", "group", "count", "share", "source", "unknown", "flag"],
            [
                [
                    r["corpus"],
                    r["attribute"],
                    r["group"],
                    r["count"],
                    r["share"],
                    r["sources"],
                    r["n_unknown"],
                    lvl or "",
                ]
                for r, lvl in zip(rows, classes, strict=True)
            ],
            kinds=[None, None, None, None, "share", None, None, None],
            row_classes=classes,
        )
    sources = None
    if view.clips:
        src_rows = []
        for corpus in view.corpora:
            rows_c = view.corpus_clips(corpus)
            for attribute in view.attributes:
                c = _source_counts(rows_c, attribute)
                src_rows.append([corpus, attribute, *(c.get(s, 0) for s in SOURCES), c["unrecorded"], c["unknown"]])
        sources = _table(["corpus", "attribute", *SOURCES, "source unrecorded", "unknown value"], src_rows)
    return {
        "table": table,
        "sources": sources,
        "warn": _fmt(th.min_group_share.warning, "share"),
        "block": _fmt(th.min_group_share.blocking, "share"),
    }


def _class_share_section(view: _View) -> dict[str, Any]:
    plots = []
    for corpus in view.corpora:
        rows = view.corpus_clips(corpus)
        classes = _classes(view, corpus)
        for attribute in _attributes(view, corpus):
            by_group = _class_share_by_group(rows, attribute)
            if not by_group or not classes:
                continue
            series: dict[str, list[float | None]] = {
                f"{g} (n={sum(c.values())})": [c.get(lab, 0) / sum(c.values()) for lab in classes]
                for g, c in by_group.items()
            }
            n_est, n_known = _estimated([r for r in rows if r["label"] is not None], attribute)
            mark = " (estimated)" if n_est else ""
            alt = (
                f"Grouped bar chart: share of each class within each {attribute}{mark} group of {corpus} "
                f"({', '.join(by_group)})"
            )
            caption = (
                f"Share of each class among the human-labelled clips of each {attribute} group in {corpus}; a class "
                "a group has no clips of is a line on the axis." + _estimated_words(n_est, n_known, attribute)
            )
            name = f"class_share/{corpus}/{attribute}"
            title = f"{corpus}: class share by {attribute}{mark}"
            ylabel = "share of the group's clips"
            png = _plot_png(view, name, grouped_bar_figure, classes, series, title, ylabel, ymax=None)
            plots.append({"heading": f"{corpus}: {attribute}{mark}", "plot": _plot(view, name, png, alt, caption)})
    dep = view.tables.get("label_dependence")
    th = view.thresholds
    table = None
    if dep is not None:
        table = _columns_table(DEPENDENCE_COLUMNS, dep, ["flag" if _dependence_flag(r, th) else None for r in dep])
    return {
        "plots": plots,
        "dependence": table,
        "dependence_note": f"Highlighted: Cramér's V at or above {th.max_cramers_v.warning} with p below {P_LEVEL}, "
        f"or a class share gap at or above {_fmt(th.max_class_gap.warning, 'share')} (the gate's warning levels), "
        "also for the one cell that differs most from all other groups where that difference is significant after "
        "correcting for the number of cells (intersections: a bias in one gender x age cell). Attribute sources say "
        "where the values came from; 'estimated' rows count values a model estimated (see the instrument audit).",
    }


def _parity_section(view: _View) -> dict[str, Any]:
    parity = view.tables.get("model_parity")
    th = view.thresholds
    if parity is None:
        return {"table": None, "plots": [], "note": ""}
    plots = []
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
        mark = " (estimated)" if "estimated" in str(r.get("attribute_sources") or "").split(",") else ""
        alt = f"Bar chart of {labeler} recall per {attribute}{mark} group on {corpus}: " + ", ".join(
            f"{g} {_fmt(recall[g])}" for g in groups
        )
        caption = (
            f"{labeler} on {corpus}, per {attribute} group: recall against the human labels, how often it predicts "
            "a negative emotion, and how often the face detector found a face "
            f"(recall ratio {_fmt(r.get('recall_ratio'))})."
        )
        if mark:
            caption += (
                f" Some or all {attribute} values are estimated by a model (sources: {r.get('attribute_sources')}); "
                "see the instrument audit."
            )
        title = f"{labeler} on {corpus}: per-{attribute}{mark} rates (recall ratio {_fmt(r.get('recall_ratio'))})"
        name = f"parity/{corpus}/{labeler}/{attribute}"
        png = _plot_png(view, name, grouped_bar_figure, groups, series, title, "rate")
        plots.append(
            {"heading": f"{labeler} | {corpus} | {attribute}{mark}", "plot": _plot(view, name, png, alt, caption)}
        )
    table = _columns_table(PARITY_COLUMNS, parity, ["flag" if _parity_flags(r, th) else None for r in parity])
    note = (
        f"Highlighted: recall ratio below {th.min_recall_ratio.warning} (the four-fifths rule), demographic "
        f"parity ratio below {th.min_parity_ratio.warning}, equalized odds difference above "
        f"{th.max_equalized_odds_difference.warning} or face hit ratio below {th.min_face_hit_ratio.warning}."
    )
    return {"table": table, "plots": plots, "note": note}


def _reason(verdict: str) -> str:
    """A verdict without its leading "trusted: " or "kept out of the bias tables: " (the page says that itself)."""
    for prefix in ("trusted: ", "kept out of the bias tables: "):
        if verdict.startswith(prefix):
            return verdict[len(prefix) :]
    return verdict


def _instrument_section(view: _View) -> dict[str, Any]:
    rows = view.tables.get("instrument_audit") or []
    th = view.thresholds
    if not rows:
        return {"verdicts": [], "table": None, "plots": [], "coverage": None, "note": "", "law": INFERENCE_LAW}
    verdicts = [
        {"estimator": r["estimator"], "attribute": r["attribute"], "kind": r["kind"], "trusted": r["trusted"],
         "text": _reason(r["verdict"]), "verdict": r["verdict"], "threshold": f"{r['min_confidence']:g}"}
        for r in _verdicts(view)
    ]  # fmt: skip
    plots = []
    for v in verdicts:
        groups = [r for r in rows if r["estimator"] == v["estimator"] and r["corpus"] == "ALL"]
        groups = [r for r in groups if r["truth_group"] != "ALL"]
        if not groups:
            continue
        names = [str(r["truth_group"]) for r in groups]
        series: dict[str, list[float | None]] = {
            "error rate": [r["error_rate"] for r in groups],
            "coverage": [r["coverage"] for r in groups],
        }
        verdict = "trusted" if v["trusted"] else "kept out"
        title = f"{v['estimator']}: estimated {v['attribute']} vs the known value, per true group ({verdict})"
        alt = f"Bar chart of the error rate of {v['estimator']} per true {v['attribute']} group: " + ", ".join(
            f"{r['truth_group']} {_fmt(r['error_rate'])}" for r in groups
        )
        caption = (
            f"Instrument audit of {v['estimator']} on every corpus that records {v['attribute']}: per true group, the "
            f"share of its answered clips estimated wrong, and the share it answered at confidence >= "
            f"{v['threshold']}. Above {_fmt(th.max_estimator_group_error.blocking, 'share')} for one group keeps its "
            f"estimates out of the bias tables. Verdict: {v['verdict']}."
        )
        name = f"instrument/{v['estimator']}"
        plots.append(
            _plot(view, name, _plot_png(view, name, grouped_bar_figure, names, series, title, "rate"), alt, caption)
        )
    table = _columns_table(INSTRUMENT_COLUMNS, rows, ["flag" if r["passed"] is False else None for r in rows])
    cov = view.tables.get("attribute_coverage") or []
    coverage = _columns_table(COVERAGE_COLUMNS, cov, [None] * len(cov)) if cov else None
    note = (
        f"An estimator is trusted only when its accuracy is at least {_fmt(th.min_estimator_accuracy.blocking)}, "
        f"its error rate for every true group and every emotion label at most "
        f"{_fmt(th.max_estimator_group_error.blocking)}, on rows of at least {th.min_estimator_group_count} answered "
        "clips, and every value it estimates was checked on that many clips of that true group. Only annotated or "
        "derived values count as truth. Highlighted: rows that failed."
    )
    return {"verdicts": verdicts, "table": table, "plots": plots, "coverage": coverage, "note": note,
            "law": INFERENCE_LAW}  # fmt: skip


def _confusion_caption(stem: str, agreement: list[dict[str, Any]]) -> tuple[str, str]:
    """(alt, caption) of a confusion matrix named `<labeler name>__<corpus>`, from its agreement row."""
    name, _, corpus = stem.rpartition("__")
    row = next(
        (r for r in agreement if str(r.get("labeler", "")).split("@")[0] == name and r.get("corpus") == corpus), None
    )
    if not name or row is None:
        who = stem.replace("__", " on ").replace("_", " ")
        return f"Confusion matrix: {who}", f"Confusion matrix of {who} against the human labels."
    where = "every corpus together" if corpus == "ALL" else corpus
    caption = (
        f"Confusion matrix of {row['labeler']} on {where}: rows are the human labels, columns the model's answers "
        f"(abstentions last); WAR {_fmt(row.get('war'))}, UAR {_fmt(row.get('uar'))} over "
        f"{_plural(int(row.get('n_clips') or 0), 'human-labelled clip')}."
    )
    return f"Confusion matrix of {row['labeler']} on {where}", caption


def _agreement_section(view: _View) -> dict[str, Any]:
    rows = view.tables.get("agreement")
    table = None
    if rows is not None:
        table = _table(
            ["corpus", "labeler", "clips", "answered", "coverage", "WAR", "UAR", "kappa"],
            [
                [r.get(k) for k in ("corpus", "labeler", "n_clips", "n_answered", "coverage", "war", "uar", "kappa")]
                for r in rows
            ],
            kinds=[None, None, None, None, "share", None, None, None],
        )
    plots = []
    for path in view.confusion:
        alt, caption = _confusion_caption(path.stem, rows or [])
        plots.append(_plot(view, f"confusion/{path.stem}", path.read_bytes(), alt, caption, keep=False))
    return {"table": table, "plots": plots}


NAV = (
    ("summary", "Summary"),
    ("known-gaps", "Known biases and gaps"),
    ("class-distribution", "Class distribution"),
    ("representation", "Demographic representation"),
    ("instrument-audit", "Estimated attributes"),
    ("class-share", "Class share per group"),
    ("model-parity", "Model parity"),
    ("agreement", "Agreement with human labels"),
)


def _synthetic_notes(view: _View) -> list[dict[str, str]]:
    return [
        {
            "corpus": corpus,
            "text": f"{corpus} is generated, not recorded from people: {text} Its labels, demographics and any bias "
            "measured on it describe the generator, not a population.",
        }
        for corpus, text in sorted(view.synthetic.items())
    ]


def _html(view: _View, title: str, gaps: list[tuple[str, str]], validation_href: str | None) -> str:
    heading = title + (f" {EMPTY} {view.version}" if view.version else "")
    context = {
        "heading": heading,
        "nav": NAV,
        "synthetic": _synthetic_notes(view),
        "summary": _summary(view, gaps, validation_href),
        "classes": _classes_section(view),
        "representation": _representation_section(view),
        "instrument": _instrument_section(view),
        "class_share": _class_share_section(view),
        "parity": _parity_section(view),
        "agreement": _agreement_section(view),
        "footer": [EU_AI_ACT, CONTESTED_SCIENCE],
    }
    return templates.render("bias_report.html.j2", context)


# ---------------------------------------------------------------------------------------------------- datasheet


ESTIMATOR_HEADERS = (
    "attribute", "estimator", "version", "reads", "min confidence", "used in the bias audit", "checked on",
    "clips checked", "accuracy", "error rate per true group", "verdict",
)  # fmt: skip
COVERAGE_HEADERS = ("corpus", "attribute", "clips", "given by the corpus", "estimated", "unknown", "share unknown")


def _estimated_datasheet(view: _View) -> dict[str, Any] | None:
    """The datasheet's account of estimated attributes: each estimator, how it did where it could be checked, and
    per corpus how much it filled in and left unknown; None when nothing was estimated."""
    verdicts = _verdicts(view)
    if not verdicts:
        return None
    audit_rows = view.tables.get("instrument_audit") or []
    rows = []
    for r in verdicts:
        mine = [x for x in audit_rows if x["estimator"] == r["estimator"]]
        groups = {
            x["truth_group"]: x["error_rate"] for x in mine if x["corpus"] == "ALL" and x["truth_group"] != "ALL"
        }
        checked = sorted({x["corpus"] for x in mine if x["corpus"] != "ALL" and x["n_truth"]})
        name, _, version = str(r["estimator"]).partition("@")
        reads = "face crops" if r["kind"] == "face" else "audio"
        used = "yes" if r["trusted"] else "no"
        rows.append([r["attribute"], name, version, reads, f"{r['min_confidence']:g}", used, checked, r["n_answered"],
                     r["accuracy"], groups, r["verdict"]])  # fmt: skip
    kinds: list[str | None] = [None] * len(ESTIMATOR_HEADERS)
    kinds[8] = kinds[9] = "share"
    cov = view.tables.get("attribute_coverage") or []
    columns = ("corpus", "attribute", "n_clips", "n_given", "n_estimated", "n_unknown", "share_unknown")
    coverage = _md_table(list(COVERAGE_HEADERS), [[c[k] for k in columns] for c in cov], [None] * 6 + ["share"])
    return {"estimators": _md_table(list(ESTIMATOR_HEADERS), rows, kinds), "coverage": coverage if cov else None}


def _datasheet(view: _View, title: str, gaps: list[tuple[str, str]], validation_href: str | None) -> str:
    tax = schemas.taxonomy()
    corpora = view.corpora
    balance = view.tables.get("class_balance", [])
    summary = {r["corpus"]: r for r in view.tables.get("balance_summary", [])}
    quarantined = Counter(r.get("corpus") for r in view.quarantine)
    composition = None
    if corpora:
        rows = []
        for corpus in corpora:
            s = summary.get(corpus, {})
            n = len(view.corpus_clips(corpus)) if view.has_clips else s.get("n_clips")
            rows.append([corpus, n, s.get("n_labelled"), quarantined.get(corpus, 0), s.get("imbalance_ratio")])
        composition = _md_table(["corpus", "clips", "labelled", "quarantined", "imbalance ratio"], rows)
    per_class = [
        {"corpus": c, "table": _md_table(["class", "clips", "share"], rows, [None, None, "share"])}
        for c in corpora
        if (rows := [[r["label"], r["count"], r["share"]] for r in balance if r["corpus"] == c])
    ]
    modalities = None
    if view.clips:
        rows = []
        for corpus in corpora:
            c = view.corpus_clips(corpus)
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
        modalities = _md_table(["corpus", "media form", "modality", "with video", "with audio"], rows)
    labels = None
    if view.fused:
        src = Counter(r.get("train_label_source") for r in view.fused)
        labels = (
            f"Human labels: {src.get('human', 0)} clips; confident model labels: {src.get('model', 0)} clips; "
            f"no label: {src.get('none', 0)} clips (fused_labels)."
        )
    sources = None
    if view.clips:
        rows = []
        for corpus in corpora:
            c = view.corpus_clips(corpus)
            for attribute in view.attributes:
                cnt = _source_counts(c, attribute)
                rows.append([corpus, attribute, *(cnt.get(s, 0) for s in SOURCES), cnt["unrecorded"], cnt["unknown"]])
        sources = _md_table(["corpus", "attribute", *SOURCES, "source unrecorded", "unknown"], rows)
    rep = view.tables.get("representation", [])
    groups = None
    if rep:
        groups = _md_table(
            ["corpus", "attribute", "group", "clips", "share", "source", "flag"],
            [
                [
                    r["corpus"],
                    r["attribute"],
                    r["group"],
                    r["count"],
                    r["share"],
                    r["sources"],
                    _thin_level(r["share"], view.thresholds) or "",
                ]
                for r in rep
            ],  # fmt: skip
            [None, None, None, None, "share", None, None],
        )
    estimated = _estimated_datasheet(view)
    licences: dict[str, set[str]] = defaultdict(set)
    for r in view.clips:
        if r.get("license"):
            licences[r["corpus"]].add(r["license"])
    licence_rows = [
        [corpus, tax.license(corpus) if corpus in tax.corpora else None, sorted(licences.get(corpus, set()))]
        for corpus in corpora
    ]
    collection = []
    for corpus in corpora:
        if corpus in view.synthetic:
            text = (
                f"generated, not recorded: {view.synthetic[corpus]} It follows the {corpus} layout and naming only; "
                "no person was recorded and no emotion was portrayed."
            )
        else:
            text = COLLECTION.get(corpus, "no description on record.")
        collection.append((corpus, text))
    gate = None
    if view.gate is not None:
        gate = {
            "outcome": "passed" if view.gate.get("success") else "FAILED",
            "counts": f"{_plural(len(view.gate.get('blocking_failures') or []), 'blocking failure')} and "
            f"{_plural(len(view.gate.get('warnings') or []), 'warning')}",
            "validation": validation_href,
        }
    context = {
        "heading": title + (f" {view.version}" if view.version else ""),
        "digest": (view.gate or {}).get("dataset_digest") or (view.lineage or {}).get("dataset_digest"),
        "synthetic": _synthetic_notes(view),
        "motivation": MOTIVATION + (MOTIVATION_SYNTHETIC if view.synthetic else ""),
        "composition": composition,
        "per_class": per_class,
        "modalities": modalities,
        "labels": labels,
        "sources": sources,
        "groups": groups,
        "estimated": estimated,
        "inference_law": INFERENCE_LAW,
        "licences": _md_table(["corpus", "licence (taxonomy)", "licence (clips)"], licence_rows),
        "collection": collection,
        "eu_ai_act": EU_AI_ACT,
        "contested_science": CONTESTED_SCIENCE,
        "gaps": gaps,
        "not_measured": [n for n in ("label_dependence", "model_parity") if n not in view.tables],
        "gate": gate,
    }
    # the template's blocks each end with a blank line; Markdown needs one between blocks, not two
    return re.sub(r"\n{3,}", "\n\n", templates.render("datasheet.md.j2", context))


# ---------------------------------------------------------------------------------------------------- entry points


def render(inputs: ReportInputs, out_dir: pathlib.Path, title: str = "emopipe bias audit") -> dict[str, pathlib.Path]:
    """Write the bias report and the datasheet of one dataset.

    Args:
        inputs: the dataset's tables and facts.
        out_dir: where to write; created.
        title: the report's title.

    Returns:
        {"html": bias_report.html, "datasheet": datasheet.md}, plus "plots": the folder holding every plot as a
        PNG when there is at least one.
    """
    out_dir = pathlib.Path(out_dir)
    view = _view(inputs)
    view.drawn = _drawn_before(out_dir / PLOTS_DIR)
    gaps = findings(view)
    out_dir.mkdir(parents=True, exist_ok=True)
    href = None
    if inputs.validation_page is not None:
        href = pathlib.Path(os.path.relpath(pathlib.Path(inputs.validation_page).resolve(), out_dir.resolve()))
        href = href.as_posix()
    html_path = out_dir / HTML_FILE
    html_path.write_text(_html(view, title, gaps, href), encoding="utf-8")
    datasheet_path = out_dir / DATASHEET_FILE
    datasheet_path.write_text(_datasheet(view, title, gaps, href), encoding="utf-8")
    out: dict[str, pathlib.Path] = {"html": html_path, "datasheet": datasheet_path}
    if view.plots:
        plots = out_dir / PLOTS_DIR
        plots.mkdir(exist_ok=True)
        index = {}
        for name, data in view.plots:
            file = f"{_slug(name.replace('/', '__'))}.png"
            (plots / file).write_bytes(data)
            if name in view.keys:
                index[file] = view.keys[name]
        (plots / FIGURES_INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        out["plots"] = plots
    return out


def synthetic_corpora(corpora: dict[str, str], *records: dict[str, Any] | None) -> dict[str, str]:
    """corpus -> description of what was generated: from records that carry a "synthetic" mapping (the dataset's
    manifest, lineage.json, its "source"), else from the generator's marker file in each corpus root."""
    from emopipe import demo

    out: dict[str, str] = {}
    for record in records:
        for holder in (record or {}, (record or {}).get("source") or {}):
            for corpus, value in (holder.get("synthetic") or {}).items() if isinstance(holder, dict) else ():
                text = value.get("description") if isinstance(value, dict) else value
                if text:
                    out.setdefault(str(corpus), str(text))
    for corpus, root in corpora.items():
        if corpus not in out and (marker := demo.read_synthetic_marker(pathlib.Path(root))) is not None:
            out[corpus] = marker["description"]
    return out


def inputs_from(
    ds: Any,
    tables: dict[str, pa.Table] | None = None,
    *,
    gate: Any = None,
    version: str | None = None,
    lineage: dict[str, Any] | None = None,
    thresholds: ValidateConfig | None = None,
) -> ReportInputs:
    """The report's inputs from a dataset (emopipe.dataset.Dataset): its tables as it read them, once.

    Args:
        ds: the dataset (a stage's output or a checked-out published version).
        tables: metric tables already computed (by the gate or the audit); others come from `reports/` if there.
        gate: the gate's result (GateResult or its dict); default: the dataset's validation.json.
        version: the version to show; default: its lineage's.
        lineage: the lineage record of the version being published; default: the dataset's lineage.json.
        thresholds: the gate thresholds.
    """

    folder = pathlib.Path(ds.path)
    metric: dict[str, pa.Table] = dict(tables or {})
    for name in METRIC_TABLES:
        if name not in metric:
            if name == "agreement" and ds.agreement is not None:
                metric[name] = ds.agreement
            elif (path := folder / "reports" / f"{name}.parquet").is_file():
                metric[name] = pq.read_table(path)
    stored = gate if gate is not None else ds.gate
    lineage = lineage if lineage is not None else ds.lineage
    corpora = {c: str(r) for c, r in ds.corpora.items()}
    page = folder / VALIDATION_PAGE
    audit_clips = None
    if ds.has("estimates") and ds.has("clips"):  # the clips as the bias tables counted them
        from emopipe.estimators import audit

        estimates = ds.table("estimates")
        if "instrument_audit" in metric:
            audit_clips = audit.with_estimates(ds.clips, estimates, metric["instrument_audit"])
        else:
            audit_clips, computed = audit.audit_tables(ds.clips, estimates, ds.stages, thresholds or ValidateConfig())
            metric = {**computed, **metric}
    return ReportInputs(
        clips=ds.maybe("clips"),
        quarantine=ds.maybe("quarantine"),
        fused_labels=ds.fused_labels,
        tables=metric,
        gate=stored.to_dict() if hasattr(stored, "to_dict") else stored,
        lineage=lineage,
        version=version,
        corpora=corpora,
        synthetic=synthetic_corpora(corpora, {"synthetic": ds.synthetic}, lineage),
        confusion=sorted((folder / "reports" / "confusion").glob("*.png")),
        thresholds=thresholds or ValidateConfig(),
        validation_page=page if page.is_file() else None,
        audit_clips=audit_clips,
    )


def render_folder(
    folder: pathlib.Path,
    out_dir: pathlib.Path,
    tables: dict[str, pa.Table] | None = None,
    title: str = "emopipe bias audit",
    version: str | None = None,
    *,
    thresholds: ValidateConfig | None = None,
) -> dict[str, pathlib.Path]:
    """Write the bias report and the datasheet of a dataset folder (any layout emopipe.dataset reads)."""
    from emopipe.dataset import Dataset

    ds = Dataset(folder)  # a folder that holds nothing gives a report that says so
    return render(inputs_from(ds, tables, version=version, thresholds=thresholds), out_dir, title=title)
