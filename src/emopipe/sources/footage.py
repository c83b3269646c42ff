"""Raw footage: any folder tree of videos, with optional annotations.

- Media: .mp4 .avi .mkv .mov .webm anywhere under the root (hidden files skipped; one named like media is a
  hidden_file row), walked safely (emopipe.sources.files): a symlink that leaves the root is refused (quarantine
  `unsafe_path`); one that stays inside is read once, through its target. A name that is not printable UTF-8 is
  `bad_name`; two names that are equal once Unicode-normalised (NFC) and case-folded are one id (`duplicate_id` for
  the second, unless the bytes are the same: then it is a duplicate path).
- Annotations (LAION Open Empathic style), either a sidecar `<clip stem>.json` beside the clip, or one
  `annotations.csv` / `annotations.parquet` per folder with a `path` (or `file`) column relative to that folder.
  Fields: transcription, language, age (or age_group / age_bin), gender, accent, arousal (0..10), valence,
  subject_id (or subject / speaker_id / speaker / participant_id / person_id: who is in the clip, for the
  subject-disjoint folds; without it a footage clip has no fold),
  emotions (a list, or a string split on , ; |), audio_quality. Emotions map through the taxonomy's synonyms:
  one known emotion is the label, several are `compound_labels`; anything else is kept in `native_fields`.
  Gender, age group and accent must be in the vocabularies of schemas/demographics.yaml; a value outside them
  leaves the column null, is kept verbatim in `native_fields` and gets an `invalid_annotation` row. Numbers must
  be finite. CSV: UTF-8 (a byte-order mark is fine), any line ending, one header line; a row that does not fit it
  is one `malformed_row`, the others are read.
- Exact duplicates (same bytes) are one clip; the other paths are in `duplicate_paths`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import pathlib
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import numpy as np

from emopipe import schemas
from emopipe.sources import demographics, files
from emopipe.sources.base import (
    InvalidInput,
    ProgressFn,
    ScanResult,
    announce,
    bounded_text,
    check_name,
    finish_scan,
    guard,
    printable,
)
from emopipe.sources.text import safe_relpath

log = logging.getLogger(__name__)

CORPUS = "footage"
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
TABLES = ("annotations.csv", "annotations.parquet")
AGE_KEYS = ("age_group", "age_bin", "age")
# Who is in the clip, for subject-disjoint folds (splits.subject_kfold): the first of these keys that is set.
SUBJECT_KEYS = ("subject_id", "subject", "speaker_id", "speaker", "participant_id", "person_id")
_SUBJECT = re.compile(r"^[\w.@+-]{1,64}$")
KNOWN = {
    "transcription", "language", "gender", "accent", "arousal", "valence", "emotions", "emotion", *AGE_KEYS,
    *SUBJECT_KEYS,
}  # fmt: skip
PATH_KEYS = ("path", "file")


def _decode(data: bytes) -> str:
    """An annotation file's text: UTF-16 when it starts with that byte-order mark (Excel's "Unicode text" export),
    else UTF-8 with or without its mark; raises UnicodeDecodeError."""
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    return data.decode("utf-16" if utf16 else "utf-8-sig")


def _read_json(data: bytes) -> dict[str, Any]:
    """A sidecar object; raises InvalidInput(unreadable_annotation) for anything else (see `_reject`)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out and out[key] != value:
                raise ValueError(f"key {key!r} appears twice with different values")
            out[key] = value
        return out

    try:
        value = json.loads(_decode(data), object_pairs_hook=pairs)
    except RecursionError:
        raise InvalidInput("unreadable_annotation", "nested too deeply to read") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidInput("unreadable_annotation", f"{type(err).__name__}: {err}") from None
    if not isinstance(value, dict):
        raise InvalidInput("unreadable_annotation", f"top level is a {type(value).__name__}, not an object")
    _reject_surrogates(value)
    return value


