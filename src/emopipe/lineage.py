"""OpenLineage for the DAGs: what each task read and wrote, named so a lineage backend joins tasks and runs.

Airflow's OpenLineage provider emits a START and a COMPLETE (or FAIL) event for every task to the configured
transport, but it learns a task's datasets only from an extractor for its operator, and no extractor knows
emopipe's folders. Airflow's hook-level lineage (the collector the provider reads when an operator reports
nothing) was looked at first: it turns a `file://` asset into a dataset but drops everything else about it, so it
cannot carry the published version, and in `airflow dags test` (every task in one process) it keeps what earlier
tasks collected. So a task says what it read and wrote with the functions below (`stage`, `ingested`,
`published`, ...), which record plain `Ref`s for the running task instance, and `Extractor` — registered with
`[openlineage] extractors = emopipe.lineage.Extractor` — hands them to the provider, with schema, row-count and
version facets, when it builds the task's COMPLETE or FAIL event. Outside an Airflow task they do nothing, and
nothing here ever fails a task: lineage is a report about the work, not part of it.

Names follow the OpenLineage naming spec: a local path is namespace `file` (or `[emopipe] lineage_namespace`, e.g.
`file://nfs-server`) with the absolute path as name; `s3://bucket/key` is namespace `s3://bucket`, name `key`. A
table is named by its place in its stage folder without a suffix
(`<work_dir>/runs/<run_id>/extract_features/features`), so the task that wrote it and the task that read it name
the same dataset. A published version is the data repository (and the DVC remote it was pushed to) with the
dataset version facet `<tag>@<commit>`: one dataset whose versions a backend lists, joined to the audits that
check a tag out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import pathlib
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "file"  # the OpenLineage naming spec's namespace for a local file system


@dataclasses.dataclass(frozen=True)
class Ref:
    """One dataset a task read or wrote.

    Args:
        namespace: OpenLineage namespace (`file`, `s3://bucket`, ...).
        name: its name in the namespace (an absolute path for files).
        fields: the declared schema, as (column, Arrow type, doc) triples; empty when not a table.
        rows: rows in the table, when known.
        files: files that hold it, when known.
        size: bytes on disk, when known.
        version: the dataset version (`<tag>@<commit>` of a published version).
    """

    namespace: str
    name: str
    fields: tuple[tuple[str, str, str], ...] = ()
    rows: int | None = None
    files: int | None = None
    size: int | None = None
    version: str | None = None


# (dag_id, task_id, run_id, map_index, try_number) -> {"inputs": {(namespace, name): Ref}, "outputs": {...}}.
# Filled by the task, read by Extractor in the same process (the provider forks after the task to emit, so the
# fork sees it).
_REPORTED: dict[tuple, dict[str, dict[tuple[str, str], Ref]]] = {}


def _best_effort(fn: Callable[..., None]) -> Callable[..., None]:
    """Lineage must never fail or stop a task: any error in `fn` becomes one warning."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - advisory metadata: whatever broke, the task goes on
            log.warning("lineage: %s left out (%s: %s)", fn.__name__, type(err).__name__, err)

    return run


# ------------------------------------------------------------------------------------------------ naming


