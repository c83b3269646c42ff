"""MAFW as its authors distribute it.

- Media: `data/clips/<5-digit id>.mp4` (ids are not contiguous; some clips have no audio track).
- Single-label protocol: `Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt`, lines `00025.mp4 anger`.
- Caption variant: any other folder under `single/` with tab-separated lines `id<TAB>label<TAB>中文<TAB>English`,
  GBK or UTF-8: descriptions (English -> `description`, Chinese kept in `native_fields`). It is the protocol
  source only when no no_caption files exist.
- Compound labels: `Train & Test Set/compound/**/set_k/{train,test}.txt`, labels joined by `_` -> `compound_labels`.
- Spreadsheet `Labels/single-set.xlsx`: a title row, column 0 `xxxxx.mp4`, column 1 a 1-based label id (comma-joined
  for multi-label clips). MAFW's numeric class order differs between repositories, so ids are never mapped by an
  assumed order: each id is mapped to the class the split files give the same clips (>= 90 % agreement).
- Gender: MAFW's automatic labels include gender, produced by a model, so it is recorded with
  `gender_source = estimated`. The file's exact layout is not documented publicly; any `*gender*.txt` under the
  root is read as lines `<clip id>[.mp4] <gender word>` (male/female/man/woman/m/f, whitespace, comma or tab
  separated; the words of schemas/demographics.yaml). Lines of any other form are quarantined, never guessed.
The root is walked safely (emopipe.sources.files). Inside `data/clips/` and `Train & Test Set/` every entry is
read or quarantined: folds outside 1..5 are `protocol_violation`, `val.txt` or stray files `unexpected_file`,
folders among the clips `not_a_file`.
"""

from __future__ import annotations

import io
import logging
import math
import pathlib
import re
from collections import Counter, defaultdict
from typing import Any

from emopipe import schemas
from emopipe.sources import demographics, files, protocol
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
from emopipe.sources.text import decode_lines, safe_relpath

log = logging.getLogger(__name__)

CORPUS = "mafw"
N_FOLDS = 5
SPLITS_DIR = "Train & Test Set"
CLIPS_DIR = "data/clips"
SHEET = "Labels/single-set.xlsx"
MIN_ID_AGREEMENT = 0.9
_SET = re.compile(r"set_([0-9]+)", re.ASCII)
_NUMBER = re.compile(r"[0-9]{1,6}", re.ASCII)


def native_id(text: str) -> str:
    """`00025.mp4`, `00025` and `25` are clip `00025`."""
    name = safe_relpath(str(text))
    stem = pathlib.PurePosixPath(name).stem if name.lower().endswith(".mp4") else name
    if not _NUMBER.fullmatch(stem) or not 0 < int(stem) < 100_000:
        raise InvalidInput("malformed_row", f"{printable(repr(text), 80)} is not a MAFW clip id")
    return f"{int(stem):05d}"


def _classes() -> dict[str, str]:
    return schemas.taxonomy().native_to_canonical(CORPUS)


def _split_files(
    tree: files.Tree, base: str
) -> tuple[list[tuple[int, str, files.Entry]], list[tuple[str, InvalidInput]]]:
    """(fold, split, entry) of every `set_<k>/{train,test}.txt` under `base`; other files there are problems."""
    out, problems = [], []
    for entry in tree.under(base):
        folder = entry.parent.rpartition("/")[2]
        m = _SET.fullmatch(folder)
        if not m or entry.name not in {f"{s}.txt" for s in protocol.SPLITS}:
            problems.append(
                (entry.rel, InvalidInput("unexpected_file", "not a split file set_<k>/{train,test}.txt; not read"))
            )
            continue
        if not 1 <= int(m.group(1)) <= N_FOLDS:
            detail = f"fold {int(m.group(1))} is outside MAFW's {N_FOLDS}-fold protocol; not read"
            problems.append((entry.rel, InvalidInput("protocol_violation", detail)))
            continue
        out.append((int(m.group(1)), entry.stem, entry))
    return out, problems


