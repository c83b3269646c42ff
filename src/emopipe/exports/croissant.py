"""Croissant metadata (`croissant.json`, JSON-LD, MLCommons Croissant 1.1 with its Responsible-AI vocabulary) of a
published version.

The record sets describe the version's actual Parquet files: a sharded table (clips, features, labels, lineage)
is a FileSet whose `includes` is `<table>/*.parquet`, a single-file table a FileObject with its sha256; every
column of the table's schema (schemas/<table>.yaml) is a field with its type and doc, lists as arrays, lists of
structs (and the stored maps) with sub-fields. The RAI fields are filled from what the pipeline knows: collection
and annotation per corpus (emopipe.exports.facts; a synthetic corpus by its generator), the labelers with their
versions as machine annotation tools, the gate's warnings and the bias audit as known biases, the preprocessing
of the stages that ran, the personal data (faces and voices are biometric), and intended and prohibited uses.

Nothing here imports mlcroissant: publishing (the Airflow image) writes the file, and `mlcroissant` (the export
extra) validates and reads it (`mlcroissant validate --jsonld croissant.json`, tests/exports).
"""

from __future__ import annotations

import hashlib
import pathlib
import re
from collections import Counter
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.dataset import Dataset, schema_of
from emopipe.exports.facts import INTENDED_USES, MAINTENANCE, PERSONAL, PROHIBITED_USES, SOCIAL_IMPACT, corpus_fact

FILE = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
PARQUET = "application/x-parquet"
KEYS = {
    "clips": ["clip_id"], "features": ["clip_id"], "extraction": ["clip_id"], "fused_labels": ["clip_id"],
    "lineage": ["clip_id"], "labels": ["clip_id", "labeler"], "splits": ["clip_id", "protocol", "fold"],
    "agreement": ["corpus", "labeler"],
}  # fmt: skip
# Columns of JPEG bytes per element (images) and of raw PCM (audio); other binary columns are bytes.
IMAGES = {"frames_jpeg", "face_crops_jpeg"}
AUDIO = {"audio_pcm16"}
SCALAR_TYPES = (
    (pa.types.is_boolean, "sc:Boolean"), (pa.types.is_int8, "cr:Int8"), (pa.types.is_int16, "cr:Int16"),
    (pa.types.is_int32, "cr:Int32"), (pa.types.is_int64, "cr:Int64"), (pa.types.is_float32, "cr:Float32"),
    (pa.types.is_float64, "cr:Float64"), (pa.types.is_timestamp, "sc:DateTime"), (pa.types.is_string, "sc:Text"),
    (pa.types.is_binary, "sc:Text"),
)  # fmt: skip


def _scalar(typ: pa.DataType) -> str:
    for test, name in SCALAR_TYPES:
        if test(typ):
            return name
    raise ValueError(f"no Croissant data type for {typ}")


def _source(file_id: str, shards: bool, column: str, json_path: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"fileSet" if shards else "fileObject": {"@id": file_id}, "extract": {"column": column}}
    if json_path:
        source["transform"] = {"jsonPath": json_path}
    return source


