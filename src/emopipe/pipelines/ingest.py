"""Ingest: read corpora as they sit on disk into one clips table and one quarantine table (a dataset folder)."""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import pyarrow as pa

from emopipe import io, schemas
from emopipe.config import Params, SourceConfig, SplitsConfig
from emopipe.dataset import Dataset, DatasetWriter
from emopipe.sources.base import ProgressFn, ScanResult

log = logging.getLogger(__name__)

SYNTHETIC_MARKER = ".emopipe-synthetic.json"  # written by generators (emopipe.demo) at a corpus root


def configured_sources(params: Params) -> list[SourceConfig]:
    """The corpora params.yaml asks for; the demo RAVDESS corpus (generated if missing) when none is set."""
    if params.ingest.sources:
        return list(params.ingest.sources)
    if params.ingest.root is not None:
        return [SourceConfig(corpus=params.ingest.corpus, root=params.ingest.root)]
    from emopipe.demo import make_ravdess_demo

    return [SourceConfig(corpus="ravdess", root=make_ravdess_demo(params.corpus_root(), params.ingest.demo))]


def scan_source(source: SourceConfig, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Run the reader for one corpus."""
    from emopipe.sources import dfew, footage, mafw, ravdess

    if source.corpus == "footage":
        result = footage.scan(source.root, run_id, progress=progress, license=source.license or "unspecified")
    else:
        reader = {"ravdess": ravdess, "dfew": dfew, "mafw": mafw}[source.corpus]
        result = reader.scan(source.root, run_id, progress=progress)
    if not result.clips.num_rows and not result.quarantine.num_rows and source.corpus != "footage":
        # a released corpus always has files its layout names: this is most likely not the corpus's root
        log.warning(
            "%s: nothing under %s is named as the %s layout names its files; is it the corpus root?",
            source.corpus, source.root, source.corpus,
        )  # fmt: skip
    return result


def synthetic(root: pathlib.Path) -> str | None:
    """What generated a corpus, when its root carries the generator's marker; None for a real corpus."""
    marker = pathlib.Path(root) / SYNTHETIC_MARKER
    if not marker.is_file():
        return None
    try:
        data = io.read_json(marker)
    except (OSError, ValueError):
        return "generated (its marker file is unreadable)"
    if isinstance(data, dict):
        return str(data.get("description") or data.get("generator") or "generated")
    return "generated"


def run_sources(
    sources: list[SourceConfig],
    out_dir: pathlib.Path,
    run_id: str,
    progress: ProgressFn | None = None,
    forgotten: dict[str, dict] | None = None,
    *,
    previous: Dataset | None = None,
    hashes: pathlib.Path | None = None,
    splits: SplitsConfig | None = None,
) -> Dataset:
    """Scan every source; write a dataset folder with the clips, quarantine and splits tables.

    Args:
        sources: the corpora.
        out_dir: the folder to write.
        run_id: the run, recorded in quarantine rows.
        progress: called with 1 per file scanned.
        forgotten: emopipe.forget's register: clips of these subjects are left out (forget_removed.json says which).
        previous: the last ingest's dataset: its clips shards whose rows are unchanged are kept, not rewritten.
        hashes: a file of (path, size, mtime) -> sha256 records: files unchanged since are not hashed again; the
            records of this scan are written back to it.
        splits: how the subject-disjoint folds are made (params.yaml `ingest.splits`); default: its defaults.
    """
    from emopipe import forget
    from emopipe import splits as split_protocols
    from emopipe.sources import hashcache

    known = hashcache.load(hashes) if hashes else {}
    with hashcache.reusing(known) as seen:
        results = [scan_source(s, run_id, progress) for s in sources]
    clips = pa.concat_tables([r.clips for r in results]) if results else schemas.from_rows([], schemas.CLIPS)
    clips, removed = forget.drop(clips, forgotten or {})
    cfg = splits or SplitsConfig()
    # after the forget register: a forgotten subject never takes a place in a fold
    split_table = split_protocols.build(clips, cfg.subject_folds, cfg.seed)
    quarantine = (
        pa.concat_tables([r.quarantine for r in results]) if results else schemas.from_rows([], schemas.QUARANTINE)
    )
    corpora = {s.corpus: str(pathlib.Path(s.root).resolve()) for s in sources}
    generated = {s.corpus: text for s in sources if (text := synthetic(s.root))}
    with DatasetWriter(out_dir, corpora=corpora, synthetic=generated) as writer:
        writer.write_table("clips", clips.sort_by("clip_id"), previous=previous)
        writer.write_table("quarantine", quarantine.sort_by([("path", "ascending"), ("stage", "ascending")]))
        writer.write_table("splits", split_table)
        writer.write_json(forget.REMOVED, {"removed": removed})
        writer.record_stage("ingest", {"n_clips": clips.num_rows, "n_quarantined": quarantine.num_rows})
        out = writer.commit()
    if hashes:
        hashcache.save(seen, hashes)
    log.info(
        "ingest: %d clips, %d quarantined from %s -> %s (%d of %d files hashed, the rest unchanged)",
        clips.num_rows, quarantine.num_rows, ", ".join(s.corpus for s in sources), out.path,
        sum(1 for k, v in seen.items() if known.get(k) != v), len(seen),
    )  # fmt: skip
    return out


def run(
    corpus: str,
    root: pathlib.Path,
    out_dir: pathlib.Path,
    run_id: str,
    *,
    progress: ProgressFn | None = None,
    license: str | None = None,
    **kwargs: Any,
) -> Dataset:
    """Scan one corpus root into a dataset folder (clips and quarantine tables)."""
    return run_sources(
        [SourceConfig(corpus=corpus, root=pathlib.Path(root), license=license)], out_dir, run_id, progress, **kwargs
    )