def _parse_line(text: str, where: str) -> tuple[str, str, list[str]]:
    """(clip, label field, extra fields) from `id label` or `id<TAB>label<TAB>zh<TAB>en`."""
    fields = text.split("\t") if "\t" in text else text.split()
    if len(fields) not in (2, 4):
        raise InvalidInput(
            "malformed_row", f"{where}: expected 'id label' or 4 tab-separated fields, got {len(fields)}"
        )
    return native_id(fields[0]), fields[1].strip(), [f.strip() for f in fields[2:]]


def _at(where: str, err: InvalidInput) -> InvalidInput:
    """`err` with its detail starting at `where` (the file and line)."""
    return (
        err
        if err.detail.startswith(where.rpartition(":")[0] or where)
        else InvalidInput(err.reason, f"{where}: {err.detail}")
    )


def read_splits(
    tree: files.Tree, variant: str, compound: bool
) -> tuple[list[protocol.SplitEntry], dict[str, list[str]], list[tuple[str, InvalidInput]]]:
    """Entries of one split-file family; for caption files also (zh, en) descriptions per clip."""
    classes = _classes()
    entries: list[protocol.SplitEntry] = []
    descriptions: dict[str, list[str]] = {}
    found, problems = _split_files(tree, variant)
    for fold, split, entry in found:
        rel = entry.rel
        with guard(problems, rel):
            for item in decode_lines(files.read(entry)):
                if isinstance(item, InvalidInput):
                    problems.append((rel, InvalidInput(item.reason, f"{rel} {item.detail}")))
                    continue
                where = f"{rel}:{item.number}"
                try:
                    clip, label, extra = _parse_line(item.text, where)
                    names = label.split("_") if compound else [label]
                    if unknown := [n for n in names if n not in classes]:
                        raise InvalidInput(
                            "unknown_label", f"{where}: {printable(unknown, 80)} not among MAFW's classes"
                        )
                except InvalidInput as err:
                    problems.append((where, _at(where, err)))
                    continue
                entries.append(protocol.SplitEntry(clip, fold, split, label, where))
                if extra:
                    for i, key in enumerate(("description_zh", "description")[: len(extra)]):
                        extra[i], problem = bounded_text(extra[i], where, key)
                        if problem:
                            problems.append((where, problem))
                    descriptions[clip] = extra
    return entries, descriptions, problems


def _ids(value: Any) -> list[int]:
    """Label ids of a sheet cell: 3, 3.0, '3' or '3,7'."""
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("not a whole number")
        value = int(value)
    if isinstance(value, int):
        return [value]
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__}")
    parts = [x for x in value.replace(" ", "").split(",") if x]
    if not all(_NUMBER.fullmatch(x) for x in parts):
        raise ValueError("not numbers")
    return [int(x) for x in parts]


