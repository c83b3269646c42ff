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
  separated). Lines of any other form are quarantined, never guessed.
"""

from __future__ import annotations

import logging
import pathlib
import re
from collections import Counter, defaultdict
from typing import Any

from emopipe import schemas
from emopipe.sources import protocol
from emopipe.sources.base import InvalidInput, ProgressFn, ScanResult, finish_scan, sha256_file
from emopipe.sources.text import read_lines, safe_relpath

log = logging.getLogger(__name__)

CORPUS = "mafw"
N_FOLDS = 5
SPLITS_DIR = "Train & Test Set"
MIN_ID_AGREEMENT = 0.9
_SET = re.compile(r"^set_(\d+)$")


def native_id(text: str) -> str:
    """`00025.mp4`, `00025` and `25` are clip `00025`."""
    name = safe_relpath(text)
    stem = pathlib.PurePosixPath(name).stem if name.lower().endswith(".mp4") else name
    if "/" in stem or not stem.isdigit() or not 0 < int(stem) < 100_000:
        raise InvalidInput("malformed_row", f"{text!r} is not a MAFW clip id")
    return f"{int(stem):05d}"


def _classes() -> dict[str, str]:
    return schemas.taxonomy().native_to_canonical(CORPUS)


def _split_files(base: pathlib.Path) -> list[tuple[int, str, pathlib.Path]]:
    out = []
    for path in sorted(base.rglob("*.txt")):
        if path.stem in protocol.SPLITS and (m := _SET.match(path.parent.name)):
            out.append((int(m.group(1)), path.stem, path))
    return out


def _parse_line(text: str, where: str) -> tuple[str, str, list[str]]:
    """(clip, label field, extra fields) from `id label` or `id<TAB>label<TAB>zh<TAB>en`."""
    fields = text.split("\t") if "\t" in text else text.split()
    if len(fields) not in (2, 4):
        raise InvalidInput(
            "malformed_row", f"{where}: expected 'id label' or 4 tab-separated fields, got {len(fields)}"
        )
    return native_id(fields[0]), fields[1].strip(), [f.strip() for f in fields[2:]]


def read_splits(
    root: pathlib.Path, variant: pathlib.Path, compound: bool
) -> tuple[list[protocol.SplitEntry], dict[str, list[str]], list[tuple[str, InvalidInput]]]:
    """Entries of one split-file family; for caption files also (zh, en) descriptions per clip."""
    classes = _classes()
    entries, descriptions, problems = [], {}, []
    for fold, split, path in _split_files(variant):
        rel = path.relative_to(root).as_posix()
        for item in read_lines(path):
            if isinstance(item, InvalidInput):
                problems.append((rel, InvalidInput(item.reason, f"{rel} {item.detail}")))
                continue
            where = f"{rel}:{item.number}"
            try:
                clip, label, extra = _parse_line(item.text, where)
                names = label.split("_") if compound else [label]
                if unknown := [n for n in names if n not in classes]:
                    raise InvalidInput("unknown_label", f"{where}: {unknown} not among MAFW's classes")
            except InvalidInput as err:
                problems.append(
                    (
                        where,
                        InvalidInput(
                            err.reason, err.detail if err.detail.startswith(rel) else f"{where}: {err.detail}"
                        ),
                    )
                )
                continue
            entries.append(protocol.SplitEntry(clip, fold, split, label, where))
            if extra:
                descriptions[clip] = extra
    return entries, descriptions, problems


def read_spreadsheet(
    path: pathlib.Path, root: pathlib.Path
) -> tuple[dict[str, list[int]], list[tuple[str, InvalidInput]]]:
    """clip -> label ids from Labels/single-set.xlsx (title row skipped)."""
    import openpyxl

    rel = path.relative_to(root).as_posix()
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # noqa: BLE001 — openpyxl raises many types for a corrupt file; all mean unreadable
        return {}, [(rel, InvalidInput("unreadable_annotation", f"{rel}: {type(err).__name__}: {err}"))]
    out: dict[str, list[int]] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for n, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
        if n == 1 or row is None or all(c is None for c in row):
            continue
        where = f"{rel}:{n}"
        try:
            if len(row) < 2 or row[0] is None or row[1] is None:
                raise InvalidInput("malformed_row", f"{where}: needs clip and label id columns")
            clip = native_id(str(row[0]))
            ids = [int(float(x)) for x in str(row[1]).replace(" ", "").split(",") if x]
            if not ids or any(i < 1 for i in ids):
                raise InvalidInput("malformed_row", f"{where}: label ids {row[1]!r}")
        except InvalidInput as err:
            problems.append(
                (
                    where,
                    InvalidInput(err.reason, err.detail if err.detail.startswith(rel) else f"{where}: {err.detail}"),
                )
            )
            continue
        except ValueError:
            problems.append((where, InvalidInput("malformed_row", f"{where}: label ids {row[1]!r} are not numbers")))
            continue
        out[clip] = ids
    book.close()
    return out, problems


GENDER_WORDS = {"male": "male", "man": "male", "m": "male", "female": "female", "woman": "female", "f": "female"}


def read_gender(root: pathlib.Path) -> tuple[dict[str, str], list[tuple[str, InvalidInput]]]:
    """clip -> male/female from every `*gender*.txt` under the root (see the module docstring)."""
    out: dict[str, str] = {}
    problems: list[tuple[str, InvalidInput]] = []
    for path in sorted(p for p in root.rglob("*gender*.txt") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        for item in read_lines(path):
            if isinstance(item, InvalidInput):
                problems.append((rel, InvalidInput(item.reason, f"{rel} {item.detail}")))
                continue
            where = f"{rel}:{item.number}"
            fields = [f for f in re.split(r"[\s,]+", item.text) if f]
            try:
                if len(fields) != 2:
                    raise InvalidInput("malformed_row", f"{where}: expected '<clip id> <gender>', got {item.text!r}")
                clip = native_id(fields[0])
                if fields[1].lower() not in GENDER_WORDS:
                    raise InvalidInput(
                        "unknown_label", f"{where}: gender {fields[1]!r} is not one of {sorted(GENDER_WORDS)}"
                    )
            except InvalidInput as err:
                problems.append(
                    (
                        where,
                        InvalidInput(
                            err.reason, err.detail if err.detail.startswith(rel) else f"{where}: {err.detail}"
                        ),
                    )
                )
                continue
            out[clip] = GENDER_WORDS[fields[1].lower()]
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


def scan(root: pathlib.Path, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Read a MAFW root: clips, single and compound splits, caption texts and the label spreadsheet."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MAFW root {root} is not a folder")
    problems: list[tuple[str, InvalidInput]] = []
    single = root / SPLITS_DIR / "single"
    variants = sorted(p for p in single.iterdir() if p.is_dir()) if single.is_dir() else []
    no_caption = single / "no_caption"
    protocol_dir = no_caption if no_caption.is_dir() else (variants[0] if variants else None)
    entries: list[protocol.SplitEntry] = []
    descriptions: dict[str, list[str]] = {}
    for variant in variants:
        got, desc, bad = read_splits(root, variant, compound=False)
        problems += bad
        descriptions.update(desc)
        if variant == protocol_dir:
            entries = got
    folds = protocol.assemble(entries, N_FOLDS)
    problems += folds.problems
    compound: dict[str, list[str]] = {}
    compound_entries, _, bad = read_splits(root, root / SPLITS_DIR / "compound", compound=True)
    problems += bad
    for e in compound_entries:
        compound.setdefault(e.clip, e.label.split("_"))
    sheet: dict[str, list[int]] = {}
    if (root / "Labels" / "single-set.xlsx").is_file():
        sheet, bad = read_spreadsheet(root / "Labels" / "single-set.xlsx", root)
        problems += bad
    id_map = map_ids(sheet, folds.labels)
    genders, bad = read_gender(root)
    problems += bad
    for clip, ids in sorted(sheet.items()):
        if unknown := [i for i in ids if i not in id_map]:
            problems.append(
                (
                    "Labels/single-set.xlsx",
                    InvalidInput(
                        "unknown_label",
                        f"clip {clip}: label ids {unknown} could not be matched to a class by the split files",
                    ),
                )
            )
    media: dict[str, str] = {}
    clip_dir = root / "data" / "clips"
    for path in sorted(clip_dir.iterdir()) if clip_dir.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            if path.suffix.lower() != ".mp4":
                raise InvalidInput("unsupported_extension", f"{path.suffix or 'no extension'}: MAFW ships .mp4")
            media[native_id(path.name)] = rel
        except InvalidInput as err:
            problems.append((rel, err if err.reason != "malformed_row" else InvalidInput("bad_name", err.detail)))
    mentioned = set(folds.assignments) | set(compound) | set(sheet)
    for clip in sorted(mentioned - set(media)):
        problems.append(
            (
                f"data/clips/{clip}.mp4",
                InvalidInput(
                    "missing_media", f"clip {clip} is named in annotation files but data/clips/{clip}.mp4 is missing"
                ),
            )
        )
    tax = schemas.taxonomy()
    classes = _classes()
    rows: list[dict[str, Any]] = []
    for clip, rel in sorted(media.items()):
        size = (root / rel).stat().st_size
        if size == 0:
            problems.append((rel, InvalidInput("empty_file", "0 bytes")))
            continue
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
                "media_path": rel,
                "media_form": "video",
                "sha256": sha256_file(root / rel),
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
