"""The quality gate: run every table's blocking and warning suites with Great Expectations and build Data Docs.

`run()` validates a dataset (emopipe.dataset.Dataset: each table read once) and writes the validated folder: the
dataset's tables (hard-linked, unchanged), the metric tables, the bias report, validation.json and validation.html
(every expectation in words, readable offline). Publishing reads validation.json and refuses anything that did not
pass or that changed since it was validated.
"""

from __future__ import annotations

import html
import logging
import pathlib
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from emopipe import io, schemas
from emopipe.config import Params
from emopipe.dataset import Dataset, DatasetWriter
from emopipe.quality import metrics, page, suites, words
from emopipe.quality.result import GateResult

log = logging.getLogger(__name__)

MAX_LISTED = 5
VALIDATION_PAGE = "validation.html"  # the gate's results as one offline page, beside validation.json
__all__ = ["GateResult", "load_result", "run", "validate_tables"]


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


def _splits(ds: Dataset, clips: pa.Table, tables: dict[str, pa.Table]) -> list[str]:
    """Add the splits table and what its folds' train and test parts share (split_leaks) to the gate's tables;
    return the blocking messages the suites cannot express (a schema mismatch, rows of clips that do not exist)."""
    from emopipe import splits

    tables["splits"] = ds.raw("splits")
    try:
        table = ds.splits
    except schemas.SchemaError as err:
        return [f"splits: does not match schemas/splits.yaml: {err}"]
    tables["split_leaks"] = splits.leaks(table, clips)
    strays = sorted(set(table["clip_id"].to_pylist()) - set(clips["clip_id"].to_pylist()))
    if strays:
        return [f"splits: {len(strays)} clips in the splits table are not in clips {strays[:MAX_LISTED]}"]
    return []


DOCS_SITE = "gx/uncommitted/data_docs/local_site"  # under <work_dir>/gx: where GX's Data Docs are built


def _gx_context(project_dir: pathlib.Path) -> Any:
    """An ephemeral GX context whose one Data Docs site is a folder under `project_dir`.

    The suites are rebuilt from quality/*.yaml on every gate run, so nothing needs GX's file stores: with a file
    context, storing the 28 suites, validation definitions and checkpoints again (add_or_update compares every
    expectation with every stored one, and each store access re-reads great_expectations.yml) took three quarters
    of the gate's time (cProfile, 96 clips, 14 tables: 33 of 45 s). The site keeps the pages of earlier runs; its
    index lists this run's results.
    """
    # GX logs hundreds of INFO lines per run (its decorators at import, `config_provider` on every asset): quiet
    # them before the first import, unless someone configured GX's logging on purpose.
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(project_dir / DOCS_SITE)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={"local_site": site},
        analytics_enabled=False,
    )
    ctx = gx.get_context(mode="ephemeral", project_config=config)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


SUITE_PAGES = "emopipe-suite-pages.json"  # in the Data Docs site: suite name -> digest of the suite its page shows


def _suite_digest(suite: Any) -> str:
    import hashlib
    import json

    def plain(value: Any) -> Any:  # without the ids GX gives the suite and its expectations on every run
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "id"}
        return [plain(v) for v in value] if isinstance(value, list) else value

    return hashlib.sha256(json.dumps(plain(suite.to_json_dict()), sort_keys=True, default=str).encode()).hexdigest()


def _suite_pages(site: pathlib.Path) -> dict[str, str]:
    try:
        drawn = io.read_json(site / SUITE_PAGES)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in drawn.items()} if isinstance(drawn, dict) else {}


def _suite_page(site: pathlib.Path, suite_name: str) -> pathlib.Path:
    return site / "expectations" / f"{suite_name.replace('.', '/')}.html"


def validate_tables(
    tables: dict[str, pa.Table], params: Params, run_name: str, notes: dict[str, list[str]] | None = None
) -> GateResult:
    """Run the suites of every table in `tables` (raw Arrow, as read from disk) and collect the outcome.

    `notes` (table -> Markdown lines) are attached to that table's suites and shown in Data Docs.
    """
    project = params.work_dir / "gx"
    ctx = _gx_context(project)  # first: it quiets GX's logging before GX is imported
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator

    source = ctx.data_sources.add_pandas("emopipe")
    result = GateResult(success=True, dataset_digest="")
    docs: list[Any] = []
    run = gx.RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    site = project / DOCS_SITE  # the folder _gx_context's one Data Docs site builds into
    drawn = _suite_pages(site)
    for table, data in tables.items():
        spec = suites.load_spec(table)
        schema = schemas.load_schema(table)
        batch_def = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
        id_columns = [c for c in spec.id_columns if c in data.column_names]
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": id_columns}
        frame = data.to_pandas(types_mapper=pd.ArrowDtype)
        # The suites are stored (Data Docs render them); they run on one Validator of the table's frame directly:
        # GX's checkpoints and validation definitions would re-check every stored object for freshness on each run
        # (a sixth of the gate's time) for nothing the gate uses, and one Validator for both levels computes the
        # metrics they share (columns, types) once.
        validator = Validator(
            batch_definition=batch_def, batch_parameters={"dataframe": frame}, result_format=result_format
        )
        for level in suites.LEVELS:
            suite = ctx.suites.add(suites.build_suite(table, level, schema, params.validate, (notes or {}).get(table)))
            vres = validator.validate_expectation_suite(suite)
            vres.meta.update(run_id=run, validation_time=run.run_time)
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
            # GX prints unexpected rows and observed values into its pages unescaped: Data Docs are built from
            # escaped copies (records and messages keep the values as they are).
            suite_id = ExpectationSuiteIdentifier(name=suite.name)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=suite_id, run_id=run, batch_identifier=validator.active_batch_id
            )
            ctx.validation_results_store.set(key, page.escape_for_data_docs(vres))
            docs.append(key)
            digest = _suite_digest(suite)
            if drawn.get(suite.name) != digest or not _suite_page(site, suite.name).is_file():
                docs.append(suite_id)  # a suite page already built from the same suite is kept as it is
                drawn[suite.name] = digest
    if docs:
        ctx.build_data_docs(resource_identifiers=docs)
        io.write_json(site / SUITE_PAGES, drawn)
    result.success = not result.blocking_failures
    sites = ctx.get_docs_sites_urls()
    result.data_docs = sites[0]["site_url"] if sites else None
    return result