def _reject_surrogates(value: Any) -> None:
    """JSON may escape lone surrogates (\\ud800), which are not text: such a sidecar cannot be stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in item):
            raise InvalidInput("unreadable_annotation", "holds a lone surrogate escape: not valid Unicode text")


def _csv_rows(data: bytes, rel: str) -> Iterator[tuple[int, dict[str, Any] | InvalidInput]]:
    """(line, row) of a folder annotations.csv; a row that does not fit the header is an InvalidInput."""
    try:
        text = _decode(data)
    except UnicodeDecodeError as err:
        raise InvalidInput("unreadable_annotation", f"not UTF-8 text (byte {err.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    while True:
        line = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            if reader.line_num == line:  # nothing consumed: the rest cannot be read
                raise InvalidInput("unreadable_annotation", f"line {line + 1}: {err}") from None
            yield reader.line_num, InvalidInput("malformed_row", f"{rel}:{reader.line_num}: {err}")
            continue
        if not any(c.strip() for c in row):
            continue
        names = [c.strip().lower() for c in row]
        if header is None:
            if not set(PATH_KEYS) & set(names):
                raise InvalidInput(
                    "unreadable_annotation", f"header {printable(names, 120)} has no path or file column"
                )
            if dupes := sorted({n for n in names if names.count(n) > 1}):
                raise InvalidInput("unreadable_annotation", f"header names {printable(dupes, 80)} more than once")
            header = names
        elif names == header:
            yield reader.line_num, InvalidInput("malformed_row", f"{rel}:{reader.line_num}: the header line again")
        elif len(row) != len(header):
            detail = f"{rel}:{reader.line_num}: {len(row)} fields, the header has {len(header)}"
            yield reader.line_num, InvalidInput("malformed_row", detail)
        else:
            yield reader.line_num, dict(zip(header, row, strict=True))


def _parquet_rows(data: bytes) -> Iterator[tuple[int, dict[str, Any] | InvalidInput]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
        names = [str(n).strip().lower() for n in table.column_names]
        rows = table.to_pylist()
    except Exception as err:  # noqa: BLE001 — pyarrow raises many types for a corrupt file; all mean unreadable
        raise InvalidInput("unreadable_annotation", f"{type(err).__name__}: {err}") from None
    if not set(PATH_KEYS) & set(names):
        raise InvalidInput("unreadable_annotation", f"columns {printable(names, 120)} have no path or file column")
    if len(set(names)) != len(names):
        raise InvalidInput("unreadable_annotation", f"columns {printable(names, 120)} name one column twice")
    for n, row in enumerate(rows, start=1):
        yield n, dict(zip(names, row.values(), strict=True))


def annotations(tree: files.Tree) -> tuple[dict[str, dict[str, Any]], list[tuple[str, InvalidInput]]]:
    """Media path (relative to root) -> annotation dict, from folder tables and JSON sidecars (a sidecar wins)."""
    out: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for entry in tree.files:
        if entry.name not in TABLES:
            continue
        rel = entry.rel
        with guard(problems, rel):
            data = files.read(entry)
            rows = _csv_rows(data, rel) if entry.name.endswith(".csv") else _parquet_rows(data)
            for n, row in rows:
                where = f"{rel}:{n}"
                if isinstance(row, InvalidInput):
                    problems.append((where, row))
                    continue
                with guard(problems, where):
                    target = next((row[k] for k in PATH_KEYS if row.get(k) not in (None, "")), None)
                    if not isinstance(target, str):
                        raise InvalidInput("malformed_row", f"{where}: no path or file value")
                    try:
                        name = safe_relpath(target)
                    except InvalidInput as err:
                        raise InvalidInput(err.reason, f"{where}: {err.detail}") from None
                    media = f"{entry.parent}/{name}" if entry.parent else name
                    if media in origin:
                        raise InvalidInput(
                            "malformed_row", f"{where}: {printable(media)} annotated again (first {origin[media]})"
                        )
                    origin[media] = where
                    out[media] = {k: v for k, v in row.items() if k and k not in PATH_KEYS and v not in (None, "")}
    clips_by_stem: dict[tuple[str, str], list[str]] = {}
    for entry in tree.files:
        if entry.suffix in VIDEO_EXTENSIONS:
            clips_by_stem.setdefault((entry.parent, entry.stem), []).append(entry.rel)
    for entry in tree.files:
        if entry.suffix != ".json":
            continue
        rel = entry.rel
        with guard(problems, rel):
            clips = clips_by_stem.get((entry.parent, entry.stem))
            if not clips:
                raise InvalidInput("missing_media", f"{rel}: sidecar without a clip of the same name")
            data = _read_json(files.read(entry))
            for clip in clips:
                out[clip] = data
    return out, problems


def _text(key: str, value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise InvalidInput("invalid_annotation", f"{where}: {key}={printable(repr(value), 80)} is not a text value")


def _verbatim(value: Any) -> str:
    """Any annotation value as text for native_fields: strings as they are, the rest as JSON (or its repr)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _number(key: str, value: Any, where: str, low: float | None, high: float | None) -> float:
    """A finite number (also as float32, the column's type) within low..high."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"a {type(value).__name__} is not a number")
        number = float(value.strip() if isinstance(value, str) else value)
        with np.errstate(over="ignore"):
            if not math.isfinite(number) or not np.isfinite(np.float32(number)):
                raise ValueError("not a finite number")
        if low is not None and high is not None and not low <= number <= high:
            raise ValueError(f"outside {low}..{high}")
    except (ValueError, OverflowError) as err:
        raise InvalidInput("invalid_annotation", f"{where}: {key}={printable(repr(value), 80)}: {err}") from None
    return number


MAX_EMOTIONS = 16  # distinct emotion words one clip may carry (an annotation is not a place for a word list)
MAX_EMOTION_CHARS = 64  # one emotion word


def _emotion_words(raw: Any, where: str) -> list[str]:
    """The clip's emotion words, each once, in order; more than MAX_EMOTIONS distinct ones, or a word longer than
    MAX_EMOTION_CHARS, is not an annotation of emotions (InvalidInput)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        words = [w.strip() for w in re.split(r"[,;|]", raw) if w.strip()]
    elif isinstance(raw, list) and all(isinstance(w, str) for w in raw):
        words = [w.strip() for w in raw if w.strip()]
    else:
        raise InvalidInput(
            "invalid_annotation", f"{where}: emotions={printable(repr(raw), 80)} is not text or a list of text"
        )
    words = list(dict.fromkeys(words))
    if len(words) > MAX_EMOTIONS or any(len(w) > MAX_EMOTION_CHARS for w in words):
        raise InvalidInput(
            "invalid_annotation",
            f"{where}: emotions holds {len(words)} distinct words (at most {MAX_EMOTIONS}, each at most "
            f"{MAX_EMOTION_CHARS} characters): {printable(repr(words[:3]), 80)}…",
        )
    return words


