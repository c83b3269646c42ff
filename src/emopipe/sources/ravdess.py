"""RAVDESS: `Actor_NN/MM-VV-EE-II-SS-RR-AA.{mp4,wav}` coded file names.

Every field of the 7-part name is decoded (see the dataset README, Livingstone & Russo 2018):
modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised),
intensity (01 normal, 02 strong; neutral has no strong take), statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), repetition (01, 02) and actor (01..24, odd male, even female).
The name must be exactly that: ASCII digits, nothing before or after (a newline before the extension, Arabic-Indic
or full-width digits are `bad_name`). The root is walked safely (emopipe.sources.files): links out of it, loops,
FIFOs, folders named like clips and names that are not printable UTF-8 each get their quarantine row.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

from emopipe import schemas
from emopipe.sources import files
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

CORPUS = "ravdess"
MODALITIES = {"01": "audio-visual", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
REPETITIONS = {"01": 1, "02": 2}
SONG_EMOTIONS = {"neutral", "calm", "happy", "sad", "angry", "fearful"}
EXTENSIONS = {"audio-visual": ".mp4", "video-only": ".mp4", "audio-only": ".wav"}

_NAME = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})", re.ASCII)
_ACTOR_DIR = re.compile(r"Actor_([0-9]{2})", re.ASCII)


@dataclass(frozen=True)
class RavdessName:
    """The seven decoded fields of one RAVDESS file name."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        """Derived from the actor number, as the dataset documents: odd male, even female."""
        return "male" if self.actor % 2 else "female"


def parse_name(filename: str) -> RavdessName:
    """Decode `MM-VV-EE-II-SS-RR-AA.ext` (ASCII digits only, nothing before or after). Raises InvalidInput."""
    path = pathlib.PurePosixPath(filename)
    stem, ext = path.stem, path.suffix.lower()
    m = _NAME.fullmatch(stem)
    if not m:
        raise InvalidInput("bad_name", f"{printable(repr(path.name), 120)} is not MM-VV-EE-II-SS-RR-AA.ext")
    mod, voc, emo, inten, stmt, rep, actor = m.groups()
    tables = [
        ("modality", mod, MODALITIES),
        ("vocal channel", voc, VOCAL_CHANNELS),
        ("emotion", emo, EMOTIONS),
        ("intensity", inten, INTENSITIES),
        ("statement", stmt, STATEMENTS),
        ("repetition", rep, REPETITIONS),
    ]
    for field_name, code, table in tables:
        if code not in table:
            raise InvalidInput("code_out_of_range", f"{field_name} code {code} not in {sorted(table)}")
    if not 1 <= int(actor) <= 24:
        raise InvalidInput("code_out_of_range", f"actor code {actor} not in 01..24")
    name = RavdessName(
        MODALITIES[mod],
        VOCAL_CHANNELS[voc],
        EMOTIONS[emo],
        INTENSITIES[inten],
        STATEMENTS[stmt],
        REPETITIONS[rep],
        int(actor),
    )
    if name.emotion == "neutral" and name.intensity == "strong":
        raise InvalidInput("invalid_combination", "neutral has no strong intensity in RAVDESS")
    if name.vocal_channel == "song" and name.emotion not in SONG_EMOTIONS:
        raise InvalidInput("invalid_combination", f"RAVDESS song has no {name.emotion} takes")
    if ext not in {".mp4", ".wav"}:
        raise InvalidInput(
            "unsupported_extension", f"{printable(ext, 40) or 'no extension'}: RAVDESS ships .mp4 and .wav"
        )
    if ext != EXTENSIONS[name.modality]:
        raise InvalidInput("modality_mismatch", f"{name.modality} (code {mod}) should be {EXTENSIONS[name.modality]}")
    return name


def clip_row(rel_path: str, name: RavdessName, sha256: str, size: int) -> dict[str, Any]:
    """A clips-table row for one parsed file; media probe columns are left null for the probe stage."""
    tax = schemas.taxonomy()
    stem = pathlib.PurePosixPath(rel_path).stem
    return {
        "clip_id": f"{CORPUS}:{stem}",
        "corpus": CORPUS,
        "native_id": stem,
        "media_path": rel_path,
        "media_form": "audio" if name.modality == "audio-only" else "video",
        "sha256": sha256,
        "size_bytes": size,
        "native_label": name.emotion,
        "label": tax.native_to_canonical(CORPUS)[name.emotion],
        "label_basic7": tax.to_basic7(tax.native_to_canonical(CORPUS)[name.emotion]),
        "modality": name.modality,
        "vocal_channel": name.vocal_channel,
        "intensity": name.intensity,
        "statement": name.statement,
        "repetition": name.repetition,
        "subject_id": f"{CORPUS}:actor_{name.actor:02d}",
        "gender": name.gender,
        "gender_source": "derived",
        "license": tax.license(CORPUS),
    }


def scan(root: pathlib.Path, run_id: str, progress: ProgressFn | None = None) -> ScanResult:
    """Read a RAVDESS root as the dataset ships it. Bad inputs become quarantine rows; nothing is dropped silently."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"RAVDESS root {printable(root)} is not a folder")
    tree = files.walk(root)
    clips: list[dict[str, Any]] = []
    problems = list(tree.problems)
    for folder in tree.dirs:
        if folder.suffix in EXTENSIONS.values():
            problems.append((folder.rel, InvalidInput("not_a_file", "a folder named like a media file")))
    seen: dict[str, str] = {}
    announce(progress, len(tree.files))
    for entry in tree.files:
        with guard(problems, entry.rel):
            check_name(entry.rel)
            name = parse_name(entry.name)
            parent = entry.parent.rpartition("/")[2]
            folder = _ACTOR_DIR.fullmatch(parent)
            if folder and int(folder.group(1)) != name.actor:
                raise InvalidInput("folder_mismatch", f"actor {name.actor:02d} file inside {parent}")
            if entry.stem in seen:
                raise InvalidInput("duplicate_id", f"same native id as {seen[entry.stem]}")
            if entry.size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            sha, size = files.sha256(entry)
            if size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            seen[entry.stem] = entry.rel
            clips.append(clip_row(entry.rel, name, sha, size))
        if progress:
            progress(1)
    return finish_scan(CORPUS, root, clips, problems, run_id)
