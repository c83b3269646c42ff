"""DFEW as its authors distribute it.

- Split files: `EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv` or the first author's
  `label/single_{train,test}set_{1..5}.csv`; header `video_name,label`; labels 1..7 =
  Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear; `video_name` zero-padded or not.
- Votes: `Annotation/annotation.xlsx` with columns `order, 1happy, 2sad, 3neutral, 4angry, 5surprise,
  6disgust, 7fear` (10 annotators per clip) -> `label_votes`.
- Media: `Clip/original/part_*/<id>.mp4|.avi`, else a frame folder `Clip/clip_224x224/<id>/` or
  `Clip/clip_224x224_16f/<id>/` (media_form = frames).
Clips no split file names are kept unlabelled, with their votes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import pathlib
import re

from emopipe import schemas
from emopipe.sources import protocol
from emopipe.sources.base import InvalidInput, ProgressFn, ScanResult, finish_scan, sha256_file
from emopipe.sources.text import read_lines

log = logging.getLogger(__name__)

CORPUS = "dfew"
N_FOLDS = 5
VIDEO_EXTENSIONS = {".mp4", ".avi"}
FRAME_DIRS = ("Clip/clip_224x224", "Clip/clip_224x224_16f")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}
_SPLIT_LAYOUTS = (
    ("EmoLabel_DataSplit/train(single-labeled)/set_{k}.csv", "EmoLabel_DataSplit/test(single-labeled)/set_{k}.csv"),
    ("label/single_trainset_{k}.csv", "label/single_testset_{k}.csv"),
)


def native_id(text: str) -> str:
    """`2522`, `02522` and `02522.mp4` are the same clip: `02522`. Raises InvalidInput for anything else."""
    stem = text.strip()
    stem = stem[: -len(pathlib.PurePosixPath(stem).suffix)] if pathlib.PurePosixPath(stem).suffix else stem
    if not stem.isdigit() or not 0 < int(stem) < 100_000:
        raise InvalidInput("malformed_row", f"{text!r} is not a DFEW clip number")
    return f"{int(stem):05d}"


def _ids() -> dict[int, str]:
    return {int(k): v for k, v in schemas.taxonomy().corpora[CORPUS]["ids"].items()}


def split_files(root: pathlib.Path) -> list[tuple[int, str, pathlib.Path]]:
    """(fold, split, path) for every split file present, in either naming."""
    out = []
    for train, test in _SPLIT_LAYOUTS:
        for k in range(1, N_FOLDS + 1):
            for split, pattern in (("train", train), ("test", test)):
                path = root / pattern.format(k=k)
                if path.is_file():
                    out.append((k, split, path))
    return out


def read_split(
    path: pathlib.Path, fold: int, split: str, root: pathlib.Path
) -> tuple[list[protocol.SplitEntry], list[tuple[str, InvalidInput]]]:
    """Parse one split CSV into entries; malformed rows and unknown labels become problems."""
    ids = _ids()
    rel = path.relative_to(root).as_posix()
    entries, problems = [], []
    for item in read_lines(path):
        if isinstance(item, InvalidInput):
            problems.append((rel, item))
            continue
        where = f"{rel}:{item.number}"
        row = next(csv.reader(io.StringIO(item.text)))
        if [c.strip().lower() for c in row] == ["video_name", "label"]:
            continue
        try:
            if len(row) != 2:
                raise InvalidInput("malformed_row", f"{where}: expected 2 fields video_name,label, got {len(row)}")
            clip = native_id(row[0])
            if not row[1].strip().isdigit() or int(row[1]) not in ids:
                raise InvalidInput("unknown_label", f"{where}: label {row[1]!r} is not one of 1..7")
        except InvalidInput as err:
            problems.append(
                (
                    where,
                    InvalidInput(err.reason, err.detail if err.detail.startswith(rel) else f"{where}: {err.detail}"),
                )
            )
            continue
        entries.append(protocol.SplitEntry(clip, fold, split, ids[int(row[1])], where))
    return entries, problems


def read_votes(
    path: pathlib.Path, root: pathlib.Path
) -> tuple[dict[str, dict[str, int]], list[tuple[str, InvalidInput]]]:
    """Annotator votes per clip from annotation.xlsx; an unreadable file is one problem, not a crash."""
    import openpyxl

    rel = path.relative_to(root).as_posix()
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # noqa: BLE001 — openpyxl raises many types for a corrupt file; all mean unreadable
        return {}, [(rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}"))]
    ids = _ids()
    votes: dict[str, dict[str, int]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    rows = book.worksheets[0].iter_rows(values_only=True)
    header = [str(c).strip().lower() if c is not None else "" for c in next(rows, ())]
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        if m := re.match(r"^(\d)\s*([a-z]+)$", name):
            if int(m.group(1)) in ids and ids[int(m.group(1))].lower() == m.group(2):
                columns[i] = ids[int(m.group(1))]
    if "order" not in header or len(columns) != len(ids):
        book.close()
        return {}, [(rel, InvalidInput("unreadable_annotation", f"{rel}: header {header} is not order,1happy..7fear"))]
    order = header.index("order")
    for n, row in enumerate(rows, start=2):
        if row is None or all(c is None for c in row):
            continue
        where = f"{rel}:{n}"
        try:
            clip = native_id(str(row[order]))
            counts = {}
            for i, name in columns.items():
                value = row[i] if i < len(row) else None
                if value is None or not float(value).is_integer() or value < 0:
                    raise InvalidInput("malformed_row", f"{where}: vote count {value!r} for {name}")
                counts[name] = int(value)
        except InvalidInput as err:
            problems.append((where, err))
            continue
        except (TypeError, ValueError) as err:
            problems.append((where, InvalidInput("malformed_row", f"{where}: {err}")))
            continue
        votes[clip] = counts
    book.close()
    return votes, problems


def find_media(root: pathlib.Path) -> tuple[dict[str, tuple[str, str]], list[tuple[str, InvalidInput]]]:
    """clip id -> (media_path, media_form): video files first, frame folders where no video exists."""
    media: dict[str, tuple[str, str]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    original = root / "Clip" / "original"
    for path in sorted(original.glob("part_*/*")) if original.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            problems.append(
                (
                    rel,
                    InvalidInput("unsupported_extension", f"{path.suffix or 'no extension'}: DFEW ships .mp4 or .avi"),
                )
            )
            continue
        try:
            clip = native_id(path.stem)
        except InvalidInput:
            problems.append((rel, InvalidInput("bad_name", f"{path.name!r} is not <clip number>.mp4")))
            continue
        if clip in media:
            problems.append((rel, InvalidInput("duplicate_id", f"clip {clip} already at {media[clip][0]}")))
            continue
        media[clip] = (rel, "video")
    for frame_dir in FRAME_DIRS:
        base = root / frame_dir
        for folder in sorted(base.iterdir()) if base.is_dir() else []:
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                clip = native_id(folder.name)
            except InvalidInput:
                problems.append(
                    (
                        folder.relative_to(root).as_posix(),
                        InvalidInput("bad_name", f"{folder.name!r} is not a clip number"),
                    )
                )
                continue
            media.setdefault(clip, (folder.relative_to(root).as_posix(), "frames"))
    return media, problems


def hash_media(path: pathlib.Path) -> tuple[str, int]:
    """(sha256, bytes) of a file, or of a frame folder (names and bytes of its images, in name order)."""
    if path.is_file():
        return sha256_file(path), path.stat().st_size
    h, size = hashlib.sha256(), 0
    for image in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        data = image.read_bytes()
        h.update(image.name.encode() + b"\0" + hashlib.sha256(data).digest())
        size += len(data)
    return h.hexdigest(), size


def scan(root: pathlib.Path, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Read a DFEW root: split files (either naming), votes, videos or frame folders."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DFEW root {root} is not a folder")
    problems: list[tuple[str, InvalidInput]] = []
    entries: list[protocol.SplitEntry] = []
    files = split_files(root)
    if not files:
        log.warning("dfew: no split files under %s; every clip is ingested unlabelled", root)
    for fold, split, path in files:
        got, bad = read_split(path, fold, split, root)
        entries += got
        problems += bad
    folds = protocol.assemble(entries, N_FOLDS)
    problems += folds.problems
    votes: dict[str, dict[str, int]] = {}
    if (root / "Annotation" / "annotation.xlsx").is_file():
        votes, bad = read_votes(root / "Annotation" / "annotation.xlsx", root)
        problems += bad
    media, bad = find_media(root)
    problems += bad
    for clip in sorted(set(folds.assignments) - set(media)):
        where = next(e.where for e in entries if e.clip == clip)
        problems.append((where, InvalidInput("missing_media", f"{where}: clip {clip} has no video or frame folder")))
    tax = schemas.taxonomy()
    to_canonical = tax.native_to_canonical(CORPUS)
    rows = []
    for clip, (rel, form) in sorted(media.items()):
        sha, size = hash_media(root / rel)
        if size == 0:
            problems.append((rel, InvalidInput("empty_file", "0 bytes")))
            continue
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
