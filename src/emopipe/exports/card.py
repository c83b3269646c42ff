"""The dataset card of a published version (the data repository's README.md, a Hugging Face dataset card) and the
README of an export folder, rendered from jinja2 templates (src/emopipe/templates/card*.md.j2).

Python computes the context from the version's tables and lineage; the templates lay it out. The YAML header is
built as data and dumped with PyYAML, so no value can break it. Every other value is rendered through
`md_safe`, so a sidecar value such as `<script>` is text in the card, never markup.
"""

from __future__ import annotations

import functools
import pathlib
import re
from collections import Counter
from typing import Any

import yaml

from emopipe import schemas
from emopipe import splits as protocols
from emopipe.dataset import Dataset
from emopipe.exports.facts import (
    ENCODINGS,
    INTENDED_USES,
    MAINTENANCE,
    PERSONAL,
    PROHIBITED_USES,
    SOCIAL_IMPACT,
    corpus_fact,
    hf_license,
)

TEMPLATES = pathlib.Path(__file__).resolve().parents[1] / "templates"
CARD = "README.md"
# Tables a trainer loads, as card configs, in this order (the first is the default config).
CONFIGS = (
    ("clips", "one row per clip: media path, human labels, demographics, probe"),
    ("train_labels", "fused_labels: THE label to train on (train_label) and where it came from"),
    ("splits", "train/test per clip, protocol and fold"),
    ("features", "sampled frames, face crops, 16 kHz audio, log-mel, eGeMAPS (large)"),
    ("labels", "every model's label per clip, with probabilities and rationale"),
    ("agreement", "models against the human labels: WAR, UAR, kappa"),
    ("quarantine", "inputs that were refused, with a reason code"),
    ("lineage", "per clip: source checksum, stage and model versions, first version"),
)
TABLE_OF = {"train_labels": "fused_labels"}


class Raw(str):
    """Template text that is already safe (the YAML header): not passed through md_safe."""


def md_safe(value: Any) -> str:
    """Text for Markdown: '<' before a letter, '/', '!' or '?' becomes '&lt;', so no value opens an HTML tag."""
    if isinstance(value, Raw):
        return str(value)
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", "" if value is None else str(value))


def md_cell(value: Any) -> str:
    """A Markdown table cell: safe text without pipes or line breaks."""
    return md_safe(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


@functools.cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=md_safe,
    )
    env.filters["cell"] = md_cell
    return env


def render(name: str, context: dict[str, Any]) -> str:
    return _environment().get_template(name).render(**context)


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def data_files(ds: Dataset, table: str, base: str) -> list[str] | str | None:
    """The data_files of a table, relative to the card: its shards by name, or its single file.

    Shards are named by their content, so the list changes whenever the table does: `datasets` caches a local
    folder's configs by their data_files patterns (not the files' bytes), and a glob would let a checkout of the
    next version, in a folder of the same name, load this version's rows from the cache.
    """
    if not ds.has(table):
        return None
    if (parts := ds.shards(table)) is not None:
        return [f"{base}/{table}/{s.name}" for s in parts] or f"{base}/{table}/*.parquet"
    return f"{base}/{ds.table_entry(table)['file']}"


def _info(ds: Dataset, config: str, table: str) -> dict[str, Any]:
    """The dataset_info of a config: the bytes of its files (they enter datasets' cache key too)."""
    return {"config_name": config, "download_size": sum(p.stat().st_size for p in ds.files(table))}


def header(ds: Dataset, record: dict[str, Any], base: str) -> dict[str, Any]:
    """The YAML header of the card."""
    clips = ds.clips
    corpora = sorted(set(clips["corpus"].to_pylist()))
    synthetic = ds.synthetic
    fused = ds.fused_labels
    sources = Counter(fused["train_label_source"].to_pylist()) if fused is not None else Counter()
    creators = {corpus_fact(c, "annotations_creators", synthetic) for c in corpora}
    if sources.get("model"):
        creators.add("machine-generated")
    languages = sorted({lang for c in corpora for lang in corpus_fact(c, "language", synthetic)})
    tasks = ["video-classification"] + (["audio-classification"] if any(clips["has_audio"].to_pylist()) else [])
    tags = ["emotion-recognition", "affective-computing", "facial-expression-recognition", "emopipe"]
    if synthetic:
        tags.append("synthetic")
    configs, infos = [], []
    for name, _ in CONFIGS:
        if (files := data_files(ds, TABLE_OF.get(name, name), base)) is not None:
            configs.append({"config_name": name, "data_files": files, **({"default": True} if not configs else {})})
            infos.append(_info(ds, name, TABLE_OF.get(name, name)))
    out: dict[str, Any] = {
        **hf_license(sorted(set(clips["license"].to_pylist())) or ["unknown"]),
        "pretty_name": f"emopipe emotion dataset {record['version']} ({', '.join(_names(corpora, synthetic))})",
        "size_categories": [size_category(clips.num_rows)],
        "task_categories": tasks,
        "annotations_creators": sorted(creators),
        "source_datasets": sorted(
            "original" if (c in synthetic or c == "footage") else f"extended|{c}" for c in corpora
        ),
        "tags": tags,
        "configs": configs,
        "dataset_info": infos,
    }
    if languages:
        out["language"] = languages
    return out


