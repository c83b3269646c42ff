"""The quality gate: run every table's blocking and warning suites with Great Expectations and build Data Docs.

`run()` writes the validated folder (clips, quarantine, metric tables, validation.json). Publishing reads
validation.json and refuses anything that did not pass or that changed since it was validated.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe import io, schemas
from emopipe.config import Params
from emopipe.pipelines.stage_dir import StageDir
from emopipe.quality import suites
from emopipe.stages import balance

log = logging.getLogger(__name__)

TABLES = (
    "clips", "class_balance", "balance_summary", "fold_balance", "representation", "near_duplicates", "extraction"
)  # fmt: skip
METRICS = (*TABLES[1:], "label_dependence", "model_parity")
FEATURES_FILE = "features.parquet"
# Tables a labelled folder carries; each is gated by its suite in quality/ and published with the dataset.
LABEL_TABLES = ("labels", "agreement", "fused_labels")
MAX_LISTED = 5


@dataclass
class GateResult:
    """Outcome of the gate over one dataset folder."""

    success: bool
    dataset_digest: str
    blocking_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_docs: str | None = None

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
        return cls(**data)


# Columns that measure a run rather than describe the data (per table); the dataset digest leaves them out.
MEASURED = {"labels": ("seconds",)}


def dataset_digest(
    clips: pa.Table, quarantine: pa.Table, extraction: pa.Table | None = None, labelled: dict | None = None
) -> str:
    """Content hash of a dataset, independent of which run produced it (quarantine run ids are left out).

    Features enter through the extraction table: which clips have rows, from which extractor version, with
    which errors. Given the clips' sha256 (in the clips digest) and the extractor version, the rows are fixed.
    """
    h = hashlib.sha256()
    h.update(io.table_digest(clips).encode())
    h.update(io.table_digest(quarantine.drop_columns(["run_id"])).encode())
    if extraction is not None:
        h.update(io.table_digest(extraction).encode())
    for name, table in sorted((labelled or {}).items()):
        # labels.seconds is a wall-clock measurement, different on every run: content hashes leave it out
        measured = [c for c in MEASURED.get(name, ()) if c in table.column_names]
        h.update(name.encode() + io.table_digest(table.drop_columns(measured)).encode())
    return h.hexdigest()


def label_tables(folder: pathlib.Path) -> dict[str, pa.Table]:
    """The labels, agreement and fused_labels tables of a folder, as on disk, for those present."""
    return {t: pq.read_table(path) for t in LABEL_TABLES if (path := pathlib.Path(folder) / f"{t}.parquet").is_file()}


def features_extraction(folder: pathlib.Path) -> pa.Table | None:
    """The extraction table of a folder's features.parquet, None when the folder has no features."""
    from emopipe.stages.extract import extraction_table

    path = pathlib.Path(folder) / FEATURES_FILE
    return extraction_table(path) if path.is_file() else None


def _coverage(clips: pa.Table, extraction: pa.Table) -> str | None:
    """A blocking message when features and clips do not cover the same clips, else None."""
    have, want = set(extraction["clip_id"].to_pylist()), set(clips["clip_id"].to_pylist())
    if have == want:
        return None
    missing, extra = sorted(want - have), sorted(have - want)
    return (
        f"features: {len(missing)} clips without a features row {missing[:MAX_LISTED]}, "
        f"{len(extra)} features rows without a clip {extra[:MAX_LISTED]}"
    )


def metric_tables(clips: pa.Table) -> dict[str, pa.Table]:
    """The computed tables the balance and representation suites validate."""
    cb = balance.class_balance(clips)
    return {
        "class_balance": cb,
        "balance_summary": balance.balance_summary(clips, cb),
        "fold_balance": balance.fold_balance(clips, cb),
        "representation": balance.representation(clips),
        "near_duplicates": balance.near_duplicates(clips),
    }


def _gx_context(project_dir: pathlib.Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="file", project_root_dir=str(project_dir))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _describe(table: str, level: str, res: Any, id_columns: tuple[str, ...]) -> str:
    cfg = res.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in {"batch_id", "result_format"}}
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "value_set" or len(str(v)) < 80)
    text = f"{table}.{level}: {type(cfg).__name__ if not hasattr(cfg, 'type') else cfg.type}({args})"
    info = res.exception_info or {}
    if info.get("raised_exception"):
        return f"{text} could not run: {info.get('exception_message')}"
    result = res.result or {}
    rows = result.get("unexpected_index_list") or []
    if rows:
        shown = "; ".join(" ".join(f"{k}={v}" for k, v in r.items()) for r in rows[:MAX_LISTED])
        more = f" (+{len(rows) - MAX_LISTED} more)" if len(rows) > MAX_LISTED else ""
        return f"{text} failed for {result.get('unexpected_count', len(rows))} rows: {shown}{more}"
    if result.get("partial_unexpected_list"):
        return f"{text} failed; unexpected values {result['partial_unexpected_list'][:MAX_LISTED]}"
    return f"{text} failed; observed {result.get('observed_value')!r}"


