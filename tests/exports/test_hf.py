"""The `hf` export: `datasets.load_dataset(DIR)` gives the fold's train and test splits with typed features."""

from __future__ import annotations

import hashlib
import json

from emopipe import schemas, splits
from emopipe.exports import api as exports


def _sizes(ds, protocol: str, fold: int) -> dict[str, int]:
    row = next(r for r in splits.sizes(ds.splits) if r["protocol"] == protocol and r["fold"] == fold)
    return {"train": row["train"], "test": row["test"]}


def test_load_dataset_gives_the_fold_with_typed_features(published, tmp_path, decodes_video):
    from datasets import Audio, ClassLabel, List, Video, load_dataset

    ds = published.dataset
    options = exports.Options(format="hf", out=tmp_path / "hf", protocol=splits.LOAO, fold=1, progress=False)
    result = exports.export(ds, options, version=published.tag)
    loaded = load_dataset(str(tmp_path / "hf"))
    assert set(loaded) == {"train", "test"}
    assert {s: loaded[s].num_rows for s in loaded} == _sizes(ds, splits.LOAO, 1)  # every clip here is labelled
    features = loaded["train"].features
    assert isinstance(features["label"], ClassLabel)
    assert features["label"].names == schemas.taxonomy().classes("ravdess") == result.manifest["classes"]
    assert isinstance(features["audio"], Audio) and features["audio"].sampling_rate == 16_000
    assert isinstance(features["frames"], List) and isinstance(features["video"], Video)
    train_labels = dict(zip(ds.fused_labels["clip_id"].to_pylist(), ds.fused_labels["train_label"].to_pylist(),
                            strict=True))  # fmt: skip
    subjects = dict(zip(ds.clips["clip_id"].to_pylist(), ds.clips["subject_id"].to_pylist(), strict=True))
    forms = dict(zip(ds.clips["clip_id"].to_pylist(), ds.clips["media_form"].to_pylist(), strict=True))
    for split, actor in (("train", "ravdess:actor_02"), ("test", "ravdess:actor_01")):  # fold 1 tests actor 1
        part = loaded[split]
        assert {subjects[c] for c in part["clip_id"]} == {actor}
        names = [features["label"].int2str(i) for i in part["label"]]
        assert names == [train_labels[c] for c in part["clip_id"]]
    row = next(r for r in loaded["test"] if forms[r["clip_id"]] == "video")
    audio = row["audio"].get_all_samples()
    assert audio.sample_rate == 16_000 and audio.data.shape[-1] > 0
    assert row["frames"] and row["frames"][0].size[0] > 0  # decoded JPEG frames
    assert len(row["log_mel"][0]) == 80
    assert row["video"].metadata.num_frames > 0  # the clip itself, decoded from its path
    assert json.loads(row["metadata"])["clip_id"] == row["clip_id"]
    audio_only = next(r for r in loaded["test"] if forms[r["clip_id"]] == "audio")
    assert audio_only["video"] is None and audio_only["audio"] is not None


def test_copy_media_embeds_the_clips_bytes(published, tmp_path, decodes_video):
    from datasets import Video, load_dataset

    ds = published.dataset
    options = exports.Options(format="hf", out=tmp_path / "hf", protocol=splits.LOAO, fold=2, copy_media=True,
                              progress=False)  # fmt: skip
    exports.export(ds, options, version=published.tag)
    part = load_dataset(str(tmp_path / "hf"), split="test").cast_column("video", Video(decode=False))
    sha = dict(zip(ds.clips["clip_id"].to_pylist(), ds.clips["sha256"].to_pylist(), strict=True))
    videos = [(r["clip_id"], r["video"]) for r in part if r["video"] is not None]
    assert videos
    for clip_id, video in videos:
        assert hashlib.sha256(video["bytes"]).hexdigest() == sha[clip_id]


def test_two_exports_in_folders_of_the_same_name_load_their_own_rows(published, tmp_path):
    """`datasets` caches a folder by its name and configs: each export's config is its own, so no stale rows."""
    from datasets import load_dataset

    ds = published.dataset
    loaded = {}
    for fold in (1, 2):
        out = tmp_path / f"run{fold}" / "hf"
        exports.export(ds, exports.Options(format="hf", out=out, protocol=splits.LOAO, fold=fold, progress=False),
                       version=published.tag)  # fmt: skip
        loaded[fold] = set(load_dataset(str(out), split="test")["clip_id"])
    assert loaded[1] and loaded[2] and not loaded[1] & loaded[2]  # fold 1 tests actor 1, fold 2 actor 2