def _names(corpora: list[str], synthetic: dict[str, str]) -> list[str]:
    return [corpus_fact(c, "name", synthetic) for c in corpora]


def context(ds: Dataset, record: dict[str, Any], base: str = "dataset") -> dict[str, Any]:
    """Everything the card says, computed from the version's tables and its lineage record."""
    clips = ds.clips
    synthetic = ds.synthetic
    corpora = sorted(set(clips["corpus"].to_pylist()))
    fused = ds.fused_labels
    label_counts: dict[str, Counter] = {}
    if fused is not None:
        for corpus, label in zip(fused["corpus"].to_pylist(), fused["train_label"].to_pylist(), strict=True):
            label_counts.setdefault(corpus, Counter())[label or "(none)"] += 1
    sources = Counter(fused["train_label_source"].to_pylist()) if fused is not None else Counter()
    human = Counter(c for c, lab in zip(clips["corpus"].to_pylist(), clips["label"].to_pylist(), strict=True) if lab)
    n_clips = Counter(clips["corpus"].to_pylist())
    params = record.get("params") or {}
    label_cfg = params.get("label_clips") or {}
    split_table = ds.splits if ds.has("splits") else None
    split_rows, example = [], None
    if split_table is not None and split_table.num_rows:
        split_rows = protocols.sizes(split_table)
        # the example: the most preferred protocol with a fold whose train and test parts both hold clips
        rank = {p: i for i, p in enumerate(protocols.PREFERRED)}
        usable = sorted(
            (r for r in split_rows if r["train"] and r["test"]),
            key=lambda r: (rank.get(r["protocol"], len(rank)), r["fold"], r["corpus"]),
        )
        if usable:
            example = {"protocol": usable[0]["protocol"], "fold": usable[0]["fold"], "corpus": usable[0]["corpus"]}
    agreement = ds.agreement.to_pylist() if ds.has("agreement") else []
    gate = record.get("gate") or {}
    quarantine = Counter(ds.quarantine["reason"].to_pylist())
    leaks = _leaks(ds)
    tables = [
        {
            "name": name,
            "path": f"{base}/{name}/" if "shards" in entry else f"{base}/{entry['file']}",
            "rows": entry["rows"],
            "version": entry.get("schema_version", "?"),
            "doc": _doc(name),
        }
        for name, entry in sorted(ds.manifest.get("tables", {}).items())
    ]
    reports = [p for p in ("datasheet.md", "bias_report.html", "split_leaks.parquet", "near_duplicates.parquet")
               if (ds.path / "reports" / p).is_file()]  # fmt: skip
    return {
        "header": Raw(yaml.safe_dump(header(ds, record, base), sort_keys=False, allow_unicode=True)),
        "version": record["version"],
        "record": record,
        "base": base,
        "synthetic": [{"corpus": c, "text": t} for c, t in sorted(synthetic.items())],
        "corpora": [
            {
                "corpus": c,
                "name": corpus_fact(c, "name", synthetic),
                "clips": n_clips[c],
                "human": human.get(c, 0),
                "license": ", ".join(
                    sorted(
                        {
                            lic
                            for k, lic in zip(clips["corpus"].to_pylist(), clips["license"].to_pylist(), strict=True)
                            if k == c
                        }
                    )
                ),  # fmt: skip
                "collection": corpus_fact(c, "collection", synthetic),
                "annotation": corpus_fact(c, "annotation", synthetic),
                "citation": corpus_fact(c, "citation", synthetic),
            }
            for c in corpora
        ],
        "n_clips": clips.num_rows,
        "n_quarantined": ds.quarantine.num_rows,
        "quarantine": dict(sorted(quarantine.items())),
        "classes": [
            {"corpus": c, "counts": ", ".join(f"{k} {v}" for k, v in sorted(label_counts.get(c, {}).items()))}
            for c in corpora
        ],
        "sources": {k: sources.get(k, 0) for k in ("human", "model", "none")},
        "fusion_labeler": label_cfg.get("fusion_labeler"),
        "min_confidence": label_cfg.get("min_confidence"),
        "labelers": sorted(set(ds.column_table("labels", ["labeler"])["labeler"].to_pylist()))
        if ds.has("labels")
        else [],
        "agreement": [a for a in agreement if a["corpus"] != "ALL" or len(corpora) == 1],
        "tables": tables,
        "splits": split_rows,
        "protocol_docs": protocols.PROTOCOLS,
        "example": example,
        "encodings": ENCODINGS,
        "gate_warnings": gate.get("warnings") or [],
        "leaks": leaks,
        "reports": reports,
        "forgotten": record.get("forgotten_subjects", 0),
        "intended": INTENDED_USES,
        "prohibited": PROHIBITED_USES,
        "social": SOCIAL_IMPACT,
        "personal": PERSONAL,
        "maintenance": MAINTENANCE,
    }


