"""The bias audit report: HTML sections, escaping, the datasheet, generated corpora, versions, plots that show
what they draw, and a real headless browser rendering it offline."""

from __future__ import annotations

import base64
import html.parser
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emopipe import audit_report, demo, io, schemas
from emopipe.audit_report import ReportInputs
from emopipe.stages import balance
from tests import browser

HEADINGS = (
    "Summary",
    "Known biases and gaps",
    "Class distribution",
    "Demographic representation",
    "Class share per group",
    "Model parity",
    "Agreement with human labels",
)
HOSTILE = "<script>alert('x')</script>"
BAR_COLOURS = ((0x3B, 0x6E, 0xA5), (0xD9, 0x82, 0x2B))  # class-distribution bars (audit_report.class_bar_figure)
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"  # HOSTILE as autoescape writes it


def _clips() -> pa.Table:
    """40 RAVDESS clips (gender derived: 30 female, 10 male), 30 DFEW clips in 5 folds (gender estimated or null,
    one of them a hostile value)."""
    tax = schemas.taxonomy()
    rows = []
    ravdess, dfew = tax.classes("ravdess"), tax.classes("dfew")
    for i in range(40):
        rows.append(
            {
                "clip_id": f"ravdess:{i:02d}",
                "corpus": "ravdess",
                "native_id": f"{i:02d}",
                "media_path": f"Actor_{i % 24 + 1:02d}/{i:02d}.mp4",
                "media_form": "video",
                "sha256": f"{i:064x}",
                "size_bytes": 1000,
                "label": ravdess[i % len(ravdess)] if i % 5 else "happiness",
                "modality": "audio-visual",
                "has_video": True,
                "has_audio": True,
                "gender": "female" if i < 30 else "male",
                "gender_source": "derived",
                "license": tax.license("ravdess"),
            }
        )
    for i in range(30):
        fold = i % 5 + 1
        rows.append(
            {
                "clip_id": f"dfew:{i:05d}",
                "corpus": "dfew",
                "native_id": f"{i:05d}",
                "media_path": f"clip/{i:05d}.mp4",
                "media_form": "video",
                "sha256": f"{1000 + i:064x}",
                "size_bytes": 2000,
                "folds": [{"fold": f, "split": "test" if f == fold else "train"} for f in range(1, 6)],
                "label": dfew[i % len(dfew)],
                "modality": "video-only",
                "has_video": True,
                "has_audio": False,
                # a footage-style sidecar value on one clip: must stay text on every page
                "gender": None if i >= 20 else (HOSTILE if i == 0 else "female" if i % 2 else "male"),
                "gender_source": None if i >= 20 else "estimated",
                "license": tax.license("dfew"),
            }
        )
    return schemas.from_rows(rows, schemas.CLIPS)


def _labels(clips: pa.Table) -> pa.Table:
    """fer@1: right on most clips, wrong on every fifth, abstains on every seventh."""
    rows = []
    for i, (clip_id, corpus, label) in enumerate(
        zip(*(clips[c].to_pylist() for c in ("clip_id", "corpus", "label")), strict=True)
    ):
        pred = None if i % 7 == 0 else ("anger" if i % 5 == 0 else label)
        rows.append(
            {
                "clip_id": clip_id,
                "corpus": corpus,
                "sha256": f"{i:064x}",
                "labeler": "fer@1",
                "label": pred,
                "confidence": None if pred is None else 0.9,
                "abstain_reason": "no_face" if pred is None else None,
            }
        )
    return schemas.from_rows(rows, schemas.load_schema("labels"))


def _bias_tables(clips: pa.Table, labels: pa.Table) -> dict[str, pa.Table]:
    """label_dependence and model_parity from emopipe.stages.bias, or nothing before that module exists."""
    try:
        from emopipe.stages import bias

        return {
            "label_dependence": bias.label_dependence(clips, ("gender",)),
            "model_parity": bias.model_parity(clips, labels, ("gender",)),
        }
    except ImportError:  # bias.py not written yet, or fairlearn not installed
        return {}


