"""Resumable, all-or-nothing export folders.

An export is written unit by unit (a Parquet file, a tar shard, a batch of clips) into `<out>/.emopipe-partial/`.
A unit is written under a temporary name and moved into place when complete, and only then recorded in the
journal (`state.json`, replaced atomically), so an interrupted export loses at most the unit it was writing. The
next run with the same key (the version's digest, the format, the plan of clips and the options) resumes after the
last recorded unit; a run with another key starts over. `finish` moves every unit into `<out>` and writes
`export.json` last: an export folder without `export.json` is never complete, and one with it is whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from emopipe import io

PARTIAL = ".emopipe-partial"
MANIFEST = "export.json"
STATE = "state.json"


class StagingError(ValueError):
    """The export folder holds something this export must not overwrite."""


class HashingWriter:
    """A binary file that hashes what is written to it (so a unit's sha256 costs no second read).

    Args:
        fh: the file opened for writing.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.fh.flush()

    @property
    def closed(self) -> bool:
        return self.fh.closed

    def close(self) -> None:
        self.fh.close()


class Staging:
    """The partial folder of one export.

    Args:
        out: the export folder.
        key: what identifies this export (same key: resume; other key: start over).
    """

    def __init__(self, out: pathlib.Path, key: dict[str, Any]) -> None:
        self.out = pathlib.Path(out)
        self.key = key
        self.dir = self.out / PARTIAL
        self.files = self.dir / "files"
        self.tmp = self.dir / "tmp"
        self.state: dict[str, Any] = {"key": key, "units": {}, "data": {}}

    # ------------------------------------------------------------------------------------------- open

    def complete(self) -> dict[str, Any] | None:
        """The manifest when `out` already holds this very export; StagingError when it holds another one."""
        path = self.out / MANIFEST
        if not path.is_file():
            return None
        manifest = io.read_json(path)
        if manifest.get("key") == self.key:
            return manifest
        raise StagingError(
            f"{self.out} already holds another export ({manifest.get('format')} of {manifest.get('version')}, "
            f"{_describe(manifest.get('key', {}))}): choose another --out"
        )

    def open(self) -> bool:
        """Prepare the partial folder; True when it resumes an earlier attempt of the same export."""
        self.out.mkdir(parents=True, exist_ok=True)
        state_path = self.dir / STATE
        if state_path.is_file():
            state = io.read_json(state_path)
            if state.get("key") == self.key:
                self.state = state
                shutil.rmtree(self.tmp, ignore_errors=True)  # the unit that was being written when it stopped
                self.tmp.mkdir(parents=True, exist_ok=True)
                return True
            shutil.rmtree(self.dir)  # an interrupted export of something else: its units are of no use here
        elif others := [p.name for p in self.out.iterdir() if p.name != PARTIAL]:
            raise StagingError(f"{self.out} is not empty ({', '.join(sorted(others)[:3])}, ...): choose another --out")
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._save()
        return False

    # ------------------------------------------------------------------------------------------- units

    def done(self, split: str) -> int:
        """How many items of `split` the recorded units hold (a resumed export skips that many)."""
        return sum(u["items"] for u in self.state["units"].get(split, []))

    def units(self, split: str) -> list[dict[str, Any]]:
        return list(self.state["units"].get(split, []))

    def data(self, name: str, default: Any = None) -> Any:
        """Small state a format keeps between units (e.g. the entries of the JSON files written at the end)."""
        return self.state["data"].get(name, default)

    def temp(self, name: str) -> pathlib.Path:
        """A temporary path for a unit being written."""
        return self.tmp / name

    @contextmanager
    def writing(self, name: str) -> Iterator[tuple[pathlib.Path, HashingWriter]]:
        """A temporary file for a unit, hashed as it is written; closed on exit."""
        path = self.temp(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = HashingWriter(path.open("wb"))
        try:
            yield path, fh
        finally:
            if not fh.closed:
                fh.close()

    def commit(
        self,
        split: str,
        items: int,
        files: dict[str, pathlib.Path],
        *,
        facts: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move a finished unit's files (final relative path -> temporary path) into the partial folder and record
        it; `facts` (sha256, bytes, ...) go into its journal entry, `data` replaces those keys of the state."""
        for rel, path in files.items():
            target = self.files / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                if target.exists():
                    shutil.rmtree(target)
                os.replace(path, target)
            else:
                os.replace(path, target)
        entry = {"items": items, "files": sorted(files), **(facts or {})}
        self.state["units"].setdefault(split, []).append(entry)
        self.state["data"].update(data or {})
        self._save()
        from emopipe.versioning import failpoint

        failpoint("export:after_unit")  # the crash tests kill an export here, between two units
        return entry

    def _save(self) -> None:
        io.write_json(self.dir / STATE, self.state)

    # ------------------------------------------------------------------------------------------- finish

    def finish(self, manifest: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Move every unit into `out`, write the small files of `extra` (relative path -> JSON data or text), then
        export.json; remove the partial folder. Running it again after a crash completes the same export."""
        for path in sorted(p for p in self.files.rglob("*") if p.is_file()):
            target = self.out / path.relative_to(self.files)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        for rel, value in (extra or {}).items():
            if isinstance(value, str):
                tmp = self.out / f".{pathlib.Path(rel).name}.tmp"
                tmp.write_text(value, encoding="utf-8")
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, self.out / rel)
            else:
                io.write_json(self.out / rel, value)
        manifest = {**manifest, "key": self.key}
        io.write_json(self.out / MANIFEST, manifest)
        shutil.rmtree(self.dir, ignore_errors=True)
        return manifest


def _describe(key: dict[str, Any]) -> str:
    return ", ".join(f"{k} {json.dumps(key[k])}" for k in ("protocol", "fold") if k in key) or "other settings"
