"""The gate's results as data and as one self-contained page that reads without internet.

Great Expectations' Data Docs load their CSS and JavaScript from public CDNs, so on an offline machine the results
table never renders. `records_from_validation()` turns a real GX suite validation result into `ExpectationRecord`s
(plain, JSON-safe data: the expectation, its threshold, what was observed, the first unexpected rows, counts of the
values behind every unexpected row, and the GX one-line form kept in `raw`); `render_validation_page()` lays them out
from a jinja2 template (autoescaped: nothing from the data becomes markup) with no external CSS, JS, fonts or images.
`escape_for_data_docs()` makes GX's own pages safe too: GX renders the values of a result (unexpected rows, observed
column names) into its HTML unescaped, so the stored results are escaped before Data Docs are built from them.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import pathlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from emopipe.quality import words
from emopipe.quality.record import ExpectationRecord

MAX_ROWS = 20  # unexpected rows a record keeps (the page lists them; the counts cover every row)
MAX_COUNTED = 10  # distinct values per column kept in value_counts
MAX_LISTED = 5  # rows named in the raw one-line form
_SKIP_KWARGS = {"batch_id", "result_format"}


def plain(value: Any) -> Any:
    """A value from a GX result as plain JSON data: numpy and pandas scalars unwrapped, NaN and NA as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return plain(value.item())
        except (ValueError, TypeError):
            pass
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pandas comes with the quality extra; without it there are no GX results either
        pass
    return str(value)


def _raw(table: str, level: str, expression: str, result: dict[str, Any], exception: str | None) -> str:
    """The one-line GX form the gate used to print; kept for auditors who read GX."""
    text = f"{table}.{level}: {expression}"
    if exception:
        return f"{text} could not run: {exception}"
    rows = result.get("unexpected_index_list") or []
    if rows and isinstance(rows[0], dict):
        shown = "; ".join(" ".join(f"{k}={v}" for k, v in r.items()) for r in rows[:MAX_LISTED])
        more = f" (+{len(rows) - MAX_LISTED} more)" if len(rows) > MAX_LISTED else ""
        return f"{text} failed for {result.get('unexpected_count', len(rows))} rows: {shown}{more}"
    if result.get("partial_unexpected_list"):
        return f"{text} failed; unexpected values {result['partial_unexpected_list'][:MAX_LISTED]}"
    return f"{text} failed; observed {result.get('observed_value')!r}"


def _value_counts(rows: list[dict[str, Any]]) -> dict[str, list[list[Any]]]:
    """Per column, [value, count] over every row, most frequent first; values keep their JSON type."""
    counts: dict[str, Counter] = {}
    for row in rows:
        for key, value in row.items():
            counts.setdefault(key, Counter())[value if not isinstance(value, list | dict) else str(value)] += 1
    return {k: [[v, n] for v, n in c.most_common(MAX_COUNTED)] for k, c in counts.items()}