def namespace() -> str:
    """The namespace of local paths: `[emopipe] lineage_namespace` in Airflow's config, else `file`."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # not under Airflow (a library caller): the spec's default
        return DEFAULT_NAMESPACE
    return conf.get("emopipe", "lineage_namespace", fallback=DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE


def location(where: str | pathlib.Path, local: str | None = None) -> tuple[str, str]:
    """(namespace, name) of a path or URL, after the OpenLineage naming spec.

    Args:
        where: a local path (made absolute) or a URL such as `s3://bucket/key`.
        local: the namespace of local paths (default: `namespace()`).
    """
    text = str(where)
    parts = urllib.parse.urlsplit(text)
    if "://" in text and parts.scheme and parts.scheme != "file":
        if parts.scheme in {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "wasbs", "azure"}:
            return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
        return f"{parts.scheme}://{parts.netloc}", parts.path or "/"
    path = urllib.parse.unquote(parts.path) if parts.scheme == "file" else text
    return (local or namespace()), str(pathlib.Path(path).resolve())


def version_of(tag: str, commit: str | None) -> str:
    """The dataset version of a published version: `<tag>@<commit>` (the tag alone when the commit is unknown)."""
    return f"{tag}@{commit}" if commit else tag


def _fields(table: str) -> tuple[tuple[str, str, str], ...]:
    from emopipe.dataset import schema_of

    try:
        schema = schema_of(table)
    except (OSError, KeyError, ValueError):  # a file under reports/ without a declared schema
        return ()
    return tuple((f.name, str(f.type), (f.metadata or {}).get(b"doc", b"").decode()) for f in schema)


def _size(paths: Iterable[pathlib.Path]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def tables(folder: str | pathlib.Path, only: Iterable[str] | None = None, local: str | None = None) -> list[Ref]:
    """The datasets of a stage folder: every table of its manifest, the metric tables under reports/, the gate's
    validation.json.

    Args:
        folder: a dataset folder (a stage's output or a checked-out version).
        only: just these tables of the manifest (and nothing else).
        local: the namespace of local paths (default: `namespace()`).
    """
    import pyarrow.parquet as pq

    from emopipe.dataset import Dataset

    ds = Dataset.open(folder)
    root = ds.path.resolve()
    ns = local or namespace()
    wanted = set(only) if only is not None else None
    refs = []
    for name, entry in sorted(ds.manifest.get("tables", {}).items()):
        if wanted is not None and name not in wanted:
            continue
        files = ds.files(name)
        refs.append(Ref(ns, str(root / name), _fields(name), int(entry.get("rows", 0)), len(files), _size(files)))
    if wanted is None:
        for path in sorted((root / "reports").glob("*.parquet")):
            rows = pq.ParquetFile(path).metadata.num_rows  # the footer only
            refs.append(Ref(ns, str(root / "reports" / path.stem), _fields(path.stem), rows, 1, _size([path])))
        if (root / "validation.json").is_file():
            refs.append(paths(root / "validation.json", local=ns)[0])
    return refs


def corpora(folder: str | pathlib.Path, local: str | None = None) -> list[Ref]:
    """The corpus roots the clips of a dataset folder come from."""
    from emopipe.dataset import Dataset

    return paths(*Dataset.open(folder).corpora.values(), local=local)


def paths(*where: str | pathlib.Path, local: str | None = None) -> list[Ref]:
    """Plain datasets for files, folders or URLs (a corpus root, a report); the size of a local file."""
    refs = []
    for item in where:
        ns, name = location(item, local)
        is_file = "://" not in str(item) and pathlib.Path(name).is_file()
        refs.append(Ref(ns, name, files=1 if is_file else None, size=_size([pathlib.Path(name)]) if is_file else None))
    return refs


def release(data_repo: str | pathlib.Path, remote: str | None, tag: str, commit: str | None) -> list[Ref]:
    """A published version: the data repository, and the DVC remote its data was pushed to, at `<tag>@<commit>`."""
    version = version_of(tag, commit)
    refs = [dataclasses.replace(paths(data_repo)[0], version=version)]
    if remote:
        refs.append(dataclasses.replace(paths(remote)[0], version=version))
    return refs


# ------------------------------------------------------------------------------------------------ what tasks call


def _task_key(ti: Any) -> tuple:
    return (ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1), getattr(ti, "try_number", None))


def _current_key() -> tuple | None:
    try:
        from airflow.sdk import get_current_context

        return _task_key(get_current_context()["ti"])
    except (ImportError, RuntimeError, KeyError):  # not inside an Airflow task: nobody to tell
        return None


@_best_effort
def report(inputs: Iterable[Ref] = (), outputs: Iterable[Ref] = ()) -> None:
    """Record datasets the running task read or wrote (added to what it reported before; a no-op outside a task)."""
    key = _current_key()
    if key is None:
        return
    seen = _REPORTED.setdefault(key, {"inputs": {}, "outputs": {}})
    for kind, refs in (("inputs", inputs), ("outputs", outputs)):
        for ref in refs:
            seen[kind][(ref.namespace, ref.name)] = ref


def reported(ti: Any) -> tuple[list[Ref], list[Ref]] | None:
    """What a task instance reported (inputs, outputs), or None when it reported nothing."""
    seen = _REPORTED.get(_task_key(ti))
    if not seen:
        return None
    return list(seen["inputs"].values()), list(seen["outputs"].values())


@_best_effort
def stage(inputs: Iterable[str] = (), outputs: Iterable[str] = ()) -> None:
    """A stage task read the tables of the `inputs` folders and wrote those of the `outputs` folders."""
    report(
        inputs=[ref for folder in inputs for ref in tables(folder)],
        outputs=[ref for folder in outputs for ref in tables(folder)],
    )


@_best_effort
def ingested(folder: str) -> None:
    """The ingest task read the corpus roots recorded in its output folder and wrote that folder's tables."""
    report(inputs=corpora(folder), outputs=tables(folder))


@_best_effort
def published(publish_json: str) -> None:
    """The publish task wrote the version named in its publish.json (also when it was unchanged: the same one)."""
    from emopipe import io

    rec = io.read_json(pathlib.Path(publish_json))
    report(outputs=release(rec["data_repo"], rec.get("remote"), rec["version"], rec.get("commit")))


@_best_effort
def exported(publish_json: str, export_json: str) -> None:
    """The export task read the version of publish.json and wrote one folder per format (export.json's `out`s)."""
    from emopipe import io

    rec = io.read_json(pathlib.Path(publish_json))
    done = io.read_json(pathlib.Path(export_json)) or {}
    if not done:
        return
    report(
        inputs=release(rec["data_repo"], rec.get("remote"), rec["version"], rec.get("commit")),
        outputs=paths(*(facts["out"] for facts in done.values())),
    )


@_best_effort
def checked_out(tag: str, dataset_dir: str) -> None:
    """A checkout read a published version (the clone's origin at its HEAD) and wrote the clone's tables."""
    from emopipe import versioning

    clone = pathlib.Path(dataset_dir).parent
    origin = versioning.git(clone, "remote", "get-url", "origin").strip()
    commit = versioning.git(clone, "rev-parse", "HEAD").strip()
    report(inputs=release(origin, None, tag, commit), outputs=tables(dataset_dir))


@_best_effort
def audited(result: dict[str, Any]) -> None:
    """The bias audit wrote its report, datasheet and bias.json (what `refresh.bias_audit` returned)."""
    report(outputs=paths(*(result[k] for k in ("report", "datasheet", "metrics"))))


@_best_effort
def run_report(rep: dict[str, Any]) -> None:
    """The run report read the clips and quarantine of the run's last stage, the gate result and publish.json."""
    run_dir = pathlib.Path(rep["run_dir"])
    read = tables(rep["dataset_dir"], only=("clips", "quarantine")) if rep.get("dataset_dir") else []
    read += paths(*(p for p in (run_dir / "validate" / "validation.json", run_dir / "publish.json") if p.is_file()))
    report(inputs=read, outputs=paths(run_dir / "report.json", run_dir / "report.md"))


@_best_effort
def scanned(change: dict[str, Any]) -> None:
    """The footage scan read the corpus roots (a stat per file)."""
    report(inputs=paths(*change.get("roots", {}).values()))


# ------------------------------------------------------------------------------------------------ the extractor


def to_openlineage(ref: Ref, output: bool) -> Any:
    """An OpenLineage InputDataset / OutputDataset for a Ref, with schema, version and statistics facets."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        dataset_version_dataset,
        output_statistics_output_dataset,
        schema_dataset,
    )

    facets: dict[str, Any] = {}
    if ref.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d or None)
                for n, t, d in ref.fields
            ]
        )
    if ref.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=ref.version)
    if not output:
        return InputDataset(namespace=ref.namespace, name=ref.name, facets=facets)
    stats = {}
    if (ref.rows, ref.size, ref.files) != (None, None, None):
        stats["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=ref.rows, size=ref.size, fileCount=ref.files
        )
    return OutputDataset(namespace=ref.namespace, name=ref.name, facets=facets, outputFacets=stats)


def _extractor_class() -> type:
    from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
    from airflow.providers.openlineage.utils.utils import get_unknown_source_attribute_run_facet

    class Extractor(BaseExtractor):
        """The OpenLineage provider's extractor for TaskFlow tasks: the datasets a task reported through this module.

        A task that reported nothing gets what the provider gives any TaskFlow task (the unknown-source facet,
        then hook lineage and inlets/outlets), so other DAGs in the same deployment are not affected.
        """

        @classmethod
        def get_operator_classnames(cls) -> list[str]:
            return ["_PythonDecoratedOperator"]  # what @task makes

        def _execute_extraction(self) -> OperatorLineage:
            # START: the task has not run yet, so it has reported nothing.
            return OperatorLineage(run_facets=get_unknown_source_attribute_run_facet(task=self.operator))

        def extract_on_complete(self, task_instance: Any) -> OperatorLineage:
            found = reported(task_instance)
            if found is None:
                return self.extract()
            inputs, outputs = found
            return OperatorLineage(
                inputs=[to_openlineage(r, output=False) for r in inputs],
                outputs=[to_openlineage(r, output=True) for r in outputs],
            )

        def extract_on_failure(self, task_instance: Any) -> OperatorLineage:
            return self.extract_on_complete(task_instance)  # what a failed task had read (and written) so far

    Extractor.__module__ = __name__
    Extractor.__qualname__ = "Extractor"
    return Extractor


@functools.cache
def __getattr__(name: str) -> Any:
    # `emopipe.lineage.Extractor` is built on first access, so importing this module (in every task) does not
    # import the OpenLineage provider; the provider imports it by that dotted path from `[openlineage] extractors`.
    if name == "Extractor":
        return _extractor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
