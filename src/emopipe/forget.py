"""Subject deletion: a person asked to be removed, so no later version may hold their clips.

The register lives in two places. `<work_dir>/forget.json` takes requests at once (`emopipe forget --subject ID`
or the refresh DAG's `forget_subjects` param); every published version commits `forgotten.json` beside its
lineage, so the register survives a lost work folder and auditors see that (and when) requests were honoured.
Both keep only the sha256 of `<corpus>:<id>`, never the id itself (unsalted: it hides the id from a
reader, not from someone who can guess it).

Ingest drops every clip whose `subject_id` is registered before anything else reads it, so features, face
crops, labels and fused labels of that subject are never computed or carried over into the next version.
Earlier versions are history: they keep the data until their tags and remote objects are removed
(`emopipe forget` names the versions that hold the subject).
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import re
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from emopipe import io

log = logging.getLogger(__name__)

FILE = "forgotten.json"  # the register committed with each version
REMOVED = "forget_removed.json"  # what an ingest left out, in its stage folder
SUBJECT = re.compile(r"^[a-z]+:\S+$")


def subject_hash(subject_id: str) -> str:
    """The register's key for a subject id of the form `<corpus>:<id>`."""
    if not SUBJECT.match(subject_id):
        raise ValueError(f"subject id must look like '<corpus>:<id>' (e.g. ravdess:actor_07), got {subject_id!r}")
    return hashlib.sha256(subject_id.encode()).hexdigest()


def entries(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """hash -> entry, from a register document as `write` stores it."""
    return {e["subject_sha256"]: e for e in doc["subjects"]}


def read(path: pathlib.Path) -> dict[str, dict[str, Any]]:
    """hash -> entry, from a register file (empty when it does not exist)."""
    return entries(io.read_json(path)) if path.is_file() else {}


def write(path: pathlib.Path, entries: dict[str, dict[str, Any]]) -> None:
    io.write_json(path, {"subjects": sorted(entries.values(), key=lambda e: (e["requested_at"], e["subject_sha256"]))})


def request(work_dir: pathlib.Path, subject_ids: list[str], reason: str = "") -> list[str]:
    """Register subjects for removal from the next version; return the hashes newly added."""
    path = pathlib.Path(work_dir) / "forget.json"
    entries = read(path)
    added = []
    for sid in subject_ids:
        key = subject_hash(sid)
        if key not in entries:
            entries[key] = {
                "subject_sha256": key,
                "corpus": sid.split(":", 1)[0],
                "requested_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "reason": reason,
            }
            added.append(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, entries)
    return added


def register(work_dir: pathlib.Path, published: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every request: the work folder's and those committed with the latest version."""
    return {**(published or {}), **read(pathlib.Path(work_dir) / "forget.json")}


def drop(clips: pa.Table, entries: dict[str, dict[str, Any]]) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Remove the registered subjects' clips; return the rest and what was removed (hash, corpus, clip ids)."""
    if not entries or clips.num_rows == 0:
        return clips, []
    subjects = clips["subject_id"].to_pylist()
    hashes = [None if s is None else hashlib.sha256(s.encode()).hexdigest() for s in subjects]
    hit = pa.array([h in entries for h in hashes])
    removed: dict[str, list[str]] = {}
    for h, cid, is_hit in zip(hashes, clips["clip_id"].to_pylist(), hit.to_pylist(), strict=True):
        if is_hit:
            removed.setdefault(h, []).append(cid)
    kept = clips.filter(pc.invert(hit))
    report = [
        {"subject_sha256": h, "corpus": entries[h]["corpus"], "n_clips": len(ids), "clip_ids": sorted(ids)}
        for h, ids in sorted(removed.items())
    ]
    for r in report:
        log.info("forget: removed %d clips of subject %s… (%s)", r["n_clips"], r["subject_sha256"][:12], r["corpus"])
    return kept, report