def _folder(root: pathlib.Path, *, full: bool = True) -> pathlib.Path:
    """A validated-like dataset folder; `full` adds labels, agreement, metric tables and validation.json."""
    folder = root / "validated"
    clips = _clips()
    io.write_table(clips, folder / "clips.parquet", schemas.CLIPS)
    if not full:
        return folder
    from emopipe.stages import agreement

    labels = _labels(clips)
    io.write_table(labels, folder / "labels.parquet", schemas.load_schema("labels"))
    io.write_table(agreement.agreement(clips, labels), folder / "agreement.parquet", schemas.load_schema("agreement"))
    confusion = folder / "reports" / "confusion" / "fer__ravdess.png"  # named as label_clips names them
    agreement.confusion_png(clips, labels, "fer@1", "ravdess", confusion)
    cb = balance.class_balance(clips)
    metrics = {
        "class_balance": cb,
        "balance_summary": balance.balance_summary(clips, cb),
        "representation": balance.representation(clips),
        **_bias_tables(clips, labels),
    }
    for name, table in metrics.items():
        io.write_table(table, folder / "reports" / f"{name}.parquet", schemas.load_schema(name))
    io.write_json(
        folder / "validation.json",
        {
            "success": True,
            "dataset_digest": "d" * 64,
            "blocking_failures": [],
            "warnings": [f"gender group {HOSTILE} in footage: the share of the clips whose value is known is 5.0%"],
            "suites": {},
            "data_docs": None,
        },
    )
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("audit")
    folder = _folder(root)
    (folder / "validation.html").write_text("<!DOCTYPE html><title>gate</title>", encoding="utf-8")
    return audit_report.render_folder(folder, folder / "reports", version="v7")


class _Images(html.parser.HTMLParser):
    """Collects the attributes of every <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def _images(text: str) -> list[dict[str, str | None]]:
    parser = _Images()
    parser.feed(text)
    return parser.images


def _assert_png_images(images: list[dict[str, str | None]]) -> None:
    for img in images:
        assert img.get("data-plot") and img.get("alt"), img.get("data-plot")
        src = img.get("src") or ""
        assert src.startswith("data:image/png;base64,"), img["data-plot"]
        data = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, img["data-plot"]


def test_report_has_every_section_and_inline_plots(report):
    text = report["html"].read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert f">{heading}</h" in text, heading
    assert "v7" in text and "passed" in text
    plots = {img["data-plot"] for img in _images(text)}
    assert {"class_distribution/ravdess", "class_distribution/dfew", "class_share/ravdess/gender"} <= plots
    assert "class_share/dfew/gender" in plots and "confusion/fer__ravdess" in plots
    _assert_png_images(_images(text))
    # self-contained: nothing fetched from anywhere, no scripts
    assert "<script" not in text.lower().replace("&lt;script", "") and "<link" not in text and "http" not in text
    assert report["plots"].is_dir() and len(list(report["plots"].glob("*.png"))) == len(plots) - 1  # confusion: copied


def test_report_escapes_table_values(report):
    """A sidecar's gender value and a gate message carrying it are text on the page and in the datasheet."""
    text = report["html"].read_text(encoding="utf-8")
    assert HOSTILE not in text and "<script" not in text.lower()  # the page has no script of its own either
    assert text.count(ESCAPED) >= 3  # the gate warning, the representation table, a thin-group finding
    sheet = report["datasheet"].read_text(encoding="utf-8")
    assert HOSTILE not in sheet and "<script" not in sheet and "&lt;script>alert('x')&lt;/script>" in sheet


def test_report_tables_folds_thin_groups_sources_and_agreement(report):
    text = report["html"].read_text(encoding="utf-8")
    assert "Class counts per fold and split (dfew)" in text
    assert "ravdess: no published folds" in text
    # every dfew clip is in the test split of exactly one of the 5 folds: 6 test and 24 train clips per fold
    assert text.count('<td>test</td><td class="num">6</td>') == 5
    assert text.count('<td>train</td><td class="num">24</td>') == 5
    # ravdess male: 10 of 40 = 25%, below the 30% warning share -> highlighted
    assert '<tr class="thin"><td>ravdess</td><td>gender</td><td>male</td>' in text
    assert "estimated" in text and "derived" in text
    assert "fer@1" in text and "WAR" in text and "UAR" in text and "kappa" in text


