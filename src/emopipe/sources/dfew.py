"""DFEW as its authors distribute it.

- Split files: `EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv` or the first author's
  `label/single_{train,test}set_{1..5}.csv`; header `video_name,label`; labels 1..7 =
  Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear; `video_name` zero-padded or not.
- Votes: `Annotation/annotation.xlsx` with columns `order, 1happy, 2sad, 3neutral, 4angry, 5surprise,
  6disgust, 7fear` (10 annotators per clip) -> `label_votes`.
- Media: `Clip/original/part_*/<id>.mp4|.avi`, else a frame folder `Clip/clip_224x224/<id>/` or
  `Clip/clip_224x224_16f/<id>/` (media_form = frames).
Clips no split file names are kept unlabelled, with their votes.
The root is walked safely (emopipe.sources.files). Inside the folders this layout defines, every entry is either
read or quarantined: a split file for a fold outside 1..5 (`protocol_violation`), `set_1.csv.bak` or a clip outside
`part_*` (`unexpected_file`), a folder where a video should be or a file where a frame folder should be
(`not_a_file`). Split files may carry a BOM (UTF-8 or UTF-16), CRLF and blank lines; the header may come once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
import pathlib
import re
from typing import Any

from emopipe import schemas
from emopipe.sources import files, protocol
from emopipe.sources.base import (
    InvalidInput,
    ProgressFn,
    ScanResult,
    announce,
    check_name,
    finish_scan,
    guard,
    printable,
)
from emopipe.sources.text import decode_lines

log = logging.getLogger(__name__)

CORPUS = "dfew"
N_FOLDS = 5
VIDEO_EXTENSIONS = {".mp4", ".avi"}
FRAME_DIRS = ("Clip/clip_224x224", "Clip/clip_224x224_16f")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}
ORIGINAL = "Clip/original"
VOTES = "Annotation/annotation.xlsx"
MAX_VOTES = 10_000  # ten annotators a clip; anything near int32 is not a vote count
# folder -> split of the EmoLabel naming (every file there must be set_<k>.csv); the first author's `label/` folder
# holds other files too, so only names of the form single_<split>set_<k>.csv are read from it
_SPLIT_DIRS = {"EmoLabel_DataSplit/train(single-labeled)": "train", "EmoLabel_DataSplit/test(single-labeled)": "test"}
_EMOLABEL = re.compile(r"set_([0-9]+)\.csv", re.ASCII)
_FIRST_AUTHOR = re.compile(r"single_(train|test)set_([0-9]+)\.csv", re.ASCII)
_NUMBER = re.compile(r"[0-9]{1,6}", re.ASCII)
_HEADER = ["video_name", "label"]


def native_id(text: str) -> str:
    """`2522`, `02522` and `02522.mp4` are the same clip: `02522`. Raises InvalidInput for anything else."""
    stem = str(text).strip()
    suffix = pathlib.PurePosixPath(stem).suffix
    stem = stem[: -len(suffix)] if suffix else stem
    if not _NUMBER.fullmatch(stem) or not 0 < int(stem) < 100_000:
        raise InvalidInput("malformed_row", f"{printable(repr(text), 80)} is not a DFEW clip number")
    return f"{int(stem):05d}"


def _ids() -> dict[int, str]:
    return {int(k): v for k, v in schemas.taxonomy().corpora[CORPUS]["ids"].items()}


def split_files(tree: files.Tree) -> tuple[list[tuple[int, str, files.Entry]], list[tuple[str, InvalidInput]]]:
    """(fold, split, entry) for every split file present, in either naming; odd files in split folders are problems."""
    out, problems = [], []
    for entry in tree.files:
        if entry.parent in _SPLIT_DIRS:
            if not (m := _EMOLABEL.fullmatch(entry.name)):
                problems.append((entry.rel, InvalidInput("unexpected_file", "not a split file set_<k>.csv; not read")))
                continue
            fold, split = int(m.group(1)), _SPLIT_DIRS[entry.parent]
        elif entry.parent == "label" and (m := _FIRST_AUTHOR.fullmatch(entry.name)):
            fold, split = int(m.group(2)), m.group(1)
        else:
            continue
        if not 1 <= fold <= N_FOLDS:
            detail = f"fold {fold} is outside DFEW's {N_FOLDS}-fold protocol; not read"
            problems.append((entry.rel, InvalidInput("protocol_violation", detail)))
            continue
        out.append((fold, split, entry))
    return sorted(out, key=lambda t: (t[0], t[1], t[2].rel)), problems


def read_split(
    entry: files.Entry, fold: int, split: str
) -> tuple[list[protocol.SplitEntry], list[tuple[str, InvalidInput]]]:
    """Parse one split CSV into entries; malformed rows and unknown labels become problems."""
    ids = _ids()
    rel = entry.rel
    entries: list[protocol.SplitEntry] = []
    problems: list[tuple[str, InvalidInput]] = []
    with guard(problems, rel):
        first = True
        for item in decode_lines(files.read(entry)):
            if isinstance(item, InvalidInput):
                problems.append((rel, InvalidInput(item.reason, f"{rel} {item.detail}")))
                first = False
                continue
            where = f"{rel}:{item.number}"
            with guard(problems, where):
                try:
                    row = next(csv.reader([item.text]), [])
                except csv.Error as err:
                    raise InvalidInput("malformed_row", f"{where}: {err}") from err
                is_header = [c.strip().lower() for c in row] == _HEADER
                if is_header and first:
                    first = False
                    continue
                first = False
                if is_header:
                    raise InvalidInput("malformed_row", f"{where}: the header line again")
                if len(row) != 2:
                    raise InvalidInput("malformed_row", f"{where}: expected 2 fields video_name,label, got {len(row)}")
                try:
                    clip = native_id(row[0])
                except InvalidInput as err:
                    raise InvalidInput(err.reason, f"{where}: {err.detail}") from None
                label = row[1].strip()
                if not _NUMBER.fullmatch(label) or int(label) not in ids:
                    raise InvalidInput(
                        "unknown_label", f"{where}: label {printable(repr(row[1]), 40)} is not one of 1..7"
                    )
                entries.append(protocol.SplitEntry(clip, fold, split, ids[int(label)], where))
    return entries, problems


def _vote(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("malformed_row", f"{where}: vote count {printable(repr(value), 40)} for {name}")
    if not float(value).is_integer() or not 0 <= value <= MAX_VOTES:
        raise InvalidInput("malformed_row", f"{where}: vote count {value!r} for {name} is not 0..{MAX_VOTES}")
    return int(value)


def _cell_id(value: Any) -> str:
    """A clip number from a spreadsheet cell: 2522, 2522.0 or '02522'."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("malformed_row", f"{printable(repr(value), 40)} is not a DFEW clip number")
    return native_id(str(value))


