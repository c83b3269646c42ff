"""Ingest: read a corpus as it sits on disk into a clips table and a quarantine table."""

from __future__ import annotations

import logging
import pathlib

from emopipe.config import Params
from emopipe.pipelines.stage_dir import StageDir
from emopipe.sources.base import ProgressFn

log = logging.getLogger(__name__)


def prepare_root(params: Params) -> pathlib.Path:
    """The configured corpus root, or the demo corpus (generated if missing) when none is configured."""
    if params.ingest.root is not None:
        return params.ingest.root
    from emopipe.demo import make_ravdess_demo

    return make_ravdess_demo(params.corpus_root(), params.ingest.demo)


def run(
    corpus: str, root: pathlib.Path, out_dir: pathlib.Path, run_id: str, progress: ProgressFn | None = None
) -> pathlib.Path:
    """Scan `root` with the reader for `corpus`; write clips.parquet, quarantine.parquet and source.json to out_dir."""
    if corpus != "ravdess":
        raise ValueError(f"no reader for corpus {corpus!r} yet (supported: ravdess)")
    from emopipe.sources import ravdess

    result = ravdess.scan(pathlib.Path(root), run_id, progress=progress)
    out = StageDir(pathlib.Path(out_dir)).write(
        result.clips, result.quarantine, {"corpus": corpus, "root": str(pathlib.Path(root).resolve())}
    )
    log.info("ingest: %d clips, %d quarantined -> %s", result.clips.num_rows, result.quarantine.num_rows, out)
    return out
