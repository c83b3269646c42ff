"""Bias audit of a dataset folder or a published version: metric tables, their GX suites, metrics, report.

The gate (`emopipe.quality.validate`) runs the same tables on every refresh; `audit_version` re-audits any
published version by its tag (pulled with DVC into a fresh clone) for the attributes asked for, and
publishes nothing.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import io
from emopipe.config import Params, ValidateConfig
from emopipe.pipelines.stage_dir import StageDir

log = logging.getLogger(__name__)

BIAS_TABLES = ("label_dependence", "model_parity")


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


def bias_tables(folder: pathlib.Path, cfg: ValidateConfig, attributes: tuple[str, ...] | None = None) -> dict:
    """label_dependence (human labels vs groups) and, where model labels exist, model_parity."""
    from emopipe.stages import bias

    folder = pathlib.Path(folder)
    clips = StageDir(folder).clips()
    attrs = tuple(attributes or cfg.bias_attributes)
    out = {"label_dependence": bias.label_dependence(clips, attrs, cfg.min_cell_count)}
    if (folder / "labels.parquet").is_file():
        extraction = None
        if (folder / "features.parquet").is_file():
            from emopipe.stages.extract import extraction_table

            extraction = extraction_table(folder / "features.parquet")
        labels = pq.read_table(folder / "labels.parquet")
        out["model_parity"] = bias.model_parity(clips, labels, attrs, extraction, cfg.min_group_count)
    return out


def bias_metrics(tables: dict[str, pa.Table]) -> dict[str, Any]:
    """Flat numbers for `dvc metrics diff` between versions: per corpus and attribute, per labeler."""
    out: dict[str, Any] = {}
    for row in tables.get("label_dependence", pa.table({})).to_pylist():
        key = out.setdefault("label_dependence", {}).setdefault(row["corpus"], {})
        key[row["attribute"]] = {k: row[k] for k in ("n_clips", "cramers_v", "p_value", "max_gap", "testable")}
    for row in tables.get("model_parity", pa.table({})).to_pylist():
        by = out.setdefault("model_parity", {}).setdefault(row["labeler"], {}).setdefault(row["corpus"], {})
        by[row["attribute"]] = {
            k: row[k]
            for k in ("recall_ratio", "demographic_parity_ratio", "equalized_odds_difference", "face_hit_ratio")
        }
    return _rounded(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def audit_folder(
    params: Params,
    folder: pathlib.Path,
    out_dir: pathlib.Path,
    run_name: str,
    *,
    attributes: tuple[str, ...] | None = None,
    version: str | None = None,
) -> AuditResult:
    """Compute the bias tables of a dataset folder, run their suites, write metrics and the report to out_dir."""
    from emopipe import audit_report, schemas
    from emopipe.quality.validate import validate_tables

    out_dir = pathlib.Path(out_dir)
    tables = bias_tables(folder, params.validate, attributes)
    gate = validate_tables(tables, params, run_name=run_name)
    for name, table in tables.items():
        io.write_table(table, out_dir / f"{name}.parquet", schemas.load_schema(name))
    metrics = bias_metrics(tables)
    io.write_json(out_dir / "bias.json", metrics)
    io.write_json(
        out_dir / "audit.json",
        {"success": gate.success, "blocking_failures": gate.blocking_failures, "warnings": gate.warnings},
    )
    paths = audit_report.render_folder(
        pathlib.Path(folder), out_dir, tables=tables, version=version, thresholds=params.validate
    )
    (log.info if gate.success else log.error)("bias audit of %s: %s", version or folder, gate.summary())
    return AuditResult(
        gate.success, gate.blocking_failures, gate.warnings, metrics, paths["html"], paths["datasheet"], out_dir
    )


def audit_version(
    params: Params, tag: str, out_dir: pathlib.Path, attributes: tuple[str, ...] | None = None
) -> AuditResult:
    """Pull a published version with DVC into out_dir/dataset and audit it; nothing is published."""
    import shutil

    from emopipe import versioning

    out_dir = pathlib.Path(out_dir)
    shutil.rmtree(out_dir / "checkout", ignore_errors=True)
    clone = versioning.checkout(params, tag, out_dir / "checkout")
    return audit_folder(params, clone / "dataset", out_dir, f"audit-{tag}", attributes=attributes, version=tag)