def test_report_renders_bias_tables_when_present(report):
    pytest.importorskip("emopipe.stages.bias")
    pytest.importorskip("fairlearn")
    text = report["html"].read_text(encoding="utf-8")
    assert "No label_dependence table" not in text and "No model_parity table" not in text
    assert "Cramér&#39;s V" in text
    assert any(p.startswith("parity/ravdess/fer@1/gender") for p in (i["data-plot"] for i in _images(text)))


def test_datasheet_states_licences_prohibited_uses_and_sources(report):
    sheet = report["datasheet"].read_text(encoding="utf-8")
    tax = schemas.taxonomy()
    for corpus in ("ravdess", "dfew"):
        assert tax.license(corpus) in sheet
    assert "Regulation (EU) 2024/1689" in sheet and "Article 5(1)(f)" in sheet
    assert "workplaces" in sheet and "education institutions" in sheet and "medical or safety" in sheet
    assert "Barrett" in sheet and "Psychological Science in the Public Interest" in sheet
    for heading in ("Motivation", "Composition", "Demographics and their sources", "Collection and licences"):
        assert f"## {heading}" in sheet
    assert "## Intended uses" in sheet and "## Prohibited and out-of-scope uses" in sheet
    # per attribute: annotated / derived / estimated / source unrecorded / unknown counts
    assert "| ravdess | gender | 0 | 40 | 0 | 0 | 0 |" in sheet
    assert "| dfew | gender | 0 | 0 | 20 | 0 | 10 |" in sheet
    assert "## Known biases and gaps" in sheet
    assert "ravdess: gender = male has 10 clips" in sheet  # a thin group
    assert "dfew: 10 of 30 clips have no gender" in sheet
    assert "estimated by a model" in sheet and "gate warning" in sheet


def test_report_renders_from_clips_alone(tmp_path):
    folder = _folder(tmp_path, full=False)
    paths = audit_report.render_folder(folder, tmp_path / "out")
    text = paths["html"].read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert f">{heading}</h" in text, heading
    assert "No label_dependence table" in text and "No model_parity table" in text and "No agreement table" in text
    assert "has not been through the quality gate" in text
    assert "Computed from the clips" in text and "class_distribution/dfew" in text
    sheet = paths["datasheet"].read_text(encoding="utf-8")
    assert "no label_dependence table was available" in sheet and "EU AI Act" in sheet


def test_report_of_an_empty_folder(tmp_path):
    paths = audit_report.render_folder(tmp_path / "nothing", tmp_path / "out", title="empty <audit>")
    text = paths["html"].read_text(encoding="utf-8")
    assert "empty &lt;audit&gt;" in text and "No clips table" in text and "plots" not in paths
    assert "Article 5(1)(f)" in paths["datasheet"].read_text(encoding="utf-8")


def test_report_takes_given_tables_and_flags_them(tmp_path):
    folder = _folder(tmp_path, full=False)
    dependence = schemas.from_rows(
        [
            {
                "corpus": "ravdess",
                "attribute": "gender",
                "attribute_sources": "derived",
                "n_clips": 40,
                "groups": ["female", "male"],
                "classes": ["neutral", "happiness"],
                "chi2": 12.5,
                "dof": 7,
                "p_value": 0.0004,
                "cramers_v": 0.41,
                "max_gap": 0.3,
                "max_gap_class": "happiness",
                "max_gap_groups": "female > male",
                "max_gap_shares": "0.40 vs 0.10",
                "min_cell_count": 5,
                "testable": True,
            },
            {
                "corpus": "dfew",
                "attribute": "gender",
                "attribute_sources": "estimated",
                "n_clips": 20,
                "groups": ["female", "male"],
                "classes": ["neutral"],
                "min_cell_count": 1,
                "testable": False,
                "note": "expected cell count 1 < 5",
            },
        ],
        schemas.load_schema("label_dependence"),
    )
    parity = schemas.from_rows(
        [
            {
                "corpus": "ravdess",
                "labeler": "fer@1",
                "attribute": "gender",
                "attribute_sources": "derived",
                "groups": ["female", "male"],
                "n_per_group": [("female", 30), ("male", 10)],
                "recall_per_group": [("female", 0.8), ("male", 0.4)],
                "accuracy_per_group": [("female", 0.8), ("male", 0.4)],
                "negative_rate_per_group": [("female", 0.5), ("male", 0.6)],
                "recall_ratio": 0.5,
                "recall_gap": 0.4,
                "worst_group": "male",
                "demographic_parity_ratio": 0.83,
                "equalized_odds_difference": 0.1,
                "face_hit_rate_per_group": [("female", 0.95), ("male", 0.7)],
                "face_hit_ratio": 0.74,
                "testable": True,
            }
        ],
        schemas.load_schema("model_parity"),
    )
    paths = audit_report.render_folder(
        folder, tmp_path / "out", tables={"label_dependence": dependence, "model_parity": parity}
    )
    text = paths["html"].read_text(encoding="utf-8")
    assert "parity/ravdess/fer@1/gender" in {i["data-plot"] for i in _images(text)}
    assert (
        "female &gt; male" in text and '<td class="num">0.0004</td>' in text and "expected cell count 1 &lt; 5" in text
    )
    assert '<tr class="flag"><td>ravdess</td><td>fer@1</td>' in text
    sheet = paths["datasheet"].read_text(encoding="utf-8")
    assert "recall ratio 0.500 < 0.8, worst group male" in sheet
    assert "face detector hit-rate ratio 0.740 < 0.8" in sheet
    assert "label dependence on dfew / gender could not be tested" in sheet
    assert "happiness differs by 30.0% between groups" in sheet


