"""The dataset card (README.md of the data repository): a Hugging Face card whose snippets load the fold they name,
and whose configs load every table of the version with `datasets`."""

from __future__ import annotations

import re

import yaml

from emopipe import schemas, splits, versioning
from emopipe.dataset import Dataset, DatasetWriter
from emopipe.exports import card
from tests.exports.test_splits import ravdess_clips


def _header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_card_is_a_dataset_card_of_this_version(published):
    text = (published.repo / "README.md").read_text()
    assert versioning.git(published.repo, "show", f"{published.tag}:README.md") == text  # committed with the tag
    head = _header(text)
    assert head["license"] == "cc-by-nc-sa-4.0" and head["size_categories"] == ["n<1K"]
    assert head["pretty_name"].startswith(f"emopipe emotion dataset {published.tag}")
    assert head["task_categories"] == ["video-classification", "audio-classification"]
    assert head["annotations_creators"] == ["machine-generated"]  # the demo's labels are its generator's
    assert head["source_datasets"] == ["original"] and "synthetic" in head["tags"]
    configs = {c["config_name"]: c for c in head["configs"]}
    assert head["configs"][0]["config_name"] == "clips" and head["configs"][0]["default"]
    # sharded tables list their (content-addressed) shards, so the configs change whenever a table does
    clips = published.dataset.files("clips")
    assert configs["clips"]["data_files"] == [f"dataset/clips/{p.name}" for p in clips]
    assert configs["train_labels"]["data_files"] == "dataset/fused_labels.parquet"
    for config in configs.values():
        files = config["data_files"] if isinstance(config["data_files"], list) else [config["data_files"]]
        assert all((published.repo / f).is_file() for f in files), config
    # the plain statement, before anything else is said about the data
    body = text.split("---\n", 2)[2]
    assert body.index("**This data is synthetic.**") < body.index("## What is in this version")
    assert "a tinted photograph panning" in body
    assert "Train on **`train_label`**" in body and "`train_label_source`" in body


def test_the_snippets_load_the_fold_they_name(published, monkeypatch):
    text = (published.repo / "README.md").read_text()
    fold, protocol = re.search(r"## Load fold (\d+) of `(\w+)`", text).groups()
    expected = next(
        r for r in splits.sizes(published.dataset.splits) if r["protocol"] == protocol and r["fold"] == int(fold)
    )
    assert expected["train"] and expected["test"]  # the example is a fold with both parts
    blocks = _python_blocks(text)
    assert len(blocks) == 3
    monkeypatch.chdir(published.repo)  # the snippets run from the root of a checkout
    arrow, frame, hf = {}, {}, {}
    exec(blocks[0], arrow)  # noqa: S102 - the card's own code, run as a reader would
    assert (arrow["train"].num_rows, arrow["test"].num_rows) == (expected["train"], expected["test"])
    assert set(arrow["train"].column_names) >= {"clip_id", "train_label", "media_path"}
    exec(blocks[1], frame)  # noqa: S102
    assert (len(frame["train"]), len(frame["test"])) == (expected["train"], expected["test"])
    exec(blocks[2], hf)  # noqa: S102
    assert hf["fold"].num_rows == expected["train"] + expected["test"]
    assert hf["labels"].features["train_label"].dtype == "string"


def test_every_table_of_the_version_loads_with_datasets(published):
    from datasets import List, load_dataset

    ds = published.dataset
    for config, table in (("clips", "clips"), ("train_labels", "fused_labels"), ("splits", "splits"),
                          ("labels", "labels"), ("agreement", "agreement"), ("lineage", "lineage"),
                          ("quarantine", "quarantine")):  # fmt: skip
        loaded = load_dataset(str(published.repo), config, split="train")
        assert loaded.num_rows == ds.rows(table), config
    clips = load_dataset(str(published.repo), "clips", split="train")
    assert isinstance(clips.features["label_votes"], List)  # the map columns, as lists of {key, value}
    assert set(clips.features["label_votes"].feature) == {"key", "value"}
    labels = load_dataset("parquet", data_files=str(published.repo / "dataset/labels/*.parquet"), split="train")
    probabilities = [schemas.as_dict(p) for p in labels["probabilities"] if p]
    assert probabilities and all(abs(sum(p.values()) - 1) < 1e-3 for p in probabilities)
    agreement = load_dataset("parquet", data_files=str(published.repo / "dataset/agreement.parquet"), split="train")
    assert all(schemas.as_dict(r) for r in agreement["per_class_recall"])


def _tiny_version(tmp_path, sources):
    """A dataset folder with RAVDESS clips and fused labels whose train_label_source are `sources`."""
    clips = ravdess_clips(range(1, 3))
    rows = [
        {"clip_id": c, "corpus": "ravdess", "human_label": lab if s == "human" else None,
         "train_label": lab if s != "none" else None, "train_label_source": s}
        for c, lab, s in zip(clips["clip_id"].to_pylist(), clips["label"].to_pylist(), sources, strict=False)
    ]  # fmt: skip
    with DatasetWriter(tmp_path / "ds", corpora={"ravdess": str(tmp_path)}) as writer:
        writer.write_table("clips", clips)
        writer.write_table("quarantine", schemas.QUARANTINE.empty_table())
        writer.write_table("splits", splits.build(clips))
        writer.write_table("fused_labels", schemas.from_rows(rows, schemas.load_schema("fused_labels")))
        writer.commit()
    return Dataset.open(tmp_path / "ds")


def test_model_labels_make_the_annotations_machine_generated(tmp_path):
    record = {"version": "v7", "params": {"label_clips": {"fusion_labeler": "fer", "min_confidence": 0.8}}}
    sources = ["human"] * 10 + ["model"] * 4 + ["none"] * 2
    ds = _tiny_version(tmp_path, sources)
    head = card.header(ds, record, "dataset")
    assert head["annotations_creators"] == ["expert-generated", "machine-generated"]
    assert head["source_datasets"] == ["extended|ravdess"] and "synthetic" not in head["tags"]
    text = card.dataset_card(ds, {**record, "published_at": "2026-12-01", "run_id": "r", "code_version": "0",
                                  "dataset_digest": ds.digest, "params_sha256": "p"})  # fmt: skip
    assert "synthetic" not in text.lower().split("## what is in this version")[0]
    assert "(4 clips, machine-generated)" in text


def test_a_hostile_value_is_text_in_the_card(tmp_path):
    ds = _tiny_version(tmp_path, ["human"] * 16)
    hostile = "clips.warning: label=<script>alert(1)</script>"
    record = {"version": "v1", "published_at": "x", "run_id": "r", "code_version": "0", "dataset_digest": "d",
              "params_sha256": "p", "gate": {"warnings": [hostile]}}  # fmt: skip
    text = card.dataset_card(ds, record)
    assert "<script>" not in text and "&lt;script>" in text
    assert isinstance(_header(text), dict)
