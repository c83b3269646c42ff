"""The gate's results as records and as one offline page; and no value from the data becomes markup, in emopipe's
page or in Great Expectations' own Data Docs."""

from __future__ import annotations

import json
import re

import markupsafe
import pytest
from tests import browser
from tests.quality.conftest import HOSTILE

from emopipe.quality import page, words
from emopipe.quality.validate import GateResult

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def validation_page(hostile_gate, tmp_path_factory):
    result = hostile_gate.result
    return page.render_validation_page(
        result.records, result.to_dict(), tmp_path_factory.mktemp("page") / "validation.html"
    )


def test_records_hold_every_expectation_its_threshold_and_what_was_observed(hostile_gate):
    result = hostile_gate.result
    assert len(result.records) == sum(s["evaluated"] for s in result.suites.values()) > 300
    assert {r.table for r in result.records} == set(hostile_gate.tables)
    share = next(
        r
        for r in result.records
        if r.suite == "class_balance.blocking" and r.expectation_type == "expect_column_values_to_be_between"
    )
    assert not share.success and share.kwargs["min_value"] == 0.01
    assert share.unexpected_count == 1 and share.unexpected_rows == [
        {"share": 0.0, "corpus": "ravdess", "label": "disgust"}
    ]
    assert share.raw.startswith("class_balance.blocking: expect_column_values_to_be_between(column='share'")
    rows = next(
        r
        for r in result.records
        if r.suite == "clips.blocking" and r.expectation_type.endswith("row_count_to_be_between")
    )
    assert rows.observed_value == 12 and rows.kwargs == {"min_value": 20}
    fused = next(r for r in result.records if r.suite == "fused_labels.warning")
    assert fused.unexpected_count == 168 and len(fused.unexpected_rows) == page.MAX_ROWS  # counts cover them all
    assert fused.value_counts["model_label"] == [["happiness", 168]]
    crashed = [r for r in result.records if r.exception]
    assert crashed and all(r.raw.endswith(r.exception) for r in crashed)  # e.g. a check on a missing column


def test_gate_messages_are_the_words_and_survive_validation_json(hostile_gate):
    result = hostile_gate.result
    failed = [r for r in result.records if not r.success]
    assert result.blocking_failures == [words.describe(r) for r in failed if r.level == "blocking"]
    assert result.warnings == [words.describe(r) for r in failed if r.level == "warning"]
    stored = GateResult.from_dict(json.loads(json.dumps(result.to_dict())))  # what validation.json holds
    assert stored.records == result.records and stored.warnings == result.warnings
    assert GateResult.from_dict({"success": True, "dataset_digest": ""}).records == []  # a validation.json from before


def test_page_lists_every_expectation_and_escapes_every_value(validation_page, hostile_gate):
    text = validation_page.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "url(" not in text
    assert ESCAPED in text and HOSTILE not in text
    result = hostile_gate.result
    assert text.count('<tr id="e') == len(result.records)
    for message in result.blocking_failures + result.warnings:
        assert str(markupsafe.escape(message)) in text, message


def test_page_reads_offline_in_a_real_browser(validation_page, hostile_gate, tmp_path):
    """Chromium opens the page from disk: it asks for nothing (its net log), and shows the text of every
    expectation, its result in words and its threshold (innerText, so nothing is hidden)."""
    exe = browser.browser()
    assert browser.page_requests(exe, validation_page, tmp_path) == []
    shown = browser.visible_text(exe, validation_page, tmp_path)
    records = hostile_gate.result.records
    for record in records:
        assert " ".join(record.expression.split()) in shown, record.expression
        assert " ".join(words.limit(record).split()) in shown, record.expression
    for record in (r for r in records if not r.success):
        assert " ".join(words.describe(record).split()) in shown, record.raw
    assert HOSTILE in shown  # the hostile value is shown as text


def test_the_request_check_sees_a_page_that_fetches(tmp_path):
    """The net-log check above can fail: a page with a CDN stylesheet (as GX's Data Docs) is caught."""
    exe = browser.browser()
    fetching = tmp_path / "cdn.html"
    fetching.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/x.css"></head>'
        "<body>results</body></html>",
        encoding="utf-8",
    )
    assert browser.page_requests(exe, fetching, tmp_path) == ["https://cdn.jsdelivr.net/npm/x.css"]


def test_gx_data_docs_hold_no_markup_from_the_data(hostile_gate):
    """A sidecar gender value <script>… in failing expectations (clips gender_source, representation group) is
    shown as text in GX's own pages, never as a tag."""
    pages = list((hostile_gate.work_dir / "gx").rglob("*.html"))
    assert any("validations" in p.parts for p in pages)
    shown = 0
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert HOSTILE not in text and "<script>alert" not in text, path
        assert "&amp;lt;script" not in text, path  # escaped once, not twice
        shown += text.count(ESCAPED)
    assert shown >= 2  # the clips and the representation failures both show it


def test_escape_for_data_docs_leaves_the_records_alone(hostile_gate):
    group = next(r for r in hostile_gate.result.records if r.table == "representation" and not r.success)
    assert any(row.get("group") == HOSTILE for row in group.unexpected_rows)  # the records keep the real value
    assert page.escape_markup({"a<": ["<b>", ("&",)], "n": 1}) == {"a&lt;": ["&lt;b&gt;", ("&amp;",)], "n": 1}


def test_the_gate_logs_no_gx_chatter(tmp_path, caplog):
    """GX logs hundreds of INFO lines per run (`config_provider` on every asset); the gate keeps its log to what
    a person needs. A GX logging level set on purpose is left as it is."""
    import logging

    from emopipe import schemas
    from emopipe.config import Params
    from emopipe.quality.validate import validate_tables

    gx_logger = logging.getLogger("great_expectations")
    gx_logger.setLevel(logging.NOTSET)  # as in a fresh process
    table = schemas.from_rows([], schemas.load_schema("near_duplicates"))
    with caplog.at_level(logging.DEBUG):
        result = validate_tables({"near_duplicates": table}, Params(work_dir=tmp_path), run_name="quiet")
    assert result.success
    chatter = [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert chatter == [], [r.getMessage()[:80] for r in chatter[:5]]
    gx_logger.setLevel(logging.INFO)
    try:
        validate_tables({"near_duplicates": table}, Params(work_dir=tmp_path), run_name="loud")
        assert gx_logger.level == logging.INFO
    finally:
        gx_logger.setLevel(logging.NOTSET)