def test_generated_corpus_is_said_generated_in_report_and_datasheet(tmp_path):
    text = "emopipe's demo generator wrote 384 clips in the RAVDESS layout; nobody was recorded."
    inputs = ReportInputs(clips=_clips(), synthetic={"ravdess": text}, corpora={"ravdess": str(tmp_path)})
    paths = audit_report.render(inputs, tmp_path / "out")
    page = paths["html"].read_text(encoding="utf-8")
    assert (
        '<p class="synthetic" data-synthetic="ravdess"><strong>Generated data:</strong> ravdess is generated' in page
    )
    assert "nobody was recorded" in page and "ravdess (generated)" in page
    sheet = paths["datasheet"].read_text(encoding="utf-8")
    assert "> **Generated data (ravdess):** ravdess is generated, not recorded from people" in sheet
    assert "- **ravdess:** generated, not recorded: emopipe's demo generator" in sheet
    assert "24 professional actors" not in sheet  # the real corpus's description is not used for a generated one
    assert "- **generated data:** ravdess is generated" in sheet  # in the known biases and gaps
    assert "Dynamic Facial Expression in the Wild" in sheet  # the real corpus beside it keeps its own


def test_the_demo_corpus_marks_itself_and_the_folder_report_says_so(tiny_corpus_template, tmp_path):
    marker = demo.read_synthetic_marker(tiny_corpus_template)
    assert marker is not None and marker["generator"].startswith("emopipe.demo.make_ravdess_demo")
    assert "RAVDESS file layout" in marker["description"] and "Nobody was recorded" in marker["description"]
    assert demo.read_synthetic_marker(tmp_path) is None  # a real corpus has no marker
    folder = _folder(tmp_path, full=False)
    io.write_json(folder / "source.json", {"corpora": {"ravdess": str(tiny_corpus_template), "dfew": str(tmp_path)}})
    paths = audit_report.render_folder(folder, tmp_path / "out")
    sheet = paths["datasheet"].read_text(encoding="utf-8")
    assert "**Generated data (ravdess):**" in sheet and "Nobody was recorded" in sheet
    assert "Generated data (dfew)" not in sheet and "24 professional actors" not in sheet
    page = paths["html"].read_text(encoding="utf-8")
    assert 'data-synthetic="ravdess"' in page and str(tiny_corpus_template) not in page


