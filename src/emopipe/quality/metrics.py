"""The tables the gate validates beyond the dataset's own: class balance, representation, near-duplicates, bias.

Pure functions of a dataset's tables (computed by emopipe.stages.balance and emopipe.stages.bias), used by the gate
(emopipe.quality.validate) and by the audit of a published version (emopipe.audit); plus their flat forms for
`dvc metrics diff`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from emopipe.config import ValidateConfig
from emopipe.dataset import Dataset
from emopipe.stages import balance

# Metric tables written to reports/ and published with a version.
METRICS = (
    "class_balance", "balance_summary", "fold_balance", "representation", "near_duplicates", "label_dependence",
    "model_parity", "instrument_audit", "attribute_coverage",
)  # fmt: skip
BIAS_TABLES = ("label_dependence", "model_parity")
ESTIMATOR_TABLES = ("instrument_audit", "attribute_coverage")  # only with estimates (emopipe.estimators)


def balance_tables(clips: pa.Table) -> dict[str, pa.Table]:
    """The computed tables the balance and representation suites validate."""
    cb = balance.class_balance(clips)
    return {
        "class_balance": cb,
        "balance_summary": balance.balance_summary(clips, cb),
        "fold_balance": balance.fold_balance(clips, cb),
        "representation": balance.representation(clips),
        "near_duplicates": balance.near_duplicates(clips),
    }


def audit_clips(ds: Dataset, cfg: ValidateConfig) -> tuple[pa.Table, dict[str, pa.Table]]:
    """The clips the bias tables count, and the instrument audit behind them.

    Without estimates: the clips as the corpus gave them, and no tables. With an `estimates` table: each estimator's
    instrument audit on the clips whose attribute is known (instrument_audit), and a copy of the clips in which
    estimates of the trusted estimators fill the attributes the corpus left null (`<attribute>_source = estimated`;
    never replacing a value), with the share left unknown (attribute_coverage). The dataset's clips table is not
    changed.
    """
    from emopipe.estimators import audit

    estimates = ds.table("estimates") if ds.has("estimates") else None
    return audit.audit_tables(ds.clips, estimates, ds.stages, cfg)


def bias_tables(ds: Dataset, cfg: ValidateConfig, attributes: tuple[str, ...] | None = None) -> dict[str, pa.Table]:
    """label_dependence (human labels vs groups) and, where model labels exist, model_parity; with estimates, also
    instrument_audit and attribute_coverage, and the bias tables then count trusted estimates (see `audit_clips`)."""
    from emopipe.stages import bias

    attrs = tuple(attributes or cfg.bias_attributes)
    clips, out = audit_clips(ds, cfg)
    out["label_dependence"] = bias.label_dependence(clips, attrs, cfg.min_cell_count)
    if (labels := ds.labels) is not None:
        out["model_parity"] = bias.model_parity(clips, labels, attrs, ds.extraction, cfg.min_group_count)
    return out


def balance_metrics(tables: dict[str, pa.Table]) -> dict[str, Any]:
    """Flat numbers for `dvc metrics diff` between versions."""
    out: dict[str, Any] = {}
    for row in tables["balance_summary"].to_pylist():
        out[row["corpus"]] = {k: row[k] for k in ("n_clips", "n_labelled", "min_share", "imbalance_ratio")}
        out[row["corpus"]]["class_share"] = {
            r["label"]: round(r["share"], 6)
            for r in tables["class_balance"].to_pylist()
            if r["corpus"] == row["corpus"]
        }
    for row in tables["representation"].to_pylist():
        out.setdefault(row["corpus"], {}).setdefault(f"{row['attribute']}_share", {})[row["group"]] = round(
            row["share"], 6
        )
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
    for row in tables.get("instrument_audit", pa.table({})).to_pylist():
        by = out.setdefault("instrument_audit", {}).setdefault(row["estimator"], {}).setdefault(row["corpus"], {})
        by[row["truth_group"]] = {k: row[k] for k in ("n_answered", "accuracy", "coverage", "trusted")}
    for row in tables.get("attribute_coverage", pa.table({})).to_pylist():
        by = out.setdefault("attribute_coverage", {}).setdefault(row["corpus"], {})
        by[row["attribute"]] = {k: row[k] for k in ("n_estimated", "n_unknown", "share_unknown")}
    return _rounded(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