def validate_tables(
    tables: dict[str, pa.Table], params: Params, run_name: str, notes: dict[str, list[str]] | None = None
) -> GateResult:
    """Run the suites of every table in `tables` (raw Arrow, as read from disk) and collect the outcome.

    `notes` (table -> Markdown lines) are attached to that table's suites and shown in Data Docs.
    """
    import great_expectations as gx
    import pandas as pd

    ctx = _gx_context(params.work_dir / "gx")
    source = ctx.data_sources.add_or_update_pandas("emopipe")
    result = GateResult(success=True, dataset_digest="")
    for table, data in tables.items():
        spec = suites.load_spec(table)
        schema = schemas.load_schema(table)
        try:
            asset = source.get_asset(table)
        except LookupError:
            asset = source.add_dataframe_asset(table)
        try:
            batch_def = asset.get_batch_definition("whole")
        except KeyError:
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
        definitions = []
        for level in suites.LEVELS:
            suite = ctx.suites.add_or_update(
                suites.build_suite(table, level, schema, params.validate, (notes or {}).get(table))
            )
            definitions.append(
                ctx.validation_definitions.add_or_update(
                    gx.ValidationDefinition(name=f"{table}.{level}", data=batch_def, suite=suite)
                )
            )
        id_columns = [c for c in spec.id_columns if c in data.column_names]
        checkpoint = ctx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"gate.{table}",
                validation_definitions=definitions,
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": id_columns},
            )
        )
        frame = data.to_pandas(types_mapper=pd.ArrowDtype)
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_name))
        for vres in outcome.run_results.values():
            level = vres.suite_name.rsplit(".", 1)[1]
            failed = [r for r in vres.results if not r.success]
            result.suites[vres.suite_name] = {
                "success": vres.success,
                "evaluated": len(vres.results),
                "failed": len(failed),
            }
            messages = [_describe(table, level, r, spec.id_columns) for r in failed]
            (result.blocking_failures if level == "blocking" else result.warnings).extend(messages)
    result.success = not result.blocking_failures
    sites = ctx.get_docs_sites_urls()
    result.data_docs = sites[0]["site_url"] if sites else None
    return result


def run(params: Params, in_dir: pathlib.Path, out_dir: pathlib.Path, run_id: str) -> GateResult:
    """Validate a probed dataset folder; write it, its metric tables and validation.json to out_dir."""
    src, dst = StageDir(pathlib.Path(in_dir)), StageDir(pathlib.Path(out_dir))
    raw_clips = pq.read_table(src.clips_path)  # as on disk: the gate checks the declared types itself
    quarantine = src.quarantine()
    extraction = features_extraction(src.path)
    errors = []
    try:
        clips = schemas.conform(raw_clips, schemas.CLIPS)
        tables = {"clips": raw_clips, **metric_tables(clips)}
    except schemas.SchemaError as err:
        clips, tables = None, {"clips": raw_clips}
        errors.append(f"clips: does not match schemas/clips.yaml: {err}")
    if extraction is not None:
        tables["extraction"] = extraction
        if clips is not None and (gap := _coverage(clips, extraction)):
            errors.append(gap)
    labelled = label_tables(src.path)
    tables.update(labelled)
    if clips is not None:
        from emopipe import audit

        tables.update(audit.bias_tables(src.path, params.validate))
    report = (dst.path / "reports" / "bias_report.html").resolve()
    link = [f"Bias report (per corpus, fold and group; datasheet beside it): [{report}]({report.as_uri()})"]
    notes = {t: link for t in ("representation", "class_balance", "label_dependence", "model_parity")}
    result = validate_tables(tables, params, run_name=run_id, notes=notes)
    if errors:
        result.blocking_failures[:0] = errors
        result.success = False
    if clips is not None:
        result.dataset_digest = dataset_digest(clips, quarantine, extraction, labelled)
        dst.write(clips, quarantine, src.source())
        if src.path.resolve() != dst.path.resolve():
            for name in [FEATURES_FILE] * (extraction is not None) + [f"{t}.parquet" for t in labelled]:
                io.link_or_copy(src.path / name, dst.path / name)
            if (src.path / "reports").is_dir():  # the labelling stage's confusion matrices and metrics
                shutil.copytree(src.path / "reports", dst.path / "reports", dirs_exist_ok=True)
        reports = dst.path / "reports"
        for name in METRICS:
            if name in tables:
                io.write_table(tables[name], reports / f"{name}.parquet", schemas.load_schema(name))
        io.write_json(reports / "balance.json", balance_metrics(tables))
        from emopipe import audit

        io.write_json(reports / "bias.json", audit.bias_metrics(tables))
    elif src.path != dst.path:
        dst.path.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src.quarantine_path, dst.quarantine_path)
    io.write_json(dst.path / "validation.json", result.to_dict())
    if clips is not None:  # the bias report of this dataset, with the gate's outcome in it
        from emopipe import audit_report

        metrics = {k: tables[k] for k in METRICS if k in tables}
        audit_report.render(dst.path, dst.path / "reports", tables=metrics, thresholds=params.validate)
    (log.info if result.success else log.error)("%s", result.summary())
    return result


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


def load_result(folder: pathlib.Path) -> GateResult:
    """The gate result stored in a validated folder."""
    path = pathlib.Path(folder) / "validation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `emopipe validate` on this folder first")
    return GateResult.from_dict(io.read_json(path))
