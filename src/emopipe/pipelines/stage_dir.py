"""The folder a stage writes: clips.parquet, quarantine.parquet and source.json (which corpus, which root)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pyarrow as pa

from emopipe import io, schemas


@dataclass(frozen=True)
class StageDir:
    """One stage's output folder.

    Args:
        path: the folder.
    """

    path: pathlib.Path

    @property
    def clips_path(self) -> pathlib.Path:
        return self.path / "clips.parquet"

    @property
    def quarantine_path(self) -> pathlib.Path:
        return self.path / "quarantine.parquet"

    def clips(self) -> pa.Table:
        return io.read_table(self.clips_path, schemas.CLIPS)

    def quarantine(self) -> pa.Table:
        return io.read_table(self.quarantine_path, schemas.QUARANTINE)

    def source(self) -> dict[str, str]:
        return io.read_json(self.path / "source.json")

    def corpus_roots(self) -> dict[str, pathlib.Path]:
        """Corpus name -> the root its clips' media_path is relative to."""
        return {c: pathlib.Path(r) for c, r in self.source()["corpora"].items()}

    def write(self, clips: pa.Table, quarantine: pa.Table, source: dict[str, str]) -> pathlib.Path:
        io.write_table(clips.sort_by("clip_id"), self.clips_path, schemas.CLIPS)
        io.write_table(
            quarantine.sort_by([("path", "ascending"), ("stage", "ascending")]),
            self.quarantine_path,
            schemas.QUARANTINE,
        )
        io.write_json(self.path / "source.json", source)
        return self.path