def annotation_columns(ann: dict[str, Any], where: str) -> tuple[dict[str, Any], list[InvalidInput]]:
    """Clip columns from one annotation; bad values are left empty (kept in native_fields) and reported."""
    tax = schemas.taxonomy()
    cols: dict[str, Any] = {}
    problems: list[InvalidInput] = []
    extra: dict[str, str] = {}
    demo = [("gender", "gender"), ("accent", "accent")]
    ages = [k for k in AGE_KEYS if ann.get(k) not in (None, "")]
    if ages:
        demo.append((ages[0], "age_group"))  # the first of age_group, age_bin, age; the others kept verbatim
        extra.update({k: _verbatim(ann[k]) for k in ages[1:]})
    for key, column in demo:
        if ann.get(key) in (None, ""):
            continue
        try:
            value = demographics.normalise(column, ann[key])
        except InvalidInput as err:
            problems.append(InvalidInput(err.reason, f"{where}: {err.detail}"))
            value = None
        binned = column == "age_group" and value is not None and value != str(ann[key]).strip().lower()
        if value is None or binned:  # outside the vocabulary, a declared unknown, or an age put into its bin
            extra[key] = _verbatim(ann[key])
        if value is not None:
            cols[column], cols[f"{column}_source"] = value, "annotated"
    subjects = [k for k in SUBJECT_KEYS if ann.get(k) not in (None, "")]
    if subjects:
        key = subjects[0]
        value = ann[key]
        text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
        if text is not None and _SUBJECT.match(text):
            cols["subject_id"] = f"{CORPUS}:{text}"
        else:
            problems.append(InvalidInput(
                "invalid_annotation",
                f"{where}: {key}={printable(repr(value), 80)} is not a subject id (1-64 letters, digits, . _ @ + -)",
            ))  # fmt: skip
        extra.update({k: _verbatim(ann[k]) for k in subjects[1:] if k != key})
        if "subject_id" not in cols:
            extra[key] = _verbatim(value)
    for key in ("language", "transcription"):
        if ann.get(key) not in (None, ""):
            try:
                cols[key] = _text(key, ann[key], where)
            except InvalidInput as err:
                problems.append(err)
                extra[key] = _verbatim(ann[key])
    for key, low, high in (("arousal", 0.0, 10.0), ("valence", None, None)):
        if ann.get(key) in (None, ""):
            continue
        try:
            cols[key] = _number(key, ann[key], where, low, high)
        except InvalidInput as err:
            problems.append(err)
            extra[key] = _verbatim(ann[key])
    raw = ann.get("emotions", ann.get("emotion"))
    try:
        words = _emotion_words(raw, where)
    except InvalidInput as err:
        problems.append(err)
        words = []
        extra["emotions"] = _verbatim(raw)
    mapped = [tax.from_word(w) for w in words]
    known = list(dict.fromkeys(m for m in mapped if m))
    if words:
        cols["native_label"] = ", ".join(words)
    if len(known) == 1:
        cols["label"] = known[0]
    elif len(known) > 1:
        cols["compound_labels"] = known
    extra.update({str(k): _verbatim(v) for k, v in ann.items() if k not in KNOWN})
    if unmapped := [w for w, m in zip(words, mapped, strict=True) if not m]:
        extra["emotions_unmapped"] = ", ".join(unmapped)
    for key, text in list(extra.items()):  # verbatim, but bounded
        extra[key], problem = bounded_text(text, where, key)
        if problem:
            problems.append(problem)
    if extra:
        cols["native_fields"] = extra
    return cols, problems