def _leaks(ds: Dataset) -> dict[str, int]:
    path = ds.path / "reports" / "split_leaks.parquet"
    if not path.is_file():
        return {}
    import pyarrow.parquet as pq

    return dict(sorted(Counter(pq.read_table(path, columns=["kind"])["kind"].to_pylist()).items()))


def _doc(table: str) -> str:
    """The first sentence of a table's doc in schemas/."""
    from emopipe.dataset import SCHEMA_OF

    try:
        text = schemas.table_doc(SCHEMA_OF.get(table, table))
    except FileNotFoundError:
        return ""
    return text.split(". ")[0].rstrip(".") + "." if text else ""


def dataset_card(ds: Dataset, record: dict[str, Any], base: str = "dataset") -> str:
    """The README.md of the data repository at a version: a Hugging Face dataset card."""
    return render("card.md.j2", context(ds, record, base))


def write(repo: pathlib.Path, ds: Dataset, record: dict[str, Any]) -> list[pathlib.Path]:
    """Write README.md (the card) and croissant.json into the data repository's root; return their paths."""
    from emopipe import io
    from emopipe.exports.croissant import FILE as CROISSANT_FILE
    from emopipe.exports.croissant import build as build_croissant

    repo = pathlib.Path(repo)
    card = repo / CARD
    tmp = repo / f".{CARD}.tmp"
    tmp.write_text(dataset_card(ds, record), encoding="utf-8")
    tmp.replace(card)
    meta = io.write_json(repo / CROISSANT_FILE, build_croissant(ds, record, base="dataset", root=repo))
    return [card, meta]


def options_key(options: Any, plan: Any) -> str:
    """A short hash of what an export holds and how (its plan and options)."""
    import hashlib
    import json

    text = json.dumps(
        [plan.digest(), options.format, options.copy_media, options.shard_size_mb, sorted(plan.protocols.items())]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def export_readme(plan: Any, options: Any, ds: Dataset, files: list[dict[str, Any]]) -> str:
    """The README.md of an export folder (for hf, a card whose configs name the split files)."""
    from emopipe.exports.plan import counts

    head = None
    if options.format == "hf":
        # `datasets` caches a folder's data under its name and these configs (the patterns, not the files): a config
        # name of this very export keeps two exports in folders of the same name from reading each other's cache
        rows = Counter()
        for f in files:
            rows[f["path"].split("/")[-1].split("-")[0]] += f["rows"]
        present = [s for s in ("train", "test") if rows[s]]  # datasets cannot load a split without rows
        head = {
            "configs": [
                {
                    "config_name": f"emopipe_{options_key(options, plan)}",
                    "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in present],
                }
            ],
            "dataset_info": {"download_size": sum(f["bytes"] for f in files)},
            "pretty_name": f"emopipe export ({', '.join(sorted(plan.protocols.values()))}, fold {plan.fold})",
        }
        head.update(hf_license(sorted({i.meta.get("license") or "unknown" for i in plan.all_items()}) or ["unknown"]))
    return render(
        "card_export.md.j2",
        {
            "header": Raw(yaml.safe_dump(head, sort_keys=False, allow_unicode=True)) if head else None,
            "format": options.format,
            "plan": plan,
            "counts": counts(plan),
            "classes": plan.classes,
            "left_out": dict(sorted(plan.left_out.items())),
            "synthetic": [{"corpus": c, "text": t} for c, t in sorted(ds.synthetic.items())],
            "copy_media": options.copy_media,
            "files": files,
        },
    )
