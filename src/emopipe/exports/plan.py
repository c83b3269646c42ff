"""Which clips an export holds, in which split, with which label and media: a pure plan from the version's tables.

Per clip: its part (train or test) of the chosen fold of its corpus's protocol; the label to train on
(`fused_labels.train_label`, the human label where there is one, else a confident model label) with its source;
and its media path under the corpus root. Left out, and counted or listed in the export's report: clips of a
subject on the forget register (counted only: their ids would name the person), clips in no part of the fold,
unlabelled clips (unless asked for), and train clips that are near-duplicates of a test clip of another corpus.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe import splits as protocols
from emopipe.dataset import Dataset
from emopipe.exports.media import Clip

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "test")
# Clip columns every export carries as metadata (plain values; the map columns as dicts).
META = (
    "clip_id", "corpus", "native_id", "media_path", "media_form", "sha256", "size_bytes", "native_label", "label",
    "label_basic7", "compound_labels", "label_votes", "description", "modality", "vocal_channel", "intensity",
    "statement", "repetition", "subject_id", "gender", "gender_source", "age_group", "age_group_source", "accent",
    "accent_source", "language", "transcription", "valence", "arousal", "duration_s", "fps", "width", "height",
    "has_video", "has_audio", "license",
)  # fmt: skip


@dataclass
class Item:
    """One clip of an export."""

    clip: Clip
    split: str
    key: str
    label: str | None
    label_source: str
    human_label: str | None
    meta: dict[str, Any]
    media_problem: str | None = None


@dataclass
class Plan:
    """What an export holds."""

    items: dict[str, list[Item]]
    protocols: dict[str, str]
    fold: int
    classes: list[str]
    left_out: Counter = field(default_factory=Counter)
    rows: list[dict[str, Any]] = field(default_factory=list)  # reported clips: left out or exported without media
    splits_source: str = "version"

    def all_items(self) -> list[Item]:
        return [i for s in SPLIT_NAMES for i in self.items[s]]

    def report(self, clip: Item | None, reason: str, detail: str = "", action: str = "left out") -> None:
        self.rows.append(
            {
                "clip_id": clip.clip.clip_id if clip else None,
                "split": clip.split if clip else None,
                "reason": reason,
                "detail": detail,
                "action": action,
            }
        )

    def digest(self) -> str:
        """What the plan holds, for the resume key."""
        h = hashlib.sha256()
        for item in self.all_items():
            h.update(f"{item.split}\0{item.clip.clip_id}\0{item.clip.sha256}\0{item.label}\n".encode())
        return h.hexdigest()


def sample_keys(clip_ids: list[str]) -> dict[str, str]:
    """clip_id -> a key that is safe as a file name and a WebDataset key (no dots), unique."""
    safe = {c: re.sub(r"[^A-Za-z0-9_-]", "_", c) for c in clip_ids}
    taken = Counter(safe.values())
    return {c: (s if taken[s] == 1 else f"{s}-{hashlib.sha1(c.encode()).hexdigest()[:8]}") for c, s in safe.items()}


def classes_of(corpora: list[str]) -> list[str]:
    """The canonical classes of the corpora of an export, in taxonomy order (the label's ClassLabel names)."""
    tax = schemas.taxonomy()
    present: set[str] = set()
    for corpus in corpora:
        present |= set(tax.classes(corpus)) if corpus in tax.corpora else set(tax.canonical)
    return [c for c in tax.canonical if c in present]


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in META}
    out["label_votes"] = schemas.as_dict(row.get("label_votes")) or None
    return out