def record_from_result(table: str, level: str, res: Any, max_rows: int = MAX_ROWS) -> ExpectationRecord:
    """One GX ExpectationValidationResult as an ExpectationRecord."""
    cfg = res.expectation_config
    kwargs = {k: plain(v) for k, v in cfg.kwargs.items() if k not in _SKIP_KWARGS}
    typ = str(getattr(cfg, "type", None) or type(cfg).__name__)
    result = res.result or {}
    info = res.exception_info or {}
    if info and "raised_exception" not in info:  # GX may key exception info by metric
        info = next((v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")), {})
    exception = str(info.get("exception_message")) if info.get("raised_exception") else None
    index = plain(result.get("unexpected_index_list") or [])
    rows = [r if isinstance(r, dict) else {"row": r} for r in index]
    record = ExpectationRecord(
        table=table,
        level=level,
        expectation_type=typ,
        kwargs=kwargs,
        success=bool(res.success),
        observed_value=plain(result.get("observed_value")),
        element_count=plain(result.get("element_count")),
        missing_count=plain(result.get("missing_count")),
        unexpected_count=plain(result.get("unexpected_count")),
        unexpected_percent=plain(result.get("unexpected_percent")),
        unexpected_rows=rows[:max_rows],
        unexpected_values=plain((result.get("partial_unexpected_list") or [])[:max_rows]) if not rows else [],
        value_counts=_value_counts(rows),
        details=plain(result.get("details")),
        exception=exception,
    )
    if not record.success:
        record.raw = _raw(table, level, record.expression, plain(result), exception)
    return record


def records_from_validation(validation: Any, max_rows: int = MAX_ROWS) -> list[ExpectationRecord]:
    """Every expectation of a GX ExpectationSuiteValidationResult whose suite is named `<table>.<level>`."""
    table, _, level = str(validation.suite_name).rpartition(".")
    return [record_from_result(table, level, r, max_rows) for r in validation.results]


# ---------------------------------------------------------------------------------------------------- GX Data Docs


def escape_markup(value: Any) -> Any:
    """Every string in a nested value HTML-escaped (dict keys too), for pages that print values unescaped."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, dict):
        return {escape_markup(k): escape_markup(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(escape_markup(v) for v in value)
    return value


def escape_for_data_docs(validation: Any) -> Any:
    """A copy of a GX suite validation result whose data values are HTML-escaped.

    GX 1.x lays out unexpected rows, unexpected values and observed column names as raw HTML, so a footage sidecar
    value such as `<script>` would run in Data Docs. The expectations' own arguments (our thresholds) are left alone:
    GX escapes those itself.
    """
    import copy

    safe = copy.deepcopy(validation)
    for res in safe.results:
        if res.result:
            res.result = escape_markup(dict(res.result))
        if res.exception_info:
            res.exception_info = escape_markup(dict(res.exception_info))
    return safe


# ---------------------------------------------------------------------------------------------------- the page


@dataclass
class _Row:
    """One expectation as the page shows it."""

    anchor: str
    level: str
    status: str
    check: str
    guards: str
    observed: str
    words: str | None
    expression: str
    exception: str | None
    columns: list[str]
    unexpected: list[list[str]]
    more: int


def observed(record: ExpectationRecord) -> str:
    """What the expectation saw, in words: "12 of 384 rows unexpected (3.1%)", "mean 0.42", "no column"."""
    if record.exception:
        return "could not run"
    if record.element_count is not None:
        n, total = record.unexpected_count or 0, record.element_count
        if total == 0:
            return "no rows to check"
        judged = total - (record.missing_count or 0)
        base = f"{n} of {judged} rows unexpected" if n else f"all {judged} rows as expected"
        if record.missing_count:
            base += f" ({record.missing_count} empty, not judged)"
        return base
    if record.observed_value is not None:
        value = record.observed_value
        if isinstance(value, list):
            return (
                f"{len(value)} columns: " + ", ".join(str(v) for v in value[:40]) + (" …" if len(value) > 40 else "")
            )
        return words.number(value, words.value_kind(record))
    if record.expectation_type == "expect_column_to_exist":
        return "present" if record.success else "missing"
    return "as expected" if record.success else "failed"


def _cell(value: Any) -> str:
    if value is None:
        return "\N{EM DASH}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def page_rows(records: list[ExpectationRecord]) -> dict[str, list[_Row]]:
    """The page's rows per table, in the order the tables were validated; within a table, failures first."""
    out: dict[str, list[_Row]] = {}
    for i, record in enumerate(records):
        column = record.kwargs.get("column") or ", ".join(str(c) for c in record.kwargs.get("column_list") or [])
        columns = list(dict.fromkeys(k for row in record.unexpected_rows for k in row))
        out.setdefault(record.table, []).append(
            _Row(
                anchor=f"e{i}",
                level=record.level,
                status="error" if record.exception else ("passed" if record.success else "FAILED"),
                check=f"{column}: {words.limit(record)}" if column else words.limit(record),
                guards=words.guards(record),
                observed=observed(record),
                words=None if record.success else words.describe(record),
                expression=record.expression,
                exception=record.exception,
                columns=columns,
                unexpected=[[_cell(row.get(c)) for c in columns] for row in record.unexpected_rows],
                more=max(0, (record.unexpected_count or 0) - len(record.unexpected_rows)),
            )
        )
    for table_rows in out.values():  # what needs a look first: failed blocking, failed warning, then the rest
        table_rows.sort(key=lambda r: (r.status == "passed", r.level != "blocking"))
    return out


def render_validation_page(
    records: list[ExpectationRecord],
    gate: dict[str, Any],
    out_path: pathlib.Path,
    *,
    title: str = "emopipe quality gate",
    version: str | None = None,
) -> pathlib.Path:
    """Write the gate's results as one self-contained HTML page (no external resources) and return its path.

    Args:
        records: every expectation the gate ran (GateResult.records).
        gate: the gate's outcome: success, dataset_digest, blocking_failures, warnings (in words), data_docs.
        out_path: the file to write (validation.html beside validation.json); its folder is created.
        title: the page's title.
        version: the published version, when there is one.
    """
    from emopipe import templates

    rows = page_rows(records)
    failed = [r for r in records if not r.success]
    context = {
        "title": title,
        "version": version,
        "success": bool(gate.get("success")),
        "digest": gate.get("dataset_digest") or None,
        "data_docs": gate.get("data_docs"),
        "blocking": list(gate.get("blocking_failures") or []),
        "warnings": list(gate.get("warnings") or []),
        "n_records": len(records),
        "n_failed": len(failed),
        "n_tables": len(rows),
        "tables": [
            {
                "name": table,
                "rows": table_rows,
                "failed": sum(r.status != "passed" for r in table_rows),
            }
            for table, table_rows in rows.items()
        ],
    }
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(templates.render("validation.html.j2", context), encoding="utf-8")
    return out_path