def run(params: Params, in_dir: pathlib.Path | Dataset, out_dir: pathlib.Path, run_id: str) -> GateResult:
    """Validate a dataset (a folder, or a Dataset already open); write it (unchanged), its metric tables, reports,
    validation.json and validation.html to out_dir. Each of its tables is read once."""
    ds = in_dir if isinstance(in_dir, Dataset) else Dataset.open(in_dir)
    raw_clips = ds.raw("clips")  # as stored: the gate checks the declared types itself
    errors = []
    try:
        clips = ds.clips
        tables: dict[str, pa.Table] = {"clips": raw_clips, **metrics.balance_tables(clips)}
    except schemas.SchemaError as err:
        clips, tables = None, {"clips": raw_clips}
        errors.append(f"clips: does not match schemas/clips.yaml: {err}")
    extraction = ds.extraction
    if extraction is not None:
        tables["extraction"] = extraction
        if clips is not None and (gap := _coverage(clips, extraction)):
            errors.append(gap)
    if clips is not None and ds.has("splits"):
        errors += _splits(ds, clips, tables)
    labelled = ds.label_tables()
    tables.update(labelled)
    if ds.has("estimates"):  # attribute estimates (estimate_attributes); their instrument audit comes with the bias
        tables["estimates"] = ds.table("estimates")
    if clips is not None:
        tables.update(metrics.bias_tables(ds, params.validate))
    report = (pathlib.Path(out_dir) / "reports" / "bias_report.html").resolve()
    shown = html.escape(str(report))  # Data Docs render notes as Markdown, which passes HTML through
    link = [f"Bias report (per corpus, fold and group; datasheet beside it): [{shown}]({report.as_uri()})"]
    notes = {
        t: link for t in ("representation", "class_balance", "label_dependence", "model_parity", "instrument_audit")
    }
    result = validate_tables(tables, params, run_name=run_id, notes=notes)
    if errors:
        result.blocking_failures[:0] = errors
        result.success = False
    if clips is not None:
        result.dataset_digest, result.files_fingerprint = ds.digest, ds.files_fingerprint
    stages = {**ds.stages, "validate": {"success": result.success}}
    with DatasetWriter(out_dir, corpora=ds.corpora, synthetic=ds.synthetic, stages=stages) as writer:
        writer.pass_through(ds)
        for name in ("forget_removed.json",):
            if (ds.path / name).is_file():
                io.link_or_copy(ds.path / name, writer.tmp / name)
        writer.copy_tree("reports", ds.path / "reports")  # the labelling stage's confusion matrices and metrics
        reports = writer.tmp / "reports"
        if clips is not None:
            for name in metrics.METRICS:
                if name in tables:
                    io.write_table(tables[name], reports / f"{name}.parquet", schemas.load_schema(name))
            if "split_leaks" in tables:  # what each fold's train and test parts share, published with the version
                leaks = tables["split_leaks"]
                io.write_table(leaks, reports / "split_leaks.parquet", schemas.load_schema("split_leaks"))
            io.write_json(reports / "balance.json", metrics.balance_metrics(tables))
            io.write_json(reports / "bias.json", metrics.bias_metrics(tables))
        io.write_json(writer.tmp / "validation.json", result.to_dict())
        page.render_validation_page(result.records, result.to_dict(), writer.tmp / VALIDATION_PAGE)
        if clips is not None:  # the bias report of this dataset, with the gate's outcome in it
            from emopipe import audit_report

            shown = {k: tables[k] for k in metrics.METRICS if k in tables}
            inputs = audit_report.inputs_from(ds, tables=shown, gate=result, thresholds=params.validate)
            inputs.validation_page = writer.tmp / VALIDATION_PAGE
            audit_report.render(inputs, reports)
        writer.commit()
    (log.info if result.success else log.error)("%s", result.summary())
    return result


def load_result(folder: pathlib.Path) -> GateResult:
    """The gate result stored in a validated folder."""
    path = pathlib.Path(folder) / "validation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `emopipe validate` on this folder first")
    return GateResult.from_dict(io.read_json(path))
