"""The outcome of the quality gate over one dataset, as stored in its validation.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emopipe.quality.record import ExpectationRecord


@dataclass
class GateResult:
    """Outcome of the gate over one dataset folder.

    Args:
        success: no blocking failure.
        dataset_digest: the content hash of the dataset that was validated (publish refuses another one).
        files_fingerprint: which files held its tables, untouched (`Dataset.files_fingerprint`): publishing a folder
            with the same fingerprint trusts `dataset_digest` instead of reading every row again.
        blocking_failures: one sentence per failed blocking expectation (emopipe.quality.words).
        warnings: one sentence per failed warning expectation.
        suites: per suite, whether it passed and how many expectations it evaluated and failed.
        data_docs: the URL of Great Expectations' Data Docs site.
        records: every expectation that ran, with its threshold, what it observed, the unexpected rows and the raw
            GX form (`raw`), for the offline validation page.
    """

    success: bool
    dataset_digest: str
    files_fingerprint: str | None = None
    blocking_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_docs: str | None = None
    records: list[ExpectationRecord] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for a person: what failed, with the offending rows and values."""
        head = "quality gate passed" if self.success else "quality gate FAILED; nothing will be published"
        lines = [f"{head} ({len(self.blocking_failures)} blocking failures, {len(self.warnings)} warnings)"]
        lines += [f"  BLOCKING {m}" for m in self.blocking_failures]
        lines += [f"  warning  {m}" for m in self.warnings]
        if self.data_docs:
            lines.append(f"  Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        known = {f.name for f in fields(cls)}
        records = [
            r if isinstance(r, ExpectationRecord) else ExpectationRecord.from_dict(r)
            for r in data.get("records") or []
        ]
        return cls(**{**{k: v for k, v in data.items() if k in known}, "records": records})
