"""Class balance and demographic representation as pure `clips table -> metric table` functions."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from emopipe import schemas

CLASS_BALANCE = schemas.load_schema("class_balance")
BALANCE_SUMMARY = schemas.load_schema("balance_summary")
REPRESENTATION = schemas.load_schema("representation")
NEAR_DUPLICATES = schemas.load_schema("near_duplicates")
FOLD_BALANCE = schemas.load_schema("fold_balance")
DEMOGRAPHICS = ("gender", "age_group")


def class_balance(clips: pa.Table) -> pa.Table:
    """Per corpus, count and share of every class the corpus defines, zero counts included."""
    tax = schemas.taxonomy()
    rows: list[dict[str, Any]] = []
    for corpus in sorted(set(clips["corpus"].to_pylist())):
        labels = [
            lab
            for c, lab in zip(clips["corpus"].to_pylist(), clips["label"].to_pylist(), strict=True)
            if c == corpus and lab is not None
        ]
        counts, total = Counter(labels), len(labels)
        classes = tax.classes(corpus) if corpus in tax.corpora else sorted(counts)
        for label in classes + sorted(set(counts) - set(classes)):
            rows.append(
                {
                    "corpus": corpus,
                    "label": label,
                    "count": counts[label],
                    "share": counts[label] / total if total else 0.0,
                }
            )
    return schemas.from_rows(rows, CLASS_BALANCE)


def divergence(shares: list[float]) -> float | None:
    """Jensen-Shannon distance (base 2, 0..1) between a class distribution and the uniform one over its classes."""
    from scipy.spatial.distance import jensenshannon

    if len(shares) < 2 or not sum(shares):
        return None
    return float(jensenshannon(shares, [1.0 / len(shares)] * len(shares), base=2))


def balance_summary(clips: pa.Table, balance: pa.Table) -> pa.Table:
    """Per corpus: smallest and largest class, the imbalance ratio (null when a class is empty), and the
    divergence of the class distribution from the uniform reference."""
    n_by_corpus = Counter(clips["corpus"].to_pylist())
    by_corpus: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in balance.to_pylist():
        by_corpus[row["corpus"]].append(row)
    rows = []
    for corpus, classes in sorted(by_corpus.items()):
        small = min(classes, key=lambda r: (r["count"], r["label"]))
        large = max(classes, key=lambda r: (r["count"], r["label"]))
        rows.append(
            {
                "corpus": corpus,
                "n_clips": n_by_corpus[corpus],
                "n_labelled": sum(r["count"] for r in classes),
                "n_classes": len(classes),
                "smallest_class": small["label"],
                "min_share": small["share"],
                "largest_class": large["label"],
                "imbalance_ratio": large["count"] / small["count"] if small["count"] else None,
                "divergence": divergence([r["share"] for r in classes]),
            }
        )
    return schemas.from_rows(rows, BALANCE_SUMMARY)


def fold_balance(clips: pa.Table, balance: pa.Table) -> pa.Table:
    """Per corpus, fold and split: the smallest class, imbalance ratio and divergence from the corpus's class mix."""
    from scipy.spatial.distance import jensenshannon

    from emopipe.sources import protocol

    overall: dict[str, dict[str, float]] = defaultdict(dict)
    for row in balance.to_pylist():
        overall[row["corpus"]][row["label"]] = row["share"]
    counts: dict[tuple[str, int, str], Counter] = defaultdict(Counter)
    for row in protocol.fold_counts(clips):
        if row["label"] is not None:
            counts[(row["corpus"], row["fold"], row["split"])][row["label"]] += row["count"]
    rows = []
    for (corpus, fold, split), counter in sorted(counts.items()):
        classes = list(overall.get(corpus) or sorted(counter))
        n = sum(counter.values())
        small = min(classes, key=lambda c: (counter[c], c))
        large = max(classes, key=lambda c: (counter[c], c))
        reference = [overall.get(corpus, {}).get(c, 0.0) for c in classes]
        shares = [counter[c] / n for c in classes]
        rows.append(
            {
                "corpus": corpus,
                "fold": fold,
                "split": split,
                "n_labelled": n,
                "smallest_class": small,
                "min_share": counter[small] / n,
                "imbalance_ratio": counter[large] / counter[small] if counter[small] else None,
                "divergence": float(jensenshannon(shares, reference, base=2)) if sum(reference) else None,
            }
        )
    return schemas.from_rows(rows, FOLD_BALANCE)


def representation(clips: pa.Table, attributes: tuple[str, ...] = DEMOGRAPHICS) -> pa.Table:
    """Per corpus and demographic attribute: each known group's count and share, with where the values came from."""
    rows = []
    corpora = clips["corpus"].to_pylist()
    for attribute in attributes:
        if attribute not in clips.column_names:
            continue
        values = clips[attribute].to_pylist()
        sources = clips[f"{attribute}_source"].to_pylist()
        for corpus in sorted(set(corpora)):
            idx = [i for i, c in enumerate(corpora) if c == corpus]
            known = [i for i in idx if values[i] is not None]
            if not known:
                continue  # attribute absent for this corpus: nothing to represent; the datasheet says so
            groups: dict[str, list[int]] = defaultdict(list)
            for i in known:
                groups[values[i]].append(i)
            for group, members in sorted(groups.items()):
                rows.append(
                    {
                        "corpus": corpus,
                        "attribute": attribute,
                        "group": group,
                        "sources": ",".join(sorted({sources[i] or "unrecorded" for i in members})),
                        "count": len(members),
                        "share": len(members) / len(known),
                        "n_unknown": len(idx) - len(known),
                    }
                )
    return schemas.from_rows(rows, REPRESENTATION)


def near_duplicates(clips: pa.Table) -> pa.Table:
    """Groups of clips from two or more corpora that share a decoded-frame hash."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for h, corpus, clip in zip(
        clips["frame_hash"].to_pylist(), clips["corpus"].to_pylist(), clips["clip_id"].to_pylist(), strict=True
    ):
        if h:
            groups[h].append((corpus, clip))
    rows = [
        {"frame_hash": h, "corpora": sorted({c for c, _ in members}), "clip_ids": sorted(i for _, i in members)}
        for h, members in sorted(groups.items())
        if len({c for c, _ in members}) > 1
    ]
    return schemas.from_rows(rows, NEAR_DUPLICATES)