def field(record_set: str, f: pa.Field, file_id: str, shards: bool) -> dict[str, Any]:
    """The Croissant field of one column."""
    doc = (f.metadata or {}).get(b"doc", b"").decode()
    out: dict[str, Any] = {"@type": "cr:Field", "@id": f"{record_set}/{f.name}", "name": f.name}
    if doc:
        out["description"] = doc
    typ = f.type
    if f.name in IMAGES and pa.types.is_list(typ):
        # one JPEG per element; mlcroissant 1.1 decodes images of a `repeated` field, not of an `isArray` one
        return {**out, "dataType": "sc:ImageObject", "repeated": True, "source": _source(file_id, shards, f.name)}
    if f.name in AUDIO:
        return {**out, "dataType": "sc:AudioObject", "source": _source(file_id, shards, f.name)}
    if pa.types.is_list(typ):
        inner = typ.value_type
        if pa.types.is_struct(inner):  # a list of structs (and a stored map): one sub-field per struct field
            subs = [
                {
                    "@type": "cr:Field",
                    "@id": f"{record_set}/{f.name}/{sub.name}",
                    "name": sub.name,
                    "dataType": _scalar(sub.type),
                    "source": _source(file_id, shards, f.name, sub.name),
                }
                for sub in inner
            ]
            return {**out, "isArray": True, "arrayShape": "-1", "subField": subs}
        if pa.types.is_list(inner):
            return {**out, "dataType": _scalar(inner.value_type), "isArray": True, "arrayShape": "-1,-1",
                    "source": _source(file_id, shards, f.name)}  # fmt: skip
        return {**out, "dataType": _scalar(inner), "isArray": True, "arrayShape": "-1",
                "source": _source(file_id, shards, f.name)}  # fmt: skip
    return {**out, "dataType": _scalar(typ), "source": _source(file_id, shards, f.name)}


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def distribution(ds: Dataset, base: str) -> tuple[list[dict[str, Any]], dict[str, tuple[str, bool]]]:
    """The file objects and file sets of the version's tables; table -> (their @id, whether a FileSet)."""
    out, ids = [], {}
    for name, entry in sorted(ds.manifest.get("tables", {}).items()):
        if "shards" in entry:
            file_id = f"{name}-shards"
            out.append({
                "@type": "cr:FileSet", "@id": file_id, "name": file_id,
                "description": f"the {name} table: {entry['rows']} rows in {len(entry['shards'])} content-addressed "
                f"Parquet shards (schema version {entry.get('schema_version', '?')})",
                "encodingFormat": PARQUET, "includes": f"{base}/{name}/*.parquet",
            })  # fmt: skip
            ids[name] = (file_id, True)
        else:
            file_id = entry["file"]
            out.append({
                "@type": "cr:FileObject", "@id": file_id, "name": file_id,
                "description": f"the {name} table: {entry['rows']} rows (schema version "
                f"{entry.get('schema_version', '?')})",
                "contentUrl": f"{base}/{entry['file']}", "encodingFormat": PARQUET,
                "sha256": _sha256(ds.path / entry["file"]),
            })  # fmt: skip
            ids[name] = (file_id, False)
    return out, ids


def record_sets(ds: Dataset, ids: dict[str, tuple[str, bool]]) -> list[dict[str, Any]]:
    """One record set per table (every column a field) and the emotion classes, inline."""
    tax = schemas.taxonomy()
    classes = {
        "@type": "cr:RecordSet", "@id": "emotion_classes", "name": "emotion_classes",
        "description": "The canonical emotion classes (schemas/taxonomy.yaml); every label column holds one of them.",
        "key": {"@id": "emotion_classes/name"},
        "field": [
            {"@type": "cr:Field", "@id": "emotion_classes/name", "name": "name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": "emotion_classes/basic7", "name": "basic7", "dataType": "sc:Boolean",
             "description": "one of the 7 basic classes (label_basic7)"},
            {"@type": "cr:Field", "@id": "emotion_classes/negative", "name": "negative", "dataType": "sc:Boolean",
             "description": "a negative emotion (the bias audit's negative-prediction rate)"},
        ],
        "data": [
            {"emotion_classes/name": c, "emotion_classes/basic7": c in tax.basic7,
             "emotion_classes/negative": c in tax.negative}
            for c in tax.canonical
        ],
    }  # fmt: skip
    out = [classes]
    for name, (file_id, shards) in ids.items():
        schema = schema_of(name)
        entry: dict[str, Any] = {
            "@type": "cr:RecordSet",
            "@id": name,
            "name": name,
            "description": schemas.table_doc(_schema_name(name)),
            "field": [field(name, f, file_id, shards) for f in schema],
        }
        if name in KEYS:
            entry["key"] = [{"@id": f"{name}/{k}"} for k in KEYS[name]]
        out.append(entry)
    return out


