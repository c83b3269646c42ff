"""The `webdataset` export: tar shards per split that the `webdataset` library streams into a torch DataLoader.

A sample per clip, keyed by its clip id made safe for a file name: `<key>.json` (labels, split, protocol and the
clip's metadata), `<key>.wav` (the extracted 16 kHz mono audio), `<key>.npy` (the log-mel, float32 [frames, 80]),
`<key>.frame_NN.jpg` (the sampled frames) and `<key>.crop_NN.jpg` (the aligned face crop of frame NN, where a face
was found), and with copy_media the media itself as `<key>.media.<ext>` (frame folders: `<key>.media_NNN.<ext>`).
Shards are `<split>/shard-NNNNNN.tar`, closed at about shard_size_mb; `index.json` lists each shard with its
samples, bytes and sha256, and the label classes. Tar members carry a fixed mtime, so the same export gives the
same bytes.
"""

from __future__ import annotations

import pathlib
from typing import Any

from emopipe.exports.base import Writer, dumps, metadata, npy_bytes, wav_bytes
from emopipe.exports.plan import SPLIT_NAMES, Item
from emopipe.exports.staging import HashingWriter

INDEX = "index.json"


class TarShard:
    """A WebDataset shard: members `<key>.<field>` in sample order, as webdataset's TarWriter writes them, in GNU
    tar format with a fixed mtime (the same export, the same bytes). Each member is its header block (the standard
    library's TarInfo.tobuf), its bytes and the padding to 512; tarfile's own writer copies every member through a
    stream buffer and webdataset 1.0.2's TarWriter gives every member a PAX header (it takes a `format` and does not
    use it), which together cost as much as the rest of a shard of small JPEGs.

    Args:
        fh: the binary file the shard is written to.
    """

    BLOCK = 512

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, sample: dict[str, Any]) -> None:
        import tarfile

        key = sample["__key__"]
        for name, data in sample.items():
            if name.startswith("__"):
                continue
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "bigdata", "bigdata"
            self.fh.write(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
            self.fh.write(data)
            if pad := -len(data) % self.BLOCK:
                self.fh.write(b"\0" * pad)

    def close(self) -> None:
        self.fh.write(b"\0" * (2 * self.BLOCK))  # the end-of-archive marker: two zero blocks


class WebDatasetWriter(Writer):
    """Writes <split>/shard-NNNNNN.tar files of about shard_size_mb each."""

    columns = (
        "clip_id", "frame_indices", "frame_times_s", "frames_jpeg", "face_crops_jpeg", "face_boxes", "face_share",
        "audio_pcm16", "log_mel", "egemaps",
    )  # fmt: skip

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open: dict[str, Any] = {}  # split -> [path, hashing file, TarWriter, samples, n, first key, last key]

    def sample(self, item: Item, feat: dict[str, Any] | None) -> dict[str, Any]:
        feat = feat or {}
        extra = {k: feat.get(k) for k in ("frame_indices", "frame_times_s", "face_boxes", "face_share", "egemaps")}
        out: dict[str, Any] = {"__key__": item.key}
        for i, jpeg in enumerate(feat.get("frames_jpeg") or []):
            out[f"frame_{i:02d}.jpg"] = jpeg
        for i, jpeg in enumerate(feat.get("face_crops_jpeg") or []):
            if jpeg is not None:
                out[f"crop_{i:02d}.jpg"] = jpeg
        if (pcm := feat.get("audio_pcm16")) is not None:
            out["wav"] = wav_bytes(pcm)
        if feat.get("log_mel") is not None:
            out["npy"] = npy_bytes(feat["log_mel"])
        if self.options.copy_media:
            self._media(item, out)
        # last: a media file found changed while being read is recorded in the metadata too
        out["json"] = dumps(metadata(item, self.plan, extra))
        return out

    def _media(self, item: Item, out: dict[str, Any]) -> None:
        if item.clip.media_form == "frames":
            if item.media_problem:
                return
            folder = self.roots[item.clip.corpus] / item.clip.media_path
            for i, image in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
                out[f"media_{i:03d}{image.suffix.lower()}"] = image.read_bytes()
            return
        data = self.media_bytes(item)
        if data is not None:
            out[f"media{pathlib.PurePath(item.clip.media_path).suffix.lower() or '.bin'}"] = data

    def add(self, item: Item, feat: dict[str, Any] | None) -> None:
        split = item.split
        if split not in self.open:
            n = len(self.stage.units(split))
            path = self.stage.temp(f"{split}-shard-{n:06d}.tar")
            fh = HashingWriter(path.open("wb"))
            self.open[split] = [path, fh, TarShard(fh), 0, n, item.key, item.key]
        state = self.open[split]
        sample = self.sample(item, feat)
        state[2].write(sample)
        state[3] += 1
        state[6] = item.key
        if state[1].size >= self.unit_bytes:
            self._commit(split)

    def _commit(self, split: str) -> None:
        path, fh, writer, samples, n, first, last = self.open.pop(split)
        writer.close()
        if not fh.closed:
            fh.close()
        rel = f"{split}/shard-{n:06d}.tar"
        self.commit(split, samples, {rel: path}, sha256=fh.sha.hexdigest(), bytes=fh.size, first=first, last=last)

    def close(self) -> tuple[dict[str, Any], dict[str, Any]]:
        for split in SPLIT_NAMES:
            if split in self.open:
                self._commit(split)
        self.finish_problems()
        shards = {
            split: [
                {"url": u["files"][0], "samples": u["items"], "bytes": u["bytes"], "sha256": u["sha256"],
                 "first_key": u["first"], "last_key": u["last"]}
                for u in self.stage.units(split)
            ]
            for split in SPLIT_NAMES
        }  # fmt: skip
        index = {
            "format": "webdataset",
            "classes": self.plan.classes,
            "splits": {s: {"samples": sum(x["samples"] for x in v), "shards": v} for s, v in shards.items()},
            "sample": {
                "json": "labels (label, label_index, label_source, human_label), split, protocol, fold, clip metadata",
                "wav": "16 kHz mono int16 audio (extracted)",
                "npy": "log-mel, float32 [frames, 80] (25 ms window, 10 ms hop)",
                "frame_NN.jpg": "sampled frame NN",
                "crop_NN.jpg": "aligned face crop of frame NN (absent where no face was found)",
                "media.<ext>": "the clip's media file (copy_media only)",
            },
        }
        from emopipe.exports import card

        files = [x for v in shards.values() for x in v]
        readme = card.export_readme(self.plan, self.options, self.ds, files)
        return {"shards": shards}, {INDEX: index, "README.md": readme}
