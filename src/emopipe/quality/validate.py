"""The quality gate: run every table's blocking and warning suites with Great Expectations and build Data Docs.

`run()` writes the validated folder (clips, quarantine, metric tables, validation.json). Publishing reads
validation.json and refuses anything that did not pass or that changed since it was validated.
"""

from __future__ import annotations

import hashlib
import html
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
from emopipe.quality import page, suites, words
from emopipe.quality.page import ExpectationRecord
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
VALIDATION_PAGE = "validation.html"  # the gate's results as one offline page, beside validation.json


@dataclass
class GateResult:
    """Outcome of the gate over one dataset folder.

    `blocking_failures` and `warnings` are sentences for a person (emopipe.quality.words); `records` holds every
    expectation that ran, with its threshold, what it observed, the unexpected rows and the raw GX form (`raw`).
    """

    success: bool
    dataset_digest: str
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
        records = [
            r if isinstance(r, ExpectationRecord) else ExpectationRecord.from_dict(r)
            for r in data.get("records") or []
        ]
        return cls(**{**data, "records": records})


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
        h.update(name.encode() + io.table_digest(table).encode())
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
    # GX logs hundreds of INFO lines per run (its decorators at import, `config_provider` on every asset): quiet
    # them before the first import, unless someone configured GX's logging on purpose.
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="file", project_root_dir=str(project_dir))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _store_for_data_docs(ctx: Any, outcome: Any) -> list[Any]:
    """Replace a checkpoint's stored results by copies whose data values are HTML-escaped; return their ids.

    GX prints unexpected rows and observed values into its pages unescaped, so Data Docs are built from escaped
    copies (records and messages keep the values as they are).
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    identifiers: list[Any] = []
    for key, vres in outcome.run_results.items():
        ctx.validation_results_store.set(key, page.escape_for_data_docs(vres))
        identifiers += [key, ExpectationSuiteIdentifier(name=vres.suite_name)]
    return identifiers


def validate_tables(
    tables: dict[str, pa.Table], params: Params, run_name: str, notes: dict[str, list[str]] | None = None
) -> GateResult:
    """Run the suites of every table in `tables` (raw Arrow, as read from disk) and collect the outcome.

    `notes` (table -> Markdown lines) are attached to that table's suites and shown in Data Docs.
    """
    ctx = _gx_context(params.work_dir / "gx")  # first: it quiets GX's logging before GX is imported
    import great_expectations as gx
    import pandas as pd

    source = ctx.data_sources.add_or_update_pandas("emopipe")
    result = GateResult(success=True, dataset_digest="")
    docs: list[Any] = []
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
                actions=[],  # Data Docs are built once, at the end, from escaped copies of the results
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": id_columns},
            )
        )
        frame = data.to_pandas(types_mapper=pd.ArrowDtype)
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_name))
        for vres in outcome.run_results.values():
            records = page.records_from_validation(vres)
            failed = [r for r in records if not r.success]
            result.suites[vres.suite_name] = {
                "success": vres.success,
                "evaluated": len(vres.results),
                "failed": len(failed),
            }
            result.records += records
            for record in failed:
                (result.blocking_failures if record.level == "blocking" else result.warnings).append(
                    words.describe(record)
                )
        docs += _store_for_data_docs(ctx, outcome)
    if docs:
        ctx.build_data_docs(resource_identifiers=docs)
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
    shown = html.escape(str(report))  # Data Docs render notes as Markdown, which passes HTML through
    link = [f"Bias report (per corpus, fold and group; datasheet beside it): [{shown}]({report.as_uri()})"]
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
    page.render_validation_page(result.records, result.to_dict(), dst.path / VALIDATION_PAGE)
    if clips is not None:  # the bias report of this dataset, with the gate's outcome in it
        from emopipe import audit_report

        metrics = {k: tables[k] for k in METRICS if k in tables}
        audit_report.render_folder(dst.path, dst.path / "reports", tables=metrics, thresholds=params.validate)
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
