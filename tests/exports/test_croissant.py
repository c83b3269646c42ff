"""croissant.json of a published version: valid Croissant 1.1 (`mlcroissant validate`), records load from the
version's own Parquet files, and the Responsible-AI fields say what the pipeline knows."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from emopipe import versioning


def test_mlcroissant_validates_the_metadata(published):
    path = published.repo / "croissant.json"
    assert json.loads(versioning.git(published.repo, "show", f"{published.tag}:croissant.json")) == json.loads(
        path.read_text()
    )
    cli = pathlib.Path(sys.executable).parent / "mlcroissant"
    proc = subprocess.run([str(cli), "validate", "--jsonld", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Done." in proc.stderr


def test_records_load_from_every_record_set(published):
    import mlcroissant as mlc

    doc = mlc.Dataset(jsonld=str(published.repo / "croissant.json"))
    issues = doc.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    ds = published.dataset
    for table in ("clips", "splits", "fused_labels", "labels", "features", "quarantine", "agreement"):
        records = list(doc.records(table))
        assert len(records) == ds.rows(table), table
    clip = next(iter(doc.records("clips")))
    assert clip["clips/clip_id"].decode().startswith("ravdess:") and clip["clips/license"]
    fused = {r["fused_labels/clip_id"].decode(): r for r in doc.records("fused_labels")}
    assert {r["fused_labels/train_label_source"].decode() for r in fused.values()} <= {"human", "model", "none"}
    feature = next(r for r in doc.records("features") if r["features/frames_jpeg"])
    frame = feature["features/frames_jpeg"][0]
    assert frame.size[0] > 0  # a decoded image (PIL)
    assert len(feature["features/log_mel"][0]) == 80
    label = next(iter(doc.records("labels")))
    entry = {"labels/probabilities/key", "labels/probabilities/value"}
    assert all(entry <= set(p) for p in label["labels/probabilities"])  # a stored map: key/value sub-fields
    assert {r["emotion_classes/name"] for r in doc.records("emotion_classes")} >= {"neutral", "calm"}  # inline


def test_rai_fields_say_what_the_pipeline_knows(published):
    doc = json.loads((published.repo / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    files = {d["@id"]: d for d in doc["distribution"]}
    assert files["clips-shards"]["@type"] == "cr:FileSet"
    assert files["clips-shards"]["includes"] == "dataset/clips/*.parquet"
    assert files["splits.parquet"]["sha256"] and files["splits.parquet"]["contentUrl"] == "dataset/splits.parquet"
    lineage = versioning.lineage(published.repo, published.tag)
    tools = " ".join(doc["rai:machineAnnotationTools"])
    assert all(name in tools for name in lineage["stages"]["labelers"])  # the labelers, with their versions
    assert "Synthetic" in " ".join(doc["rai:dataCollectionType"])
    assert "Generated, not recorded" in doc["rai:dataCollection"]
    assert "biometric" in doc["rai:personalSensitiveInformation"]
    uses = " ".join(doc["rai:dataUseCases"])
    assert "Article 5(1)(f)" in uses and "workplace" in uses
    assert any(w in " ".join(doc["rai:dataBiases"]) for w in lineage["gate"]["warnings"][:1])
    assert "train_label" in doc["rai:dataAnnotationProtocol"]
    assert doc["version"] == "1.0.0" and doc["name"] == f"emopipe-{published.tag}"