def test_version_comes_from_lineage_and_no_local_folder_is_shown(tmp_path):
    lineage = {"version": "v3", "published_at": "2026-12-01T03:00:00+00:00", "run_id": "scheduled__x",
               "code_version": "0.1.0+gabc1234", "dataset_digest": "e" * 64}  # fmt: skip
    inputs = ReportInputs(clips=_clips(), lineage=lineage, corpora={"ravdess": "/srv/private/ravdess"})
    paths = audit_report.render(inputs, tmp_path / "out")
    page = paths["html"].read_text(encoding="utf-8")
    assert "<h1>emopipe bias audit \N{EM DASH} v3</h1>" in page
    assert "<tr><td>Version</td><td>v3</td></tr>" in page and "scheduled__x" in page and "e" * 64 in page
    assert "unversioned" not in page and "/srv/private" not in page and str(tmp_path) not in page
    sheet = paths["datasheet"].read_text(encoding="utf-8")
    assert sheet.startswith("# Datasheet: emopipe bias audit v3") and "/srv/private" not in sheet
    # a published checkout: lineage.json beside the dataset folder, as in the data repository
    checkout = tmp_path / "checkout"
    folder = _folder(checkout, full=False)
    io.write_json(checkout / "lineage.json", lineage)
    page = audit_report.render_folder(folder, tmp_path / "out2")["html"].read_text(encoding="utf-8")
    assert "<tr><td>Version</td><td>v3</td></tr>" in page and str(folder) not in page
    unpublished = audit_report.render(ReportInputs(clips=_clips()), tmp_path / "out3")["html"].read_text()
    assert "not published yet" in unpublished


def _bar_pixels(fig, ax, x: float, colour: str) -> int:
    """Pixels of `colour` in a 3-px wide column at data x, from just below the axis's zero line up to 6 px above."""
    import matplotlib.colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # what savefig renders the report's PNGs with
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    px, py = ax.transData.transform((x, 0.0))
    row = rgb.shape[0] - round(py)  # display y grows upwards, image rows downwards
    want = np.rint(np.array(matplotlib.colors.to_rgb(colour)) * 255).astype(int)
    window = rgb[row - 6 : row + 2, round(px) - 1 : round(px) + 2]
    return int((np.abs(window - want).max(axis=-1) <= 30).sum())


def test_zero_height_bars_are_drawn():
    """A class with no clips, and a group with no clips of a class, show as a line of the bar's colour on the axis
    (an invisible bar reads as a missing class); a missing value says n/a."""
    import matplotlib.colors

    rows = [{"label": "happiness", "count": 30, "share": 0.75}, {"label": "disgust", "count": 0, "share": 0.0},
            {"label": "fear", "count": 10, "share": 0.25}]  # fmt: skip
    fig = audit_report.class_bar_figure("ravdess", rows, warn_share=0.05)
    ax = fig.axes[0]
    assert _bar_pixels(fig, ax, 1, audit_report.THIN_CLASS_COLOUR) >= 3
    assert _bar_pixels(fig, ax, 1.45, audit_report.THIN_CLASS_COLOUR) == 0  # and nothing beside the bar
    series = {"female": [0.5, 0.0, 0.5], "male": [0.4, 0.3, None]}
    fig = audit_report.grouped_bar_figure(["anger", "fear", "sadness"], series, "dfew: share by gender", "share")
    ax = fig.axes[0]
    zero = ax.patches[1]  # female, fear
    colour = matplotlib.colors.to_hex(zero.get_facecolor())
    assert _bar_pixels(fig, ax, zero.get_x() + zero.get_width() / 2, colour) >= 3
    assert "n/a" in [t.get_text() for t in ax.texts]


def test_plot_titles_and_labels_fit_inside_the_image():
    long = "fer@mini-xception-fer2013.59534287 with a much longer labeler name than usual"
    figures = [
        audit_report.class_bar_figure("a-corpus-with-a-very-long-name-from-a-footage-drop-folder", [
            {"label": f"class-{i}", "count": i, "share": 0.1} for i in range(3)], 0.05),
        audit_report.grouped_bar_figure(["female", "male"], {"recall (UAR)": [0.8, 0.6], "face hit rate": [1, 1]},
                                        f"{long} on dfew: per-gender rates (recall ratio 0.750)", "rate"),
    ]  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for fig in figures:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        texts = [t for t in fig.findobj(match=lambda a: hasattr(a, "get_text")) if t.get_visible() and t.get_text()]
        assert texts
        for t in texts:
            ext = t.get_window_extent(renderer)
            assert ext.x0 >= fig.bbox.x0 - 1 and ext.x1 <= fig.bbox.x1 + 1 and ext.y1 <= fig.bbox.y1 + 1, t.get_text()