def read_spreadsheet(entry: files.Entry) -> tuple[dict[str, list[int]], list[tuple[str, InvalidInput]]]:
    """clip -> label ids from Labels/single-set.xlsx (title row skipped)."""
    import openpyxl

    rel = entry.rel
    out: dict[str, list[int]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    book = None
    try:
        data = files.read(entry)
        files.check_zip(data)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        if not book.worksheets:
            raise InvalidInput("unreadable_annotation", "the workbook has no worksheet")
        for n, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
            if n == 1 or row is None or all(c is None for c in row):
                continue
            where = f"{rel}:{n}"
            try:
                if len(row) < 2 or row[0] is None or row[1] is None:
                    raise InvalidInput("malformed_row", f"{where}: needs clip and label id columns")
                if not isinstance(row[0], str | int) or isinstance(row[0], bool):
                    raise InvalidInput("malformed_row", f"{where}: clip {printable(repr(row[0]), 40)} is not an id")
                clip = native_id(str(row[0]))
                try:
                    ids = _ids(row[1])
                except ValueError as err:
                    raise InvalidInput(
                        "malformed_row", f"{where}: label ids {printable(repr(row[1]), 40)}: {err}"
                    ) from None
                if not ids or any(not 1 <= i <= 1000 for i in ids):
                    raise InvalidInput("malformed_row", f"{where}: label ids {printable(repr(row[1]), 40)}")
            except InvalidInput as err:
                problems.append((where, _at(where, err)))
                continue
            out[clip] = ids
    except InvalidInput as err:
        reason = "unreadable_annotation" if err.reason == "unreadable_file" else err.reason
        problems.append((rel, InvalidInput(reason, f"{rel}: {err.detail}")))
    except Exception as err:  # noqa: BLE001 — openpyxl raises many types for a corrupt file; all mean unreadable
        problems.append((rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}")))
    finally:
        if book is not None:
            book.close()
    return out, problems


def read_gender(tree: files.Tree) -> tuple[dict[str, str], list[tuple[str, InvalidInput]]]:
    """clip -> gender from every `*gender*.txt` under the root (see the module docstring)."""
    out: dict[str, str] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for entry in tree.files:
        if "gender" not in entry.name or entry.suffix != ".txt":
            continue
        rel = entry.rel
        with guard(problems, rel):
            for item in decode_lines(files.read(entry)):
                if isinstance(item, InvalidInput):
                    problems.append((rel, InvalidInput(item.reason, f"{rel} {item.detail}")))
                    continue
                where = f"{rel}:{item.number}"
                fields = [f for f in re.split(r"[\s,]+", item.text) if f]
                try:
                    if len(fields) != 2:
                        raise InvalidInput(
                            "malformed_row",
                            f"{where}: expected '<clip id> <gender>', got {printable(repr(item.text), 80)}",
                        )
                    clip = native_id(fields[0])
                    try:
                        gender = demographics.normalise("gender", fields[1])
                    except InvalidInput as err:
                        raise InvalidInput("unknown_label", f"{where}: {err.detail}") from None
                except InvalidInput as err:
                    problems.append((where, _at(where, err)))
                    continue
                if gender is not None:
                    out[clip] = gender
    return out, problems


def map_ids(sheet: dict[str, list[int]], labels: dict[str, str | None]) -> dict[int, str]:
    """Learn id -> class from clips that carry exactly one id in the sheet and one label in the split files."""
    pairs: dict[int, Counter[str]] = defaultdict(Counter)
    for clip, ids in sheet.items():
        if len(ids) == 1 and labels.get(clip):
            pairs[ids[0]][labels[clip]] += 1
    mapping = {}
    for i, counts in pairs.items():
        name, n = counts.most_common(1)[0]
        if n / sum(counts.values()) >= MIN_ID_AGREEMENT:
            mapping[i] = name
    used = Counter(mapping.values())
    return {i: name for i, name in mapping.items() if used[name] == 1}  # two ids for one class: trust neither


def find_media(tree: files.Tree) -> tuple[dict[str, files.Entry], list[tuple[str, InvalidInput]]]:
    """clip id -> media entry from data/clips/; every other entry there is a problem."""
    media: dict[str, files.Entry] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for folder in tree.dirs:
        if folder.parent == CLIPS_DIR:
            problems.append((folder.rel, InvalidInput("not_a_file", "a folder where a clip should be")))
    for entry in tree.under(CLIPS_DIR):
        with guard(problems, entry.rel):
            if entry.parent != CLIPS_DIR:
                raise InvalidInput("unexpected_file", f"not a clip directly inside {CLIPS_DIR}/; not read")
            check_name(entry.rel)
            if entry.suffix != ".mp4":
                raise InvalidInput(
                    "unsupported_extension", f"{printable(entry.suffix, 40) or 'no extension'}: MAFW ships .mp4"
                )
            try:
                clip = native_id(entry.name)
            except InvalidInput as err:
                raise InvalidInput("bad_name", err.detail) from None
            if clip in media:
                raise InvalidInput("duplicate_id", f"clip {clip} already at {media[clip].rel}")
            media[clip] = entry
    return media, problems


def scan(root: pathlib.Path, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Read a MAFW root: clips, single and compound splits, caption texts and the label spreadsheet."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MAFW root {printable(root)} is not a folder")
    tree = files.walk(root)
    problems = list(tree.problems)
    single = f"{SPLITS_DIR}/single"
    variants = sorted({e.rel for e in tree.dirs if e.parent == single})
    protocol_dir = (
        f"{single}/no_caption" if f"{single}/no_caption" in variants else (variants[0] if variants else None)
    )
    for entry in tree.under(SPLITS_DIR):
        if not entry.rel.startswith((single + "/", f"{SPLITS_DIR}/compound/")) or entry.parent == single:
            problems.append(
                (entry.rel, InvalidInput("unexpected_file", "not inside single/<variant>/ or compound/; not read"))
            )
    entries: list[protocol.SplitEntry] = []
    descriptions: dict[str, list[str]] = {}
    for variant in variants:
        got, desc, bad = read_splits(tree, variant, compound=False)
        problems += bad
        descriptions.update(desc)
        if variant == protocol_dir:
            entries = got
    folds = protocol.assemble(entries, N_FOLDS)
    problems += folds.problems
    compound: dict[str, list[str]] = {}
    compound_entries, _, bad = read_splits(tree, f"{SPLITS_DIR}/compound", compound=True)
    problems += bad
    for e in compound_entries:
        compound.setdefault(e.clip, e.label.split("_"))
    sheet: dict[str, list[int]] = {}
    if (sheet_entry := tree.get(SHEET)) is not None:
        sheet, bad = read_spreadsheet(sheet_entry)
        problems += bad
    id_map = map_ids(sheet, folds.labels)
    genders, bad = read_gender(tree)
    problems += bad
    for clip, ids in sorted(sheet.items()):
        if unknown := [i for i in ids if i not in id_map]:
            problems.append(
                (
                    SHEET,
                    InvalidInput(
                        "unknown_label",
                        f"clip {clip}: label ids {unknown} could not be matched to a class by the split files",
                    ),
                )
            )
    media, bad = find_media(tree)
    problems += bad
    mentioned = set(folds.assignments) | set(compound) | set(sheet)
    for clip in sorted(mentioned - set(media)):
        problems.append(
            (
                f"{CLIPS_DIR}/{clip}.mp4",
                InvalidInput(
                    "missing_media", f"clip {clip} is named in annotation files but {CLIPS_DIR}/{clip}.mp4 is missing"
                ),
            )
        )
    tax = schemas.taxonomy()
    classes = _classes()
    rows: list[dict[str, Any]] = []
    announce(progress, len(media))
    for clip, entry in sorted(media.items()):
        with guard(problems, entry.rel):
            if entry.size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            sha, size = files.sha256(entry)
            if size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            native = folds.labels.get(clip)
            ids = sheet.get(clip, [])
            if native is None and len(ids) == 1 and ids[0] in id_map and clip not in folds.assignments:
                native = id_map[ids[0]]  # labelled only in the spreadsheet
            label = classes.get(native) if native else None
            multi = [classes[id_map[i]] for i in ids if i in id_map] if len(ids) > 1 else None
            comp = [classes[c] for c in compound[clip]] if clip in compound else multi
            zh_en = descriptions.get(clip)
            native_fields = {"label_ids": ",".join(map(str, ids))} if ids else {}
            if zh_en and len(zh_en) == 2 and zh_en[0]:
                native_fields["description_zh"] = zh_en[0]
            rows.append(
                {
                    "clip_id": f"{CORPUS}:{clip}",
                    "corpus": CORPUS,
                    "native_id": clip,
                    "media_path": entry.rel,
                    "media_form": "video",
                    "sha256": sha,
                    "size_bytes": size,
                    "folds": folds.assignments.get(clip),
                    "native_label": native,
                    "label": label,
                    "label_basic7": tax.to_basic7(label),
                    "compound_labels": comp,
                    "description": zh_en[1] if zh_en and len(zh_en) == 2 and zh_en[1] else None,
                    "native_fields": native_fields or None,
                    "gender": genders.get(clip),
                    "gender_source": "estimated" if clip in genders else None,
                    "license": tax.license(CORPUS),
                }
            )
        if progress:
            progress(1)
    return finish_scan(CORPUS, root, rows, problems, run_id)
