"""Split protocols: assemble per-clip fold assignments from split files, check them, count them.

A split entry says "clip X is in the train (or test) part of fold k, with label L". The published
protocols of DFEW and MAFW are 5-fold cross-validation: every single-labelled clip is in exactly one test
fold and never in train and test of the same fold. Violations become quarantine rows; nothing is dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from emopipe.sources.base import InvalidInput

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SplitEntry:
    """One row of a split file."""

    clip: str
    fold: int
    split: str
    label: str | None
    where: str  # "<file>:<line>" for messages


@dataclass
class Folds:
    """Per-clip fold assignments and labels assembled from split entries, with the problems found."""

    assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    problems: list[tuple[str, InvalidInput]] = field(default_factory=list)  # (where, problem)


def assemble(entries: list[SplitEntry], n_folds: int) -> Folds:
    """Group split entries per clip; record duplicates, train/test overlaps, label conflicts, protocol breaks."""
    out = Folds()
    seen: dict[tuple[str, int, str], str] = {}
    per_clip: dict[str, set[tuple[int, str]]] = defaultdict(set)
    labels: dict[str, dict[str, str]] = defaultdict(dict)  # clip -> label -> where
    for e in entries:
        if n_folds and not 1 <= e.fold <= n_folds:
            detail = f"{e.where}: fold {e.fold} is outside the {n_folds}-fold protocol; clip {e.clip} not assigned"
            out.problems.append((e.where, InvalidInput("protocol_violation", detail)))
            continue
        if e.label is not None:
            labels[e.clip].setdefault(e.label, e.where)  # before the duplicate check: a duplicate may disagree
        key = (e.clip, e.fold, e.split)
        if key in seen:
            out.problems.append(
                (
                    e.where,
                    InvalidInput(
                        "duplicate_in_fold", f"clip {e.clip} already in fold {e.fold} {e.split} at {seen[key]}"
                    ),
                )
            )
            continue
        seen[key] = e.where
        per_clip[e.clip].add((e.fold, e.split))
    for clip, pairs in sorted(per_clip.items()):
        folds = {f for f, _ in pairs}
        overlap = sorted(f for f in folds if (f, "train") in pairs and (f, "test") in pairs)
        for fold in overlap:
            where = seen[(clip, fold, "test")]
            out.problems.append(
                (where, InvalidInput("train_test_overlap", f"clip {clip} in train and test of fold {fold}"))
            )
        kept = sorted((f, s) for f, s in pairs if f not in overlap)
        out.assignments[clip] = [{"fold": f, "split": s} for f, s in kept]
        names = labels.get(clip, {})
        if len(names) > 1:
            detail = ", ".join(f"{lab} ({w})" for lab, w in sorted(names.items()))
            out.problems.append((min(names.values()), InvalidInput("label_conflict", f"clip {clip}: {detail}")))
            out.labels[clip] = None
        else:
            out.labels[clip] = next(iter(names), None)
        tests = [f for f, s in kept if s == "test"]
        if n_folds and len(tests) != 1 and not overlap:
            what = "no test fold" if not tests else f"test folds {tests}"
            where = seen[(clip, *min(pairs))]  # the first split file that names the clip
            out.problems.append((where, InvalidInput("protocol_violation", f"{where}: clip {clip} is in {what}")))
    return out


def fold_counts(clips: pa.Table) -> list[dict[str, Any]]:
    """Rows (corpus, fold, split, label, count) over the `folds` column; unlabelled clips count as label None."""
    counts: Counter[tuple[str, int, str, str | None]] = Counter()
    for corpus, folds, label in zip(
        clips["corpus"].to_pylist(), clips["folds"].to_pylist(), clips["label"].to_pylist(), strict=True
    ):
        for a in folds or []:
            counts[(corpus, a["fold"], a["split"], label)] += 1
    return [
        {"corpus": c, "fold": f, "split": s, "label": lab, "count": n}
        for (c, f, s, lab), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], str(kv[0][3])))
    ]


def check(clips: pa.Table) -> dict[str, Any]:
    """Protocol facts per corpus: per-fold train/test sizes, clips in exactly one test fold, overlaps."""
    out: dict[str, Any] = {}
    for corpus in sorted(set(clips["corpus"].to_pylist())):
        sizes: Counter[tuple[int, str]] = Counter()
        in_one_test = overlaps = with_folds = 0
        for c, folds in zip(clips["corpus"].to_pylist(), clips["folds"].to_pylist(), strict=True):
            if c != corpus or not folds:
                continue
            with_folds += 1
            pairs = {(a["fold"], a["split"]) for a in folds}
            for fold, split in pairs:
                sizes[(fold, split)] += 1
            in_one_test += sum(1 for _, s in pairs if s == "test") == 1
            overlaps += any((f, "train") in pairs and (f, "test") in pairs for f, _ in pairs)
        if with_folds:
            n_folds = max(f for f, _ in sizes)
            out[corpus] = {
                "clips_with_folds": with_folds,
                "clips_in_exactly_one_test_fold": in_one_test,
                "train_test_overlaps": overlaps,
                "folds": {
                    str(f): {"train": sizes[(f, "train")], "test": sizes[(f, "test")]} for f in range(1, n_folds + 1)
                },
            }
    return out