def build(
    ds: Dataset,
    *,
    protocol: str | None,
    fold: int,
    forgotten: dict[str, dict[str, Any]],
    drop_near_duplicates: bool = True,
    include_unlabelled: bool = False,
    subject_folds: int = 5,
    seed: int = 0,
) -> Plan:
    """The plan of an export of `ds`: the fold's train and test clips.

    Args:
        ds: the version (a checked-out dataset folder).
        protocol: the splits protocol; None: each corpus's preferred one (splits.PREFERRED).
        fold: the fold.
        forgotten: the forget register (subject hash -> entry): those subjects' clips are never exported.
        drop_near_duplicates: leave out train clips equal (bytes or first frame) to a test clip of another corpus.
        include_unlabelled: keep clips without a training label (label null).
        subject_folds: k for splits computed here, for a version published before it had a splits table.
        seed: the seed for those.

    Raises:
        splits.SplitError: an unknown protocol or a fold the protocol lacks.
    """
    from emopipe import forget

    clips = ds.clips.sort_by("clip_id")
    source = "version"
    if ds.has("splits"):
        split_table = ds.splits
    else:  # a version published before splits existed: the same functions the pipeline uses, here
        split_table = protocols.build(clips, subject_folds, seed)
        source = f"computed at export (the version has no splits table; subject_folds {subject_folds}, seed {seed})"
        log.warning("%s has no splits table: %s", ds.path, source)
    kept, removed = forget.drop(clips, forgotten)
    chosen = protocols.choose(split_table, protocol, fold, kept["corpus"].to_pylist())
    assigned = protocols.assignment(split_table, chosen, fold)
    plan = Plan({s: [] for s in SPLIT_NAMES}, chosen, fold, classes_of(sorted(chosen)), splits_source=source)
    if removed:
        plan.left_out["forgotten_subject"] = sum(r["n_clips"] for r in removed)
    fused = _fused_labels(ds)
    train_labels: dict[str, tuple[str | None, str]] = {}
    if fused is not None:
        for cid, lab, src in zip(
            *(fused[c].to_pylist() for c in ("clip_id", "train_label", "train_label_source")), strict=True
        ):
            train_labels[cid] = (lab, src)
    dropped = set()
    if drop_near_duplicates:
        live = set(kept["clip_id"].to_pylist())
        dropped = protocols.near_duplicate_train_clips({c: s for c, s in assigned.items() if c in live}, kept)
    rows = kept.to_pylist()
    keys = sample_keys([r["clip_id"] for r in rows])
    for row in rows:
        cid, corpus = row["clip_id"], row["corpus"]
        if corpus not in chosen:
            plan.left_out[f"no_protocol:{corpus}"] += 1
            continue
        split = assigned.get(cid)
        if split is None:
            plan.left_out["not_in_fold"] += 1
            continue
        human = row["label"]
        label, source_ = train_labels.get(cid, (human, "human" if human else "none"))
        clip = Clip(cid, corpus, row["media_path"], row["media_form"], row["sha256"], int(row["size_bytes"]))
        item = Item(clip, split, keys[cid], label, source_, human, _meta(row))
        if cid in dropped:
            plan.left_out["near_duplicate"] += 1
            plan.report(item, "near_duplicate", "equal to a test clip of another corpus in this fold")
            continue
        if label is None and not include_unlabelled:
            plan.left_out["unlabelled"] += 1
            continue
        plan.items[split].append(item)
    labels = {i.label for i in plan.all_items() if i.label}
    if extra := labels - set(plan.classes):  # a model label outside the corpora's classes still needs a class
        plan.classes = [c for c in schemas.taxonomy().canonical if c in set(plan.classes) | extra]
    return plan


def _fused_labels(ds: Dataset) -> pa.Table | None:
    """The version's fused_labels; a version published before the rename (schema v1: label, label_source) too."""
    if not ds.has("fused_labels"):
        return None
    raw = ds.raw("fused_labels")
    if "train_label" not in raw.column_names and "label" in raw.column_names:
        renamed = {"label": "train_label", "label_source": "train_label_source"}
        raw = raw.rename_columns([renamed.get(c, c) for c in raw.column_names])
    return schemas.conform(raw, schemas.load_schema("fused_labels"))


def counts(plan: Plan) -> dict[str, Any]:
    """Per split: clips, and clips per label and per corpus (without the clips a format reported as left out)."""
    out: dict[str, Any] = {}
    left = {(r["clip_id"], r["split"]) for r in plan.rows if r["action"].startswith("left out")}
    for split, all_items in plan.items.items():
        items = [i for i in all_items if (i.clip.clip_id, split) not in left]
        out[split] = {
            "clips": len(items),
            "labels": dict(sorted(Counter(i.label or "unlabelled" for i in items).items())),
            "corpora": dict(sorted(Counter(i.clip.corpus for i in items).items())),
            "label_sources": dict(sorted(Counter(i.label_source for i in items).items())),
        }
    return out


def arrow_rows(table: pa.Table) -> dict[str, dict[str, Any]]:
    """clip_id -> row of a (small) features batch."""
    return {r["clip_id"]: r for r in table.to_pylist()}
