"""The bias audit report: HTML sections, escaping, the datasheet, and a real headless browser rendering it."""

from __future__ import annotations

import base64
import html.parser
import pathlib
import shutil
import subprocess

import pyarrow as pa
import pytest

from emopipe import audit_report, io, schemas
from emopipe.stages import balance

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
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
BAR_COLOURS = ((0x3B, 0x6E, 0xA5), (0xD9, 0x82, 0x2B))  # class-distribution bars (audit_report._class_bar)


def _clips() -> pa.Table:
    """40 RAVDESS clips (gender derived: 30 female, 10 male), 30 DFEW clips in 5 folds (gender estimated or null)."""
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
                "gender": None if i >= 20 else ("female" if i % 2 else "male"),
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
    agreement.confusion_png(clips, labels, "fer@1", "ravdess", folder / "reports" / "confusion" / "fer_ravdess.png")
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
            "warnings": [f"representation.warning: smallest group share {HOSTILE}"],
            "suites": {},
            "data_docs": None,
        },
    )
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("audit")
    return audit_report.render_folder(_folder(root), root / "out", version="v7")


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
    assert "class_share/dfew/gender" in plots and "confusion/fer_ravdess" in plots
    _assert_png_images(_images(text))
    # self-contained: nothing fetched from anywhere, no scripts
    assert "<script" not in text.lower().replace("&lt;script", "") and "<link" not in text and "http" not in text
    assert report["plots"].is_dir() and len(list(report["plots"].glob("*.png"))) == len(plots) - 1  # confusion: copied


def test_report_escapes_table_values(report):
    text = report["html"].read_text(encoding="utf-8")
    assert HOSTILE not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text


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
    assert "Cramér&#x27;s V" in text
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


def _browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH; `apt-get install -y chromium` provides one")


def _chromium(browser: str, profile: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_report_in_a_real_headless_browser(report, tmp_path):
    """Chromium loads the page from disk, paints it (screenshot not blank, plot colours on screen) and keeps every
    inline plot in its DOM."""
    import matplotlib.image
    import numpy as np

    browser = _browser()
    uri = report["html"].resolve().as_uri()
    shot = tmp_path / "report.png"
    done = _chromium(browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", uri)
    assert shot.is_file(), f"no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    assert float(pixels.var()) > 1e-3, "the screenshot is blank"
    rgb = np.rint(pixels * 255).astype(int)
    painted = sum(int((np.abs(rgb - np.array(c)).max(axis=-1) <= 12).sum()) for c in BAR_COLOURS)
    assert painted > 500, "no class-distribution bar colour on screen: the inline PNGs were not painted"

    dom = _chromium(browser, tmp_path / "profile-dom", "--dump-dom", uri)
    assert dom.returncode == 0, dom.stderr[-2000:]
    in_dom = _images(dom.stdout)
    in_file = _images(report["html"].read_text(encoding="utf-8"))
    assert [i["data-plot"] for i in in_dom] == [i["data-plot"] for i in in_file]
    assert {"class_distribution/ravdess", "class_share/ravdess/gender"} <= {i["data-plot"] for i in in_dom}
    _assert_png_images(in_dom)
    assert all(f">{h}</h" in dom.stdout for h in HEADINGS)
