"""Raw footage: any folder tree of videos, with optional annotations.

- Media: .mp4 .avi .mkv .mov .webm anywhere under the root (hidden files skipped). A symlink that leaves the root
  is refused (quarantine `unsafe_path`); one that stays inside is read once, through its target.
- Annotations (LAION Open Empathic style), either a sidecar `<clip stem>.json` beside the clip, or one
  `annotations.csv` / `annotations.parquet` per folder with a `path` (or `file`) column relative to that folder.
  Fields: transcription, language, age (or age_group / age_bin), gender, accent, arousal (0..10), valence,
  emotions (a list, or a string split on , ; |), audio_quality. Emotions map through the taxonomy's synonyms:
  one known emotion is the label, several are `compound_labels`; anything else is kept in `native_fields`.
- Exact duplicates (same bytes) are one clip; the other paths are in `duplicate_paths`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import pathlib
import re
from typing import Any

from emopipe import schemas
from emopipe.sources.base import InvalidInput, ProgressFn, ScanResult, finish_scan, sha256_file
from emopipe.sources.text import inside, safe_relpath

log = logging.getLogger(__name__)

CORPUS = "footage"
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
TABLES = ("annotations.csv", "annotations.parquet")
AGE_KEYS = ("age_group", "age_bin", "age")
KNOWN = {"transcription", "language", "gender", "accent", "arousal", "valence", "emotions", "emotion", *AGE_KEYS}


def _walk(root: pathlib.Path) -> tuple[list[pathlib.Path], list[tuple[str, InvalidInput]]]:
    """Every file under root (not following directory symlinks), refusing symlinks that leave it."""
    files, problems = [], []
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = pathlib.Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            if (base / d).is_symlink() and not inside(root, base / d):
                problems.append(
                    (
                        (base / d).relative_to(root).as_posix(),
                        InvalidInput("unsafe_path", f"folder symlink to {os.readlink(base / d)} leaves the root"),
                    )
                )
        for name in sorted(n for n in names if not n.startswith(".")):
            path = base / name
            if path.is_symlink() and not inside(root, path):
                problems.append(
                    (
                        path.relative_to(root).as_posix(),
                        InvalidInput("unsafe_path", f"symlink to {os.readlink(path)} leaves the root"),
                    )
                )
                continue
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix()), problems


def _read_table(path: pathlib.Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def annotations(
    root: pathlib.Path, files: list[pathlib.Path]
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, InvalidInput]]]:
    """Media path (relative to root) -> annotation dict, from folder tables and JSON sidecars (a sidecar wins)."""
    out: dict[str, dict[str, Any]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for path in files:
        if path.name not in TABLES:
            continue
        rel = path.relative_to(root).as_posix()
        try:
            rows = _read_table(path)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError) as err:
            problems.append((rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}")))
            continue
        for n, row in enumerate(rows, start=2):
            target = row.get("path") or row.get("file")
            try:
                if not target:
                    raise InvalidInput("malformed_row", f"{rel}:{n}: no path or file column")
                media = (path.parent / safe_relpath(str(target))).relative_to(root).as_posix()
            except InvalidInput as err:
                problems.append((rel, InvalidInput(err.reason, f"{rel}:{n}: {err.detail}")))
                continue
            out[media] = {k: v for k, v in row.items() if k not in {"path", "file"} and v not in (None, "")}
    for path in files:
        if path.suffix.lower() != ".json":
            continue
        rel = path.relative_to(root).as_posix()
        clips = [path.with_suffix(ext) for ext in VIDEO_EXTENSIONS if path.with_suffix(ext).exists()]
        if not clips:
            problems.append((rel, InvalidInput("missing_media", f"{rel}: sidecar without a clip of the same name")))
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
        except (OSError, UnicodeDecodeError, ValueError) as err:
            problems.append((rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}")))
            continue
        for clip in clips:
            out[clip.relative_to(root).as_posix()] = data
    return out, problems


def annotation_columns(ann: dict[str, Any], where: str) -> tuple[dict[str, Any], list[InvalidInput]]:
    """Clip columns from one annotation; bad values are left empty and reported."""
    tax = schemas.taxonomy()
    cols: dict[str, Any] = {}
    problems: list[InvalidInput] = []
    for key, column in (("gender", "gender"), ("accent", "accent")):
        if ann.get(key) not in (None, ""):
            cols[column], cols[f"{column}_source"] = str(ann[key]).strip().lower(), "annotated"
    if age := next((ann[k] for k in AGE_KEYS if ann.get(k) not in (None, "")), None):
        cols["age_group"], cols["age_group_source"] = str(age).strip(), "annotated"
    for key in ("language", "transcription"):
        if ann.get(key) not in (None, ""):
            cols[key] = str(ann[key])
    for key, low, high in (("arousal", 0.0, 10.0), ("valence", None, None)):
        if ann.get(key) in (None, ""):
            continue
        try:
            value = float(ann[key])
            if math.isnan(value) or (low is not None and not low <= value <= high):
                raise ValueError(f"outside {low}..{high}")
            cols[key] = value
        except (TypeError, ValueError) as err:
            problems.append(InvalidInput("invalid_annotation", f"{where}: {key}={ann[key]!r}: {err}"))
    raw = ann.get("emotions", ann.get("emotion"))
    words = raw if isinstance(raw, list) else [w for w in re.split(r"[,;|]", str(raw or "")) if w.strip()]
    words = [str(w).strip() for w in words]
    mapped = [tax.from_word(w) for w in words]
    known = list(dict.fromkeys(m for m in mapped if m))
    if words:
        cols["native_label"] = ", ".join(words)
    if len(known) == 1:
        cols["label"] = known[0]
    elif len(known) > 1:
        cols["compound_labels"] = known
    extra = {k: json.dumps(v) if isinstance(v, list | dict) else str(v) for k, v in ann.items() if k not in KNOWN}
    if unmapped := [w for w, m in zip(words, mapped, strict=True) if not m]:
        extra["emotions_unmapped"] = ", ".join(unmapped)
    if extra:
        cols["native_fields"] = extra
    return cols, problems


def scan(
    root: pathlib.Path, run_id: str, progress: ProgressFn | None = None, license: str = "unspecified"
) -> ScanResult:
    """Read a footage folder tree and its annotations."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"footage root {root} is not a folder")
    files, problems = _walk(root)
    notes, bad = annotations(root, files)
    problems += bad
    by_sha: dict[str, dict[str, Any]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() == ".json" or path.name in TABLES:
            continue
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            problems.append(
                (rel, InvalidInput("unsupported_extension", f"{path.suffix or 'no extension'} is not a video"))
            )
            continue
        size = path.stat().st_size
        if size == 0:
            problems.append((rel, InvalidInput("empty_file", "0 bytes")))
            continue
        sha = sha256_file(path)
        if sha in by_sha:
            by_sha[sha]["duplicate_paths"].append(rel)
            continue
        by_sha[sha] = {
            "clip_id": f"{CORPUS}:{rel}",
            "corpus": CORPUS,
            "native_id": rel,
            "media_path": rel,
            "media_form": "video",
            "sha256": sha,
            "size_bytes": size,
            "license": license,
            "duplicate_paths": [],
        }
        if progress:
            progress(1)
    tax = schemas.taxonomy()
    rows = []
    for row in sorted(by_sha.values(), key=lambda r: r["clip_id"]):
        ann = next((notes[p] for p in [row["media_path"], *row["duplicate_paths"]] if p in notes), None)
        if ann is not None:
            cols, bad = annotation_columns(ann, row["media_path"])
            problems += [(row["media_path"], b) for b in bad]
            row.update(cols)
        row["label_basic7"] = tax.to_basic7(row.get("label"))
        row["duplicate_paths"] = row["duplicate_paths"] or None
        rows.append(row)
    known = {r["media_path"] for r in rows} | {p for r in rows for p in r["duplicate_paths"] or []}
    for media in sorted(set(notes) - known):
        if not (root / media).exists():
            problems.append((media, InvalidInput("missing_media", f"annotated clip {media} is not on disk")))
    return finish_scan(CORPUS, root, rows, problems, run_id)
