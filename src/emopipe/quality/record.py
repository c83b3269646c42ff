"""One expectation's outcome as the gate records it (validation.json `records`), for the page, the words and the
gate result alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class ExpectationRecord:
    """One expectation of one suite, as the gate ran it.

    Args:
        table: the table validated (quality/<table>.yaml).
        level: "blocking" or "warning".
        expectation_type: the GX type, e.g. "expect_column_values_to_be_between".
        kwargs: its arguments (thresholds resolved), without GX's batch_id and result_format.
        success: whether it passed.
        observed_value: what an aggregate expectation observed (a row count, a mean, the column names).
        element_count: rows looked at (map expectations).
        missing_count: of those, rows whose value was null (not judged by most expectations).
        unexpected_count: rows that broke the expectation.
        unexpected_percent: their share in percent, as GX computes it.
        unexpected_rows: up to MAX_ROWS unexpected rows: the suite's id columns plus the checked column.
        unexpected_values: up to MAX_ROWS unexpected values, when the rows cannot be identified.
        value_counts: per id column, [value, count] pairs over every unexpected row, most frequent first (at most
            MAX_COUNTED values).
        details: GX's details, e.g. {"mismatched": {"missing": [...]}} for a column set.
        exception: the error message when the expectation could not run.
        raw: the GX form in one line, "<table>.<level>: expect_...(kwargs) failed for N rows: ...".
    """

    table: str
    level: str
    expectation_type: str
    kwargs: dict[str, Any]
    success: bool
    observed_value: Any = None
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_rows: list[dict[str, Any]] = field(default_factory=list)
    unexpected_values: list[Any] = field(default_factory=list)
    value_counts: dict[str, list[list[Any]]] = field(default_factory=dict)
    details: dict[str, Any] | None = None
    exception: str | None = None
    raw: str = ""

    @property
    def suite(self) -> str:
        return f"{self.table}.{self.level}"

    @property
    def expression(self) -> str:
        """The expectation as GX writes it: `expect_...(column='share', min_value=0.01)`."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items() if k != "value_set" or len(str(v)) < 80 or not v)
        return f"{self.expectation_type}({args})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpectationRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