def _name_key(rel: str) -> str:
    """Two names that look the same to a person (Unicode NFC, case-folded) name one clip."""
    return unicodedata.normalize("NFC", rel).casefold()


def scan(
    root: pathlib.Path, run_id: str, progress: ProgressFn | None = None, license: str = "unspecified"
) -> ScanResult:
    """Read a footage folder tree and its annotations."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"footage root {printable(root)} is not a folder")
    tree = files.walk(root)
    problems = list(tree.problems)
    for folder in tree.dirs:
        if folder.suffix in VIDEO_EXTENSIONS:
            problems.append(
                (folder.rel, InvalidInput("not_a_file", "a folder named like a video (its files are read)"))
            )
        elif folder.suffix == ".json" or folder.name in TABLES:  # the annotation it stands where is never read
            problems.append(
                (folder.rel, InvalidInput("not_a_file", "a folder named like an annotation file (its files are read)"))
            )
    notes, bad = annotations(tree)
    problems += bad
    by_sha: dict[str, dict[str, Any]] = {}
    by_name: dict[str, str] = {}
    announce(progress, sum(1 for e in tree.files if e.suffix != ".json" and e.name not in TABLES))
    for entry in tree.files:
        if entry.suffix == ".json" or entry.name in TABLES:
            continue
        rel = entry.rel
        with guard(problems, rel):
            check_name(rel)
            if entry.suffix not in VIDEO_EXTENSIONS:
                raise InvalidInput(
                    "unsupported_extension", f"{printable(entry.suffix, 40) or 'no extension'} is not a video"
                )
            if entry.size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            sha, size = files.sha256(entry)
            if size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            if sha in by_sha:
                by_sha[sha]["duplicate_paths"].append(rel)
            elif (key := _name_key(rel)) in by_name:
                first = by_name[key]
                detail = (
                    f"same name as {first} once Unicode-normalised and case-folded ({ascii(rel)} vs {ascii(first)})"
                )
                raise InvalidInput("duplicate_id", detail)
            else:
                by_name[key] = rel
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
        with guard(problems, row["media_path"]):
            ann = next((notes[p] for p in [row["media_path"], *row["duplicate_paths"]] if p in notes), None)
            if ann is not None:
                cols, bad = annotation_columns(ann, row["media_path"])
                problems += [(row["media_path"], b) for b in bad]
                row.update(cols)
        row["label_basic7"] = tax.to_basic7(row.get("label"))
        row["duplicate_paths"] = row["duplicate_paths"] or None
        rows.append(row)
    for media in sorted(notes):
        if tree.get(media) is None:
            problems.append(
                (media, InvalidInput("missing_media", f"annotated clip {media} is not a file under the root"))
            )
    return finish_scan(CORPUS, root, rows, problems, run_id)