def _schema_name(table: str) -> str:
    from emopipe.dataset import SCHEMA_OF

    return SCHEMA_OF.get(table, table)


def rai(ds: Dataset, record: dict[str, Any]) -> dict[str, Any]:
    """The Croissant RAI fields, from the version's tables, its gate and its lineage."""
    clips = ds.clips
    synthetic = ds.synthetic
    corpora = sorted(set(clips["corpus"].to_pylist()))

    def per_corpus(key: str) -> list[str]:
        return [f"{corpus_fact(c, 'name', synthetic)}: {corpus_fact(c, key, synthetic)}" for c in corpora]

    fused = ds.fused_labels
    sources = Counter(fused["train_label_source"].to_pylist()) if fused is not None else Counter()
    params = record.get("params") or {}
    label_cfg = params.get("label_clips") or {}
    extract_cfg = params.get("extract_features") or {}
    labelers = record.get("stages", {}).get("labelers") or (
        sorted(set(ds.column_table("labels", ["labeler"])["labeler"].to_pylist())) if ds.has("labels") else []
    )
    tools = [f"{name} (emopipe labeler name@version: model weights checksum, prompt where there is one)"
             for name in labelers]  # fmt: skip
    extraction = ", ".join(record.get("stages", {}).get("extractor_versions") or []) or "none"
    biases = [
        "Acted (RAVDESS) and film (DFEW, MAFW) expressions are more intense and stereotyped than everyday ones.",
        "Demographic attributes are partly derived (RAVDESS gender from the actor number) or estimated by models; "
        "their source is in the *_source columns, and the bias audit (reports/bias_report.html) tests label and "
        "model dependence on them where they are known.",
    ]
    gate = record.get("gate") or {}
    biases += [f"Quality gate warning: {w}" for w in gate.get("warnings") or []]
    limitations = [
        "Near-duplicates across corpora are found from the first decoded frame's hash and the bytes only: copies "
        "cut at another start frame are missed (reports/split_leaks.parquet, reports/near_duplicates.parquet).",
        f"{ds.quarantine.num_rows} inputs were refused and are listed in the quarantine table with a reason code.",
    ]
    limitations += [f"Corpus {c} is synthetic: {t}" for c, t in sorted(synthetic.items())]
    preprocessing = (
        f"Media stay where they are (paths relative to each corpus root). Every file was probed with FFmpeg (PyAV); "
        f"extraction ({extraction}) sampled {extract_cfg.get('n_frames', '?')} frames uniformly (shorter side "
        f"{extract_cfg.get('frame_size', '?')} px), detected and aligned the face in each "
        f"({extract_cfg.get('face_detector', '?')}, {extract_cfg.get('crop_size', '?')} px crops), resampled the "
        "audio to 16 kHz mono and computed an 80-bin log-mel spectrogram and the 88 eGeMAPSv02 functionals "
        "(openSMILE). Native labels were mapped to canonical classes (schemas/taxonomy.yaml), keeping the native one."
    )
    return {
        "rai:dataCollection": " ".join(per_corpus("collection")),
        "rai:dataCollectionType": sorted({corpus_fact(c, "collection_type", synthetic) for c in corpora}),
        "rai:dataCollectionRawData": "The corpora as they ship: "
        + "; ".join(f"{c} ({corpus_fact(c, 'citation', synthetic)})" for c in corpora),
        "rai:dataPreprocessingProtocol": preprocessing,
        "rai:dataManipulationProtocol": "Clips of subjects on the forget register are removed before anything "
        f"reads them ({record.get('forgotten_subjects', 0)} subjects registered); unreadable or contradictory "
        "inputs go to the quarantine table with a reason code; nothing is dropped silently.",
        "rai:dataImputationProtocol": "None: unknown values (labels, demographics) stay null, never guessed.",
        "rai:dataAnnotationProtocol": " ".join(per_corpus("annotation"))
        + f" The label to train on is fused_labels.train_label: the human label where there is one, else the "
        f"label of {label_cfg.get('fusion_labeler', 'the fusion labeler')} when its confidence is at least "
        f"{label_cfg.get('min_confidence', '?')} (train_label_source: human {sources.get('human', 0)}, model "
        f"{sources.get('model', 0)}, none {sources.get('none', 0)} clips).",
        "rai:dataAnnotationPlatform": "Human labels: the corpora's own annotation (see their papers); model labels: "
        "emopipe's label_clips stage on a Ray actor pool.",
        "rai:dataAnnotationAnalysis": _agreement_text(ds),
        "rai:annotationsPerItem": "; ".join(per_corpus("annotators_per_item")),
        "rai:annotatorDemographics": "Not recorded by emopipe; see the corpora's papers.",
        "rai:machineAnnotationTools": tools or ["none"],
        "rai:dataBiases": biases,
        "rai:dataLimitations": limitations,
        "rai:dataUseCases": INTENDED_USES + [f"Not for: {u}" for u in PROHIBITED_USES],
        "rai:dataSocialImpact": SOCIAL_IMPACT,
        "rai:personalSensitiveInformation": PERSONAL,
        "rai:dataReleaseMaintenancePlan": MAINTENANCE,
    }