class _Figures(html.parser.HTMLParser):
    """(data-plot, caption) of every <figure>."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, str]] = []
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.figures.append((dict(attrs).get("data-plot") or "", ""))
        self._caption = self._caption or tag == "figcaption"

    def handle_endtag(self, tag: str) -> None:
        self._caption = self._caption and tag != "figcaption"

    def handle_data(self, data: str) -> None:
        if self._caption and self.figures:
            name, cap = self.figures[-1]
            self.figures[-1] = (name, cap + data)


def test_captions_say_what_each_plot_shows(report):
    parser = _Figures()
    parser.feed(report["html"].read_text(encoding="utf-8"))
    assert parser.figures and all(cap for _, cap in parser.figures)
    assert not any(".png" in cap for _, cap in parser.figures)  # captions were file names
    caption = dict(parser.figures)["confusion/fer__ravdess"]
    assert caption.startswith("Confusion matrix of fer@1 on ravdess: rows are the human labels") and "WAR" in caption


def test_report_links_the_offline_validation_page(report):
    text = report["html"].read_text(encoding="utf-8")
    assert '<a href="../validation.html" data-validation-page>' in text  # relative: it travels with the version
    assert "validation.html" in report["datasheet"].read_text(encoding="utf-8")
    assert (report["html"].parent / "../validation.html").resolve().is_file()


def test_report_in_a_real_headless_browser(report, tmp_path):
    """Chromium loads the page from disk without asking the network for anything, paints it (screenshot not blank,
    plot colours on screen) and keeps every inline plot in its DOM."""
    import matplotlib.image

    exe = browser.browser()
    uri = report["html"].resolve().as_uri()
    assert browser.page_requests(exe, report["html"], tmp_path) == []
    shot = tmp_path / "report.png"
    done = browser.chromium(exe, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", uri)
    assert shot.is_file(), f"no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    assert float(pixels.var()) > 1e-3, "the screenshot is blank"
    rgb = np.rint(pixels * 255).astype(int)
    painted = sum(int((np.abs(rgb - np.array(c)).max(axis=-1) <= 12).sum()) for c in BAR_COLOURS)
    assert painted > 500, "no class-distribution bar colour on screen: the inline PNGs were not painted"

    dom = browser.chromium(exe, tmp_path / "profile-dom", "--dump-dom", uri)
    assert dom.returncode == 0, dom.stderr[-2000:]
    in_dom = _images(dom.stdout)
    in_file = _images(report["html"].read_text(encoding="utf-8"))
    assert [i["data-plot"] for i in in_dom] == [i["data-plot"] for i in in_file]
    assert {"class_distribution/ravdess", "class_share/ravdess/gender"} <= {i["data-plot"] for i in in_dom}
    _assert_png_images(in_dom)
    assert all(f">{h}</h" in dom.stdout for h in HEADINGS)
    shown = browser.visible_text(exe, report["html"], tmp_path)
    assert HOSTILE in shown  # the hostile value is on screen, as text


def test_a_render_into_the_folder_of_an_earlier_one_draws_only_what_changed(tmp_path, monkeypatch):
    """Publishing renders the gate's report again with the version's name: figures drawn from the same values are
    taken from the folder, the report's images are the same, and a figure whose values changed is drawn again."""
    folder = _folder(tmp_path)
    out = folder / "reports"
    first = audit_report.render_folder(folder, out)
    before = {p.name: p.read_bytes() for p in first["plots"].glob("*.png")}
    drawn: list[object] = []
    real_png = audit_report._png
    monkeypatch.setattr(audit_report, "_png", lambda fig: drawn.append(fig) or real_png(fig))
    again = audit_report.render_folder(folder, out, version="v1")
    assert drawn == [] and "v1" in again["html"].read_text(encoding="utf-8")
    assert {p.name: p.read_bytes() for p in again["plots"].glob("*.png")} == before
    assert _images(again["html"].read_text(encoding="utf-8")) == _images(first["html"].read_text(encoding="utf-8"))
    rewrite = pq.read_table(out / "class_balance.parquet").to_pylist()
    rewrite[0]["count"] += 1  # one bar of one corpus changes
    schema = schemas.load_schema("class_balance")
    io.write_table(schemas.from_rows(rewrite, schema), out / "class_balance.parquet", schema)
    audit_report.render_folder(folder, out, version="v1")
    assert len(drawn) == 1
