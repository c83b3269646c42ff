"""Split protocols for every corpus, as one `splits` table (schemas/splits.yaml), and the checks the gate runs on it.

Pure functions over the clips table. The protocols:

- `official_5fold` (DFEW, MAFW): the corpus's own split files, as the readers put them into `clips.folds`.
- `actor_6fold` (RAVDESS): the subject-independent protocol of the literature, six folds of four actors (actors 1-4
  are the test part of fold 1, 5-8 of fold 2, ..., 21-24 of fold 6; the other actors are its train part).
- `leave_one_actor_out` (RAVDESS): fold k tests actor k and trains on the others.
- `subject_kfold` (every corpus whose clips carry a `subject_id`, footage included): k subject-disjoint folds,
  stratified by label where the labels allow it (scikit-learn's StratifiedGroupKFold), deterministic for a seed.
  Clips without a subject id are left out of it: nobody can say they are disjoint from anyone.

A fold exists when it has test clips. `leaks` lists what the train and test parts of one fold share: a subject or
the same bytes within a corpus (the gate blocks the version), or near-duplicates across corpora (the same bytes or
first-frame hash in one corpus's test part and another corpus's train part: a warning; exports leave those train
clips out).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emopipe import schemas

log = logging.getLogger(__name__)

SPLITS = schemas.load_schema("splits")
SPLIT_LEAKS = schemas.load_schema("split_leaks")

OFFICIAL, ACTOR_6FOLD, LOAO, SUBJECT_KFOLD = "official_5fold", "actor_6fold", "leave_one_actor_out", "subject_kfold"
PROTOCOLS = {
    OFFICIAL: "the corpus's own 5-fold split files (DFEW, MAFW)",
    ACTOR_6FOLD: "RAVDESS subject-independent: six folds of four actors (actors 1-4 test in fold 1, ..., 21-24 in 6)",
    LOAO: "RAVDESS leave-one-actor-out: fold k tests actor k",
    SUBJECT_KFOLD: "k subject-disjoint folds, stratified by label (every corpus with subject ids)",
}
# The protocol an export uses for a corpus when none is asked for, in order of preference.
PREFERRED = (OFFICIAL, ACTOR_6FOLD, SUBJECT_KFOLD, LOAO)
ACTORS_PER_FOLD = 4
_ACTOR = re.compile(r"actor_(\d+)$")


class SplitError(ValueError):
    """A protocol or fold that the splits table does not have."""


def actor_number(subject_id: str | None) -> int | None:
    """The RAVDESS actor number in a subject id such as 'ravdess:actor_07'; None for anything else."""
    match = _ACTOR.search(subject_id or "")
    return int(match.group(1)) if match else None


def _rows(clip_id: str, corpus: str, protocol: str, test_fold: int, folds: Iterable[int]) -> list[dict[str, Any]]:
    return [
        {
            "clip_id": clip_id,
            "corpus": corpus,
            "protocol": protocol,
            "fold": k,
            "split": "test" if k == test_fold else "train",
        }
        for k in folds
    ]


def official(clips: pa.Table) -> list[dict[str, Any]]:
    """The corpora's own protocols, from `clips.folds` (filled from their split files by the readers)."""
    rows = []
    for cid, corpus, folds in zip(
        clips["clip_id"].to_pylist(), clips["corpus"].to_pylist(), clips["folds"].to_pylist(), strict=True
    ):
        for entry in folds or []:
            rows.append(
                {
                    "clip_id": cid,
                    "corpus": corpus,
                    "protocol": OFFICIAL,
                    "fold": int(entry["fold"]),
                    "split": entry["split"],
                }
            )
    return rows


