"""RAVDESS: `Actor_NN/MM-VV-EE-II-SS-RR-AA.{mp4,wav}` coded file names.

Every field of the 7-part name is decoded (see the dataset README, Livingstone & Russo 2018):
modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised),
intensity (01 normal, 02 strong; neutral has no strong take), statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), repetition (01, 02) and actor (01..24, odd male, even female).
"""

from __future__ import annotations

import logging
import pathlib
import re
from dataclasses import dataclass
from typing import Any

from emopipe import schemas
from emopipe.sources.base import InvalidInput, ProgressFn, ScanResult, quarantine_row, sha256_file, walk_files

log = logging.getLogger(__name__)

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

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")


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
    """Decode `MM-VV-EE-II-SS-RR-AA.ext`. Raises InvalidInput with a quarantine reason code."""
    path = pathlib.PurePosixPath(filename)
    stem, ext = path.stem, path.suffix.lower()
    m = _NAME.match(stem)
    if not m:
        raise InvalidInput("bad_name", f"{path.name!r} is not MM-VV-EE-II-SS-RR-AA.ext")
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
        raise InvalidInput("unsupported_extension", f"{ext or 'no extension'}: RAVDESS ships .mp4 and .wav")
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
        raise FileNotFoundError(f"RAVDESS root {root} is not a folder")
    clips: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in walk_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            name = parse_name(path.name)
            folder = _ACTOR_DIR.match(path.parent.name)
            if folder and int(folder.group(1)) != name.actor:
                raise InvalidInput("folder_mismatch", f"actor {name.actor:02d} file inside {path.parent.name}")
            if path.stem in seen:
                raise InvalidInput("duplicate_id", f"same native id as {seen[path.stem]}")
            size = path.stat().st_size
            if size == 0:
                raise InvalidInput("empty_file", "0 bytes")
            seen[path.stem] = rel
            clips.append(clip_row(rel, name, sha256_file(path), size))
        except InvalidInput as err:
            quarantined.append(quarantine_row(rel, CORPUS, "ingest", err, run_id))
        if progress:
            progress(1)
    log.info("ravdess scan of %s: %d clips, %d quarantined", root, len(clips), len(quarantined))
    return ScanResult(schemas.from_rows(clips, schemas.CLIPS), schemas.from_rows(quarantined, schemas.QUARANTINE))
