"""What every export format shares: units per split, media read or copied with its sha256 checked, encodings."""

from __future__ import annotations

import io
import json
import pathlib
import wave
from typing import Any

import numpy as np

from emopipe.exports.media import read_verified
from emopipe.exports.plan import SPLIT_NAMES, Item, Plan
from emopipe.exports.staging import Staging

SAMPLE_RATE = 16_000


class Writer:
    """The base of a format's writer: the driver calls `add(item, features_row)` per clip, then `close()`.

    Args:
        plan: what the export holds.
        options: the export's options (emopipe.exports.Options).
        stage: the partial folder (units are committed there).
        roots: corpus -> media root.
        ds: the version.
    """

    columns: tuple[str, ...] = ()  # the features columns the format reads
    on_missing = "exported without its media"  # what happens to a clip whose media is missing or changed

    def __init__(self, plan: Plan, options: Any, stage: Staging, roots: dict[str, pathlib.Path], ds: Any) -> None:
        self.plan, self.options, self.stage, self.roots, self.ds = plan, options, stage, roots, ds
        self.unit_bytes = int(options.shard_size_mb * 1e6)
        self.pending: dict[str, dict[str, str]] = {s: {} for s in SPLIT_NAMES}  # problems found in the open unit
        self.problems: dict[str, str] = {}
        for split in SPLIT_NAMES:
            for unit in stage.units(split):
                self.problems.update(unit.get("problems") or {})

    def media_bytes(self, item: Item) -> bytes | None:
        """The clip's media file's bytes when they have the version's sha256, else None (and a reported problem)."""
        if item.media_problem or item.clip.media_form == "frames":
            return None
        data, problem = read_verified(item.clip, self.roots[item.clip.corpus])
        if problem:
            self.problem(item, problem)
        return data

    def media_path(self, item: Item) -> str | None:
        """The absolute path of the clip's media, when it is there unchanged (as far as a stat can tell)."""
        if item.media_problem:
            return None
        return str((self.roots[item.clip.corpus] / item.clip.media_path).resolve())

    def problem(self, item: Item, reason: str) -> None:
        item.media_problem = reason
        self.pending[item.split][item.clip.clip_id] = reason

    def commit(self, split: str, items: int, files: dict[str, pathlib.Path], **facts: Any) -> None:
        problems, self.pending[split] = self.pending[split], {}
        self.problems.update(problems)
        self.stage.commit(split, items, files, facts={**facts, "problems": problems})

    def finish_problems(self) -> None:
        """Carry problems found by earlier (resumed) runs onto the plan's items, so the report lists them."""
        for item in self.plan.all_items():
            if item.clip.clip_id in self.problems:
                item.media_problem = self.problems[item.clip.clip_id]

    def add(self, item: Item, features: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def close(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Commit what is open; return (facts for export.json, extra small files: relative path -> data)."""
        raise NotImplementedError


def rows(batch: Any, matrices: tuple[str, ...] = ("log_mel",)) -> list[dict[str, Any]]:
    """A features batch as dicts; list<list<float>> columns as float32 numpy matrices [rows, width], read from the
    Arrow buffers (a log-mel as Python floats costs more than writing it)."""
    plain = [c for c in batch.column_names if c not in matrices]
    out = batch.select(plain).to_pylist()
    for name in matrices:
        if name not in batch.column_names:
            continue
        column = batch.column(name).combine_chunks()
        for i, row in enumerate(out):
            if not column[i].is_valid:
                row[name] = None
                continue
            inner = column[i].values  # one row's list of lists
            flat = inner.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            row[name] = flat.reshape(len(inner), -1) if len(inner) else np.zeros((0, 0), np.float32)
    return out


def wav_bytes(pcm16: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """A WAV file of mono little-endian int16 PCM."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm16)
    return buf.getvalue()


def npy_bytes(matrix: Any, width: int = 80) -> bytes:
    """A .npy file of a float32 matrix (log-mel: [frames, 80])."""
    array = np.asarray(matrix if matrix is not None and len(matrix) else np.zeros((0, width)), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def metadata(item: Item, plan: Plan, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The per-clip metadata every format writes: labels, split, protocol and the clip's own columns."""
    return {
        "clip_id": item.clip.clip_id,
        "corpus": item.clip.corpus,
        "split": item.split,
        "protocol": plan.protocols[item.clip.corpus],
        "fold": plan.fold,
        "label": item.label,
        "label_index": plan.classes.index(item.label) if item.label in plan.classes else None,
        "label_source": item.label_source,
        "human_label": item.human_label,
        "media_problem": item.media_problem,
        "clip": item.meta,
        **(extra or {}),
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return None
    return str(value)