def actor_folds(clips: pa.Table) -> list[dict[str, Any]]:
    """RAVDESS actor_6fold and leave_one_actor_out, for the folds that have test clips."""
    actors: dict[str, int] = {}
    for cid, corpus, subject in zip(
        clips["clip_id"].to_pylist(), clips["corpus"].to_pylist(), clips["subject_id"].to_pylist(), strict=True
    ):
        if corpus == "ravdess" and (n := actor_number(subject)) is not None:
            actors[cid] = n
    six = sorted({(n - 1) // ACTORS_PER_FOLD + 1 for n in actors.values()})
    each = sorted(set(actors.values()))
    rows = []
    for cid, n in sorted(actors.items()):
        rows += _rows(cid, "ravdess", ACTOR_6FOLD, (n - 1) // ACTORS_PER_FOLD + 1, six)
        rows += _rows(cid, "ravdess", LOAO, n, each)
    return rows


def subject_kfold(clips: pa.Table, k: int, seed: int) -> list[dict[str, Any]]:
    """k subject-disjoint folds per corpus with subject ids, stratified by label where possible.

    Args:
        clips: the clips table (clip_id, corpus, subject_id, label).
        k: the number of folds; a corpus with fewer subjects gets one fold per subject, with one subject none.
        seed: StratifiedGroupKFold's random_state: the same clips and seed give the same folds.
    """
    by_corpus: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for cid, corpus, subject, label in zip(
        *(clips[c].to_pylist() for c in ("clip_id", "corpus", "subject_id", "label")), strict=True
    ):
        if subject is not None:
            by_corpus[corpus].append((cid, subject, label or ""))  # unlabelled clips are a stratum of their own
    rows: list[dict[str, Any]] = []
    if by_corpus:  # scikit-learn (the quality extra) only where a corpus has subject ids
        from sklearn.model_selection import StratifiedGroupKFold
    for corpus, members in sorted(by_corpus.items()):
        members.sort()
        n_subjects = len({s for _, s, _ in members})
        n_folds = min(k, n_subjects)
        if n_folds < 2:
            log.info("splits: %s has %d subject(s): no subject-disjoint folds", corpus, n_subjects)
            continue
        labels = np.array([lab for _, _, lab in members])
        groups = np.array([s for _, s, _ in members])
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # "the least populated class has fewer members than n_splits": expected
            warnings.simplefilter("ignore", UserWarning)
            tests = [test for _, test in splitter.split(np.zeros(len(members)), labels, groups)]
        test_fold = {int(i): fold for fold, idx in enumerate(tests, start=1) for i in idx}
        folds = range(1, n_folds + 1)
        for i, (cid, _, _) in enumerate(members):
            rows += _rows(cid, corpus, SUBJECT_KFOLD, test_fold[i], folds)
    return rows


def build(clips: pa.Table, subject_folds: int = 5, seed: int = 0) -> pa.Table:
    """The splits table of a clips table: every protocol each corpus has (see the module docstring)."""
    rows = official(clips) + actor_folds(clips) + subject_kfold(clips, subject_folds, seed)
    rows.sort(key=lambda r: (r["clip_id"], r["protocol"], r["fold"]))
    return schemas.from_rows(rows, SPLITS)


def follow(splits: pa.Table, clips: pa.Table) -> pa.Table:
    """The splits rows of the clips still in `clips` (a clip the probe quarantined leaves its folds)."""
    return splits.filter(pc.is_in(splits["clip_id"], clips["clip_id"]))


def protocols(splits: pa.Table) -> dict[tuple[str, str], list[int]]:
    """(corpus, protocol) -> its folds."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for corpus, protocol, fold in zip(*(splits[c].to_pylist() for c in ("corpus", "protocol", "fold")), strict=True):
        out[(corpus, protocol)].add(fold)
    return {key: sorted(folds) for key, folds in sorted(out.items())}


def sizes(splits: pa.Table) -> list[dict[str, Any]]:
    """Per corpus, protocol and fold: the number of train and test clips (for the card and the report)."""
    counts: dict[tuple[str, str, int], dict[str, int]] = defaultdict(lambda: {"train": 0, "test": 0})
    for corpus, protocol, fold, split in zip(
        *(splits[c].to_pylist() for c in ("corpus", "protocol", "fold", "split")), strict=True
    ):
        counts[(corpus, protocol, fold)][split] += 1
    return [{"corpus": c, "protocol": p, "fold": f, **n} for (c, p, f), n in sorted(counts.items())]


def choose(splits: pa.Table, protocol: str | None, fold: int, corpora: Iterable[str]) -> dict[str, str]:
    """corpus -> the protocol an export uses for it: `protocol` where the corpus has it, else (None) its preferred.

    Raises:
        SplitError: an unknown protocol, a fold that a chosen protocol lacks, or no corpus with the protocol.
    """
    have = protocols(splits)
    if protocol is not None and protocol not in {p for _, p in have}:
        known = sorted({p for _, p in have})
        raise SplitError(f"protocol {protocol!r} is not in this version (it has {', '.join(known) or 'no splits'})")
    chosen = {}
    for corpus in sorted(set(corpora)):
        options = [p for p in ([protocol] if protocol else PREFERRED) if (corpus, p) in have]
        if not options:
            continue
        folds = have[(corpus, options[0])]
        if fold not in folds:
            raise SplitError(f"fold {fold} is not in {corpus}'s {options[0]} protocol (its folds: {ranges(folds)})")
        chosen[corpus] = options[0]
    if not chosen:
        raise SplitError("no corpus of this version has a splits protocol" + (f" {protocol!r}" if protocol else ""))
    return chosen


def assignment(splits: pa.Table, chosen: dict[str, str], fold: int) -> dict[str, str]:
    """clip_id -> train or test, for the fold of each corpus's chosen protocol."""
    out = {}
    for cid, corpus, protocol, k, split in zip(
        *(splits[c].to_pylist() for c in ("clip_id", "corpus", "protocol", "fold", "split")), strict=True
    ):
        if k == fold and chosen.get(corpus) == protocol:
            out[cid] = split
    return out


def leaks(splits: pa.Table, clips: pa.Table) -> pa.Table:
    """What the train and test parts of each fold share (schemas/split_leaks.yaml).

    Within one corpus and protocol: a subject or a sha256 in both parts of a fold. Across corpora, in the same
    protocol and fold: a test clip whose sha256 or frame hash equals a train clip of another corpus.
    """
    facts = _facts(clips)
    parts: dict[tuple[str, int], dict[str, list[tuple[str, str]]]] = defaultdict(lambda: {"train": [], "test": []})
    for cid, corpus, protocol, fold, split in zip(
        *(splits[c].to_pylist() for c in ("clip_id", "corpus", "protocol", "fold", "split")), strict=True
    ):
        if cid in facts:
            parts[(protocol, fold)][split].append((corpus, cid))
    rows: list[dict[str, Any]] = []
    for (protocol, fold), part in sorted(parts.items()):
        for kind, index in (("subject", 0), ("sha256", 1)):
            shared: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"train": [], "test": []})
            for split in ("train", "test"):
                for corpus, cid in part[split]:
                    if (value := facts[cid][index]) is not None:
                        shared[(corpus, value)][split].append(cid)
            rows += [
                _leak(protocol, fold, corpus, kind=kind, key=value, ids=ids)
                for (corpus, value), ids in sorted(shared.items())
                if ids["train"] and ids["test"]
            ]
        rows += _near_duplicates(protocol, fold, part, facts)
    return schemas.from_rows(rows, SPLIT_LEAKS)


def _facts(clips: pa.Table) -> dict[str, tuple[str | None, str | None, str | None]]:
    """clip_id -> (subject_id, sha256, frame_hash)."""
    columns = ("clip_id", "subject_id", "sha256", "frame_hash")
    return {cid: rest for cid, *rest in zip(*(clips[c].to_pylist() for c in columns), strict=True)}


def _leak(protocol: str, fold: int, corpus: str, *, kind: str, key: str, ids: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "protocol": protocol, "fold": fold, "corpus": corpus, "kind": kind, "key": key,
        "train_clip_ids": sorted(set(ids["train"])), "test_clip_ids": sorted(set(ids["test"])),
    }  # fmt: skip


def _near_duplicates(
    protocol: str, fold: int, part: dict[str, list[tuple[str, str]]], facts: dict[str, tuple]
) -> list[dict[str, Any]]:
    """Test clips of one corpus equal (bytes or first frame) to train clips of another, in one fold."""
    train: dict[str, list[tuple[str, str]]] = defaultdict(list)  # sha256 or frame hash -> (corpus, clip)
    for corpus, cid in part["train"]:
        _, sha, frame = facts[cid]
        for key in {sha, frame} - {None}:
            train[key].append((corpus, cid))
    found: dict[tuple[str, str], dict[str, set[str]]] = {}
    for corpus, cid in part["test"]:
        _, sha, frame = facts[cid]
        for key in (frame, sha):  # the frame hash first: it also finds re-encoded copies, which share no bytes
            others = [c for k, c in train.get(key, []) if k != corpus] if key else []
            if others:
                entry = found.setdefault((corpus, frame or sha), {"train": set(), "test": set()})
                entry["train"].update(others)
                entry["test"].add(cid)
                break
    return [
        _leak(protocol, fold, corpus, kind="near_duplicate", key=key, ids={k: list(v) for k, v in ids.items()})
        for (corpus, key), ids in sorted(found.items())
    ]


def near_duplicate_train_clips(assigned: dict[str, str], clips: pa.Table) -> set[str]:
    """The train clips of an export's assignment (clip_id -> train/test) that equal a test clip of another corpus."""
    facts = _facts(clips)
    corpus_of = dict(zip(clips["clip_id"].to_pylist(), clips["corpus"].to_pylist(), strict=True))
    part: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for cid, split in sorted(assigned.items()):
        if cid in facts:
            part[split].append((corpus_of[cid], cid))
    return {c for row in _near_duplicates("", 0, part, facts) for c in row["train_clip_ids"]}


def ranges(values: list[int]) -> str:
    """Folds as text: [1, 2, 3, 5] -> '1..3, 5'."""
    out, start, prev = [], None, None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            out.append(f"{start}..{prev}" if prev != start else str(start))
            start = prev = v
    if start is not None:
        out.append(f"{start}..{prev}" if prev != start else str(start))
    return ", ".join(out) or "none"
