"""The `webdataset` export: shards the `webdataset` library streams through a torch DataLoader, every clip once."""

from __future__ import annotations

import hashlib
import io
import json
import wave

import numpy as np

from emopipe import splits
from emopipe.exports import api as exports


def _stream(urls: list[str], workers: int) -> list[dict]:
    import torch
    import webdataset as wds

    dataset = wds.WebDataset(urls, shardshuffle=False, workersplitter=wds.split_by_worker, empty_check=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    return list(loader)


def test_shards_stream_every_clip_once_with_two_workers(published, tmp_path):
    ds = published.dataset
    out = tmp_path / "wds"
    options = exports.Options(format="webdataset", out=out, protocol=splits.SUBJECT_KFOLD, fold=1,
                              shard_size_mb=0.2, progress=False)  # fmt: skip
    result = exports.export(ds, options, version=published.tag)
    index = json.loads((out / "index.json").read_text())
    assignment = splits.assignment(ds.splits, {"ravdess": splits.SUBJECT_KFOLD}, 1)
    labels = dict(zip(ds.fused_labels["clip_id"].to_pylist(), ds.fused_labels["train_label"].to_pylist(),
                      strict=True))  # fmt: skip
    for split in ("train", "test"):
        shards = index["splits"][split]["shards"]
        assert len(shards) >= 2  # so that both workers have shards to read
        for shard in shards:
            assert hashlib.sha256((out / shard["url"]).read_bytes()).hexdigest() == shard["sha256"]
        samples = _stream([str(out / s["url"]) for s in shards], workers=2)
        keys = [s["__key__"] for s in samples]
        assert len(keys) == len(set(keys)) == index["splits"][split]["samples"]
        meta = [json.loads(s["json"]) for s in samples]
        assert sorted(m["clip_id"] for m in meta) == sorted(c for c, s in assignment.items() if s == split)
        assert result.manifest["counts"][split]["clips"] == len(keys)
        for sample, m in zip(samples, meta, strict=True):
            assert m["split"] == split and m["label"] == labels[m["clip_id"]]
            assert index["classes"][m["label_index"]] == m["label"]
            mel = np.load(io.BytesIO(sample["npy"]))
            assert mel.dtype == np.float32 and mel.ndim == 2 and mel.shape[1] == 80
            with wave.open(io.BytesIO(sample["wav"])) as audio:
                assert (audio.getframerate(), audio.getnchannels()) == (16_000, 1)
            if m["clip"]["media_form"] == "video":
                assert sample["frame_00.jpg"][:2] == b"\xff\xd8"  # a JPEG frame