def _agreement_text(ds: Dataset) -> str:
    if not ds.has("agreement"):
        return "No model labels in this version."
    rows = [r for r in ds.agreement.to_pylist() if r["corpus"] != "ALL"]
    return "Model labels against the human labels (agreement table): " + "; ".join(
        f"{r['labeler']} on {r['corpus']}: WAR {r['war']:.3f}, UAR {r['uar']:.3f}, coverage {r['coverage']:.2f} "
        f"over {r['n_clips']} clips"
        for r in rows
    )


def version_number(tag: str) -> str:
    """A Croissant version (MAJOR.MINOR.PATCH) from a tag such as v3."""
    digits = re.findall(r"\d+", tag)
    return f"{digits[-1]}.0.0" if digits else "0.0.0"


def build(ds: Dataset, record: dict[str, Any], *, base: str = "dataset", root: pathlib.Path | None = None) -> dict:
    """The croissant.json of a published version.

    Args:
        ds: the version's dataset folder.
        record: its lineage record (lineage.json).
        base: the dataset folder relative to where croissant.json is written.
        root: where croissant.json is written (its URL).
    """
    from emopipe.exports.facts import LICENSE_URLS, hf_license

    clips = ds.clips
    synthetic = ds.synthetic
    corpora = sorted(set(clips["corpus"].to_pylist()))
    texts = sorted(set(clips["license"].to_pylist()))
    licence = hf_license(texts)
    files, ids = distribution(ds, base)
    names = ", ".join(corpus_fact(c, "name", synthetic) for c in corpora)
    description = (
        f"emopipe dataset version {record['version']}: {clips.num_rows} clips of {names}, with canonical emotion "
        "labels (the label to train on: fused_labels.train_label), splits per corpus protocol, sampled frames, "
        "face crops, 16 kHz audio, log-mel and eGeMAPS features, model labels and their agreement with the humans."
    )
    if synthetic:
        description += " SYNTHETIC: " + "; ".join(f"{c}: {t}" for c, t in sorted(synthetic.items()))
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": f"emopipe-{record['version']}",
        "description": description,
        "version": version_number(record["version"]),
        "datePublished": str(record.get("published_at", ""))[:10] or None,
        "license": [LICENSE_URLS[licence["license"]]] if licence["license"] in LICENSE_URLS else texts,
        "url": (pathlib.Path(root).resolve().as_uri() if root else "https://github.com/emopipe"),
        "citeAs": " ".join(corpus_fact(c, "citation", synthetic) for c in corpora),
        "creator": {"@type": "sc:Organization", "name": "emopipe"},
        "keywords": ["emotion recognition", "affective computing", "facial expression", "speech emotion"],
        "isLiveDataset": False,
        "distribution": files,
        "recordSet": record_sets(ds, ids),
        **rai(ds, record),
    }
    return {k: v for k, v in doc.items() if v is not None}