def read_votes(entry: files.Entry) -> tuple[dict[str, dict[str, int]], list[tuple[str, InvalidInput]]]:
    """Annotator votes per clip from annotation.xlsx; an unreadable file is one problem, not a crash."""
    import openpyxl

    rel = entry.rel
    ids = _ids()
    votes: dict[str, dict[str, int]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    book = None
    try:
        data = files.read(entry)
        files.check_zip(data)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        if not book.worksheets:
            raise InvalidInput("unreadable_annotation", "the workbook has no worksheet")
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [str(c).strip().lower() if c is not None else "" for c in next(rows, ())]
        columns: dict[int, str] = {}
        for i, name in enumerate(header):
            if (m := re.fullmatch(r"([0-9])\s*([a-z]+)", name, re.ASCII)) and int(m.group(1)) in ids:
                if ids[int(m.group(1))].lower() == m.group(2):
                    columns[i] = ids[int(m.group(1))]
        if "order" not in header or len(columns) != len(ids):
            raise InvalidInput("unreadable_annotation", f"header {printable(header, 160)} is not order,1happy..7fear")
        order = header.index("order")
        for n, row in enumerate(rows, start=2):
            if row is None or all(c is None for c in row):
                continue
            where = f"{rel}:{n}"
            with guard(problems, where):
                try:
                    clip = _cell_id(row[order] if order < len(row) else None)
                except InvalidInput as err:
                    raise InvalidInput(err.reason, f"{where}: {err.detail}") from None
                votes[clip] = {
                    name: _vote(row[i] if i < len(row) else None, where, name) for i, name in columns.items()
                }
    except InvalidInput as err:
        reason = "unreadable_annotation" if err.reason == "unreadable_file" else err.reason
        problems.append((rel, InvalidInput(reason, f"{rel}: {err.detail}")))
    except Exception as err:  # noqa: BLE001 — openpyxl raises many types for a corrupt file; all mean unreadable
        problems.append((rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}")))
    finally:
        if book is not None:
            book.close()
    return votes, problems


def find_media(
    tree: files.Tree,
) -> tuple[dict[str, tuple[str, str]], dict[str, list[files.Entry]], list[tuple[str, InvalidInput]]]:
    """clip id -> (media_path, media_form): video files first, frame folders where no video exists.

    Also returns the image entries of each frame folder (by its rel). Every entry of Clip/original and of the
    frame folders that cannot be a clip is a problem.
    """
    media: dict[str, tuple[str, str]] = {}
    images: dict[str, list[files.Entry]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for folder in tree.dirs:
        parts = folder.rel.split("/")
        if folder.rel.startswith(ORIGINAL + "/") and len(parts) == 4 and parts[2].startswith("part_"):
            problems.append((folder.rel, InvalidInput("not_a_file", "a folder where a video file should be")))
    for entry in tree.under(ORIGINAL):
        with guard(problems, entry.rel):
            parts = entry.rel.split("/")
            if len(parts) != 4 or not parts[2].startswith("part_"):
                raise InvalidInput("unexpected_file", f"not a video inside {ORIGINAL}/part_*/; not read")
            check_name(entry.rel)
            if entry.suffix not in VIDEO_EXTENSIONS:
                raise InvalidInput(
                    "unsupported_extension",
                    f"{printable(entry.suffix, 40) or 'no extension'}: DFEW ships .mp4 or .avi",
                )
            try:
                clip = native_id(entry.stem)
            except InvalidInput:
                raise InvalidInput(
                    "bad_name", f"{printable(repr(entry.name), 120)} is not <clip number>.mp4"
                ) from None
            if clip in media:
                raise InvalidInput("duplicate_id", f"clip {clip} already at {media[clip][0]}")
            media[clip] = (entry.rel, "video")
    for frame_dir in FRAME_DIRS:
        folders = {d.rel: d for d in tree.dirs if d.parent == frame_dir}
        for entry in tree.under(frame_dir):
            parts = entry.rel.split("/")
            folder = "/".join(parts[:3])
            if len(parts) == 3:
                problems.append((entry.rel, InvalidInput("not_a_file", "a file where a frame folder should be")))
            elif len(parts) > 4 or folder not in folders:
                problems.append(
                    (entry.rel, InvalidInput("unexpected_file", "not an image of a frame folder; not read"))
                )
            elif entry.suffix not in IMAGE_EXTENSIONS:
                problems.append(
                    (entry.rel, InvalidInput("unsupported_extension", "frame folders hold .jpg, .jpeg or .png images"))
                )
            elif entry.size == 0:
                problems.append(
                    (entry.rel, InvalidInput("empty_file", "0 bytes; not part of the frame folder's hash"))
                )
            else:
                images.setdefault(folder, []).append(entry)
        for rel, folder in sorted(folders.items()):
            with guard(problems, rel):
                check_name(rel)
                try:
                    clip = native_id(folder.name)
                except InvalidInput:
                    raise InvalidInput(
                        "bad_name", f"{printable(repr(folder.name), 120)} is not a clip number"
                    ) from None
                media.setdefault(clip, (rel, "frames"))
    return media, images, problems


def hash_frames(images: list[files.Entry]) -> tuple[str, int]:
    """(sha256, bytes) of a frame folder: the names and bytes of its images, in name order."""
    h, size = hashlib.sha256(), 0
    for image in sorted(images, key=lambda e: e.name):
        digest, n = files.sha256(image)
        h.update(os.fsencode(image.name) + b"\0" + bytes.fromhex(digest))
        size += n
    return h.hexdigest(), size


def scan(root: pathlib.Path, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Read a DFEW root: split files (either naming), votes, videos or frame folders."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DFEW root {printable(root)} is not a folder")
    tree = files.walk(root)
    problems = list(tree.problems)
    entries: list[protocol.SplitEntry] = []
    found, bad = split_files(tree)
    problems += bad
    if not found:
        log.warning("dfew: no split files under %s; every clip is ingested unlabelled", printable(root))
    for fold, split, entry in found:
        got, bad = read_split(entry, fold, split)
        entries += got
        problems += bad
    folds = protocol.assemble(entries, N_FOLDS)
    problems += folds.problems
    votes: dict[str, dict[str, int]] = {}
    if (sheet := tree.get(VOTES)) is not None:
        votes, bad = read_votes(sheet)
        problems += bad
    media, images, bad = find_media(tree)
    problems += bad
    first_mention = {}
    for e in entries:
        first_mention.setdefault(e.clip, e.where)
    for clip in sorted(set(folds.assignments) - set(media)):
        where = first_mention[clip]
        problems.append((where, InvalidInput("missing_media", f"{where}: clip {clip} has no video or frame folder")))
    tax = schemas.taxonomy()
    to_canonical = tax.native_to_canonical(CORPUS)
    rows = []
    announce(progress, len(media))
    for clip, (rel, form) in sorted(media.items()):
        with guard(problems, rel):
            sha, size = files.sha256(tree.get(rel)) if form == "video" else hash_frames(images.get(rel, []))
            if size == 0:
                raise InvalidInput(
                    "empty_file", "0 bytes" if form == "video" else "the frame folder holds no image bytes"
                )
            native = folds.labels.get(clip)
            label = to_canonical.get(native) if native else None
            rows.append(
                {
                    "clip_id": f"{CORPUS}:{clip}",
                    "corpus": CORPUS,
                    "native_id": clip,
                    "media_path": rel,
                    "media_form": form,
                    "sha256": sha,
                    "size_bytes": size,
                    "folds": folds.assignments.get(clip),
                    "native_label": native,
                    "label": label,
                    "label_basic7": tax.to_basic7(label),
                    "label_votes": votes.get(clip),
                    "license": tax.license(CORPUS),
                }
            )
        if progress:
            progress(1)
    return finish_scan(CORPUS, root, rows, problems, run_id)
