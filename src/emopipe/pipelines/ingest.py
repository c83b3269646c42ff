"""Ingest: read corpora as they sit on disk into one clips table and one quarantine table."""

from __future__ import annotations

import logging
import pathlib

import pyarrow as pa

from emopipe import io, schemas
from emopipe.config import Params, SourceConfig
from emopipe.pipelines.stage_dir import StageDir
from emopipe.sources.base import ProgressFn, ScanResult

log = logging.getLogger(__name__)


def configured_sources(params: Params) -> list[SourceConfig]:
    """The corpora params.yaml asks for; the demo RAVDESS corpus (generated if missing) when none is set."""
    if params.ingest.sources:
        return list(params.ingest.sources)
    if params.ingest.root is not None:
        return [SourceConfig(params.ingest.corpus, params.ingest.root)]
    from emopipe.demo import make_ravdess_demo

    return [SourceConfig("ravdess", make_ravdess_demo(params.corpus_root(), params.ingest.demo))]


def prepare_root(params: Params) -> pathlib.Path:
    """The single configured corpus root (generating the demo corpus when none is set)."""
    return configured_sources(params)[0].root


def scan_source(source: SourceConfig, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Run the reader for one corpus."""
    from emopipe.sources import dfew, footage, mafw, ravdess

    if source.corpus == "footage":
        return footage.scan(source.root, run_id, progress=progress, license=source.license or "unspecified")
    reader = {"ravdess": ravdess, "dfew": dfew, "mafw": mafw}[source.corpus]
    return reader.scan(source.root, run_id, progress=progress)


def run_sources(
    sources: list[SourceConfig],
    out_dir: pathlib.Path,
    run_id: str,
    progress: ProgressFn | None = None,
    forgotten: dict[str, dict] | None = None,
) -> pathlib.Path:
    """Scan every source; write one clips.parquet, one quarantine.parquet and source.json (corpus -> root).

    Clips of the subjects in `forgotten` (emopipe.forget's register) are left out; forget_removed.json says which.
    """
    from emopipe import forget

    results = [scan_source(s, run_id, progress) for s in sources]
    clips = pa.concat_tables([r.clips for r in results]) if results else schemas.from_rows([], schemas.CLIPS)
    clips, removed = forget.drop(clips, forgotten or {})
    quarantine = (
        pa.concat_tables([r.quarantine for r in results]) if results else schemas.from_rows([], schemas.QUARANTINE)
    )
    source = {"corpora": {s.corpus: str(pathlib.Path(s.root).resolve()) for s in sources}}
    out = StageDir(pathlib.Path(out_dir)).write(clips, quarantine, source)
    io.write_json(out / forget.REMOVED, {"removed": removed})
    log.info(
        "ingest: %d clips, %d quarantined from %s -> %s",
        clips.num_rows,
        quarantine.num_rows,
        ", ".join(s.corpus for s in sources),
        out,
    )
    return out


def run(
    corpus: str,
    root: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    *,
    progress: ProgressFn | None = None,
    license: str | None = None,
) -> pathlib.Path:
    """Scan one corpus root; write clips.parquet, quarantine.parquet and source.json to out_dir."""
    return run_sources([SourceConfig(corpus, pathlib.Path(root), license)], out_dir, run_id, progress)
