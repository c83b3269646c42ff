"""Bias audit of a dataset or a published version: the bias tables, their GX suites, metrics and the report.

The gate (emopipe.quality.validate) computes the same tables on every refresh; `audit_version` re-audits any
published version by its tag (pulled with DVC into a fresh clone) for the attributes asked for, and publishes
nothing.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass
from typing import Any

from emopipe import io, schemas
from emopipe.config import Params
from emopipe.dataset import Dataset
from emopipe.quality import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit: the gate over the bias tables, the metrics, and where the report is."""

    success: bool
    blocking_failures: list[str]
    warnings: list[str]
    metrics: dict[str, Any]
    report: pathlib.Path
    datasheet: pathlib.Path
    out_dir: pathlib.Path


def known_attributes(attributes: tuple[str, ...], ds: Dataset | None = None) -> None:
    """Every attribute asked for is a column of the clips table, or one an estimator may fill (their pairwise
    intersections are audited too). With `ds`, its own clips columns and estimated attributes count as well; without,
    the check needs nothing pulled."""
    from emopipe import schemas
    from emopipe.estimators.vocabulary import attributes as estimable

    columns = set(schemas.CLIPS.names) | set(estimable())
    if ds is not None:
        columns |= set(ds.clips.column_names)
        if ds.has("estimates"):
            columns |= set(ds.table("estimates")["attribute"].to_pylist())
    if unknown := [a for a in attributes if a not in columns]:
        raise ValueError(
            f"unknown attributes {unknown}: not columns of the clips table nor estimated (e.g. gender, age_group)"
        )


def audit_dataset(
    params: Params,
    ds: Dataset,
    out_dir: pathlib.Path,
    run_name: str,
    *,
    attributes: tuple[str, ...] | None = None,
    version: str | None = None,
) -> AuditResult:
    """Compute the bias tables of a dataset, run their suites, write metrics and the report to out_dir."""
    from emopipe import audit_report
    from emopipe.quality.validate import validate_tables

    if attributes:
        known_attributes(attributes, ds)
    out_dir = pathlib.Path(out_dir)
    tables = metrics.bias_tables(ds, params.validate, attributes)
    gate = validate_tables(tables, params, run_name=run_name)
    for name, table in tables.items():
        io.write_table(table, out_dir / f"{name}.parquet", schemas.load_schema(name))
    numbers = metrics.bias_metrics(tables)
    io.write_json(out_dir / "bias.json", numbers)
    io.write_json(
        out_dir / "audit.json",
        {"success": gate.success, "blocking_failures": gate.blocking_failures, "warnings": gate.warnings},
    )
    shown = {**metrics.balance_tables(ds.clips), **tables}
    inputs = audit_report.inputs_from(ds, tables=shown, version=version, thresholds=params.validate)
    paths = audit_report.render(inputs, out_dir)
    (log.info if gate.success else log.error)("bias audit of %s: %s", version or ds.path, gate.summary())
    return AuditResult(
        gate.success, gate.blocking_failures, gate.warnings, numbers, paths["html"], paths["datasheet"], out_dir
    )


def audit_version(
    params: Params, tag: str, out_dir: pathlib.Path, attributes: tuple[str, ...] | None = None
) -> AuditResult:
    """Pull a published version with DVC into out_dir/checkout and audit it; nothing is published."""
    import shutil

    from emopipe import versioning

    if attributes:
        known_attributes(attributes)  # before pulling anything
    out_dir = pathlib.Path(out_dir)
    shutil.rmtree(out_dir / "checkout", ignore_errors=True)
    clone = versioning.checkout(params, tag, out_dir / "checkout")
    ds = Dataset.open(clone / "dataset")
    return audit_dataset(params, ds, out_dir, f"audit-{tag}", attributes=attributes, version=tag)
