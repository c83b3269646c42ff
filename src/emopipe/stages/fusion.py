"""Label fusion: one label to train on per clip (`train_label`), from the human label and one labeler's model label,
a pure function.

The human label always wins where there is one (a disagreeing model is recorded in `disagreement`, not acted on).
An unlabelled clip takes the model's label only when the model is confident enough: its confidence must reach
`min_confidence`. A generative labeler (a video LLM) gives no confidence (null); its labels count only when
`min_confidence <= 0`, i.e. when the caller explicitly accepts every model label. Everything else stays unlabelled
(`train_label_source` "none").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from emopipe import schemas

FUSED_LABELS = schemas.load_schema("fused_labels")


def resolve_labeler(known: Iterable[str], labeler: str) -> str:
    """The full "name@version" labeler that `labeler` designates among `known`.

    Args:
        known: labeler values present (e.g. the labels table's `labeler` column); repeats are fine.
        labeler: a full "name@version" string, or a bare name matching the part before "@".

    Raises:
        ValueError: no match (the message lists the known labelers), or a bare name matching several versions.
    """
    known = sorted(set(known))
    if labeler in known:
        return labeler
    matches = [k for k in known if "@" not in labeler and k.split("@", 1)[0] == labeler]
    if len(matches) > 1:
        raise ValueError(f"labeler {labeler!r} is ambiguous: it matches {matches}; give the full name@version")
    if not matches:
        raise ValueError(f"unknown labeler {labeler!r}; known labelers: {known}")
    return matches[0]


def _require(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    if missing := [c for c in columns if c not in table.column_names]:
        raise ValueError(f"{name}: missing columns {missing}")


def fuse(clips: pa.Table, labels: pa.Table, labeler: str, min_confidence: float) -> pa.Table:
    """Fuse the human labels with one labeler's labels into one label per clip.

    Per clip, `train_label`: the human label if set (`train_label_source` "human"); else the model label if the
    model gave one with confidence >= `min_confidence` (compared at float32, the precision confidences are stored
    in, so a confidence written as 0.7 passes a threshold of 0.7), or with a null confidence when
    `min_confidence <= 0` (`train_label_source` "model"); else null (`train_label_source` "none"). `disagreement`
    is set wherever both a human and a model label exist, whatever the confidence.

    Args:
        clips: at least clip_id, corpus and label (the human canonical label, nullable); clip_id unique.
        labels: at least clip_id, labeler, label (null = abstention) and confidence (nullable); at most one row per
            (clip_id, labeler). Rows for clips not in `clips` and other labelers' rows are ignored.
        labeler: "name@version", or a bare name if exactly one version of it is in `labels`.
        min_confidence: the confidence a model label needs to fill an unlabelled clip; <= 0 also admits labels
            without a confidence (generative labelers).

    Returns:
        The `fused_labels` table (schemas/fused_labels.yaml): one row per clip, sorted by clip_id.

    Raises:
        ValueError: unknown or ambiguous labeler, NaN threshold, duplicate clips or label rows, missing columns.
    """
    if math.isnan(min_confidence):
        raise ValueError("min_confidence is NaN")
    _require(clips, "clips", ("clip_id", "corpus", "label"))
    _require(labels, "labels", ("clip_id", "labeler", "label", "confidence"))
    labeler = resolve_labeler(labels["labeler"].to_pylist(), labeler)
    threshold = float(np.float32(min_confidence))

    model: dict[str, tuple[str | None, float | None]] = {}
    columns = ("clip_id", "labeler", "label", "confidence")
    for clip_id, name, label, confidence in zip(*(labels[c].to_pylist() for c in columns), strict=True):
        if name != labeler:
            continue
        if clip_id in model:
            raise ValueError(f"labels: {labeler!r} has more than one row for clip {clip_id!r}")
        known = confidence is not None and not math.isnan(confidence)  # a NaN confidence counts as none
        model[clip_id] = (label, float(np.float32(confidence)) if known else None)

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for clip_id, corpus, human in zip(*(clips[c].to_pylist() for c in ("clip_id", "corpus", "label")), strict=True):
        if clip_id in seen:
            raise ValueError(f"clips: duplicate clip_id {clip_id!r}")
        seen.add(clip_id)
        predicted, confidence = model.get(clip_id, (None, None))
        confident = threshold <= 0 if confidence is None else confidence >= threshold
        if human is not None:
            label, source = human, "human"
        elif predicted is not None and confident:
            label, source = predicted, "model"
        else:
            label, source = None, "none"
        rows.append(
            {
                "clip_id": clip_id,
                "corpus": corpus,
                "human_label": human,
                "model_label": predicted,
                "model_confidence": confidence,
                "train_label": label,
                "train_label_source": source,
                "disagreement": None if human is None or predicted is None else human != predicted,
            }
        )
    rows.sort(key=lambda r: r["clip_id"])
    return schemas.from_rows(rows, FUSED_LABELS)
