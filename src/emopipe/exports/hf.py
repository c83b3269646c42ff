"""The `hf` export: Parquet files a `datasets.load_dataset(DIR)` call loads as the fold's train and test splits.

Each file carries the Hugging Face features in its schema (the `huggingface` metadata `datasets` writes itself):
`label` a ClassLabel over the export's classes, `audio` an Audio feature at 16 kHz (the extracted mono track as
WAV), `frames` and `face_crops` sequences of JPEG images (the sampled frames and the aligned crops, a null crop where
no face was found), `video` the clip as a Video (its path, or its bytes with copy_media), and the log-mel, eGeMAPS,
frame indices and face boxes as plain sequences. `metadata` is the clip's row of the clips table as JSON.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emopipe.exports.base import Writer, dumps, metadata, wav_bytes
from emopipe.exports.plan import SPLIT_NAMES, Item

ROW_GROUP = 16  # rows per Parquet row group: bounded memory while writing and reading (frames are large)
SCALARS = (
    ("corpus", "string"), ("protocol", "string"), ("fold", "int16"), ("label_source", "string"),
    ("human_label", "string"), ("subject_id", "string"), ("gender", "string"), ("gender_source", "string"),
    ("age_group", "string"), ("age_group_source", "string"), ("media_path", "string"), ("media_form", "string"),
    ("duration_s", "float64"), ("license", "string"),
)  # fmt: skip


def features(classes: list[str]) -> Any:
    """The Hugging Face features of an hf export."""
    from datasets import Audio, ClassLabel, Features, Image, List, Value, Video

    box = {k: Value("float32") for k in ("x1", "y1", "x2", "y2", "score")}
    return Features(
        {
            "clip_id": Value("string"),
            "label": ClassLabel(names=classes),
            **{name: Value(dtype) for name, dtype in SCALARS},
            "audio": Audio(sampling_rate=16_000),
            "frames": List(Image()),
            "face_crops": List(Image()),
            "video": Video(),
            "frame_indices": List(Value("int32")),
            "face_boxes": List(box),
            "log_mel": List(List(Value("float32"))),
            "egemaps": List(Value("float32")),
            "metadata": Value("string"),
        }
    )


class HfWriter(Writer):
    """Writes data/<split>-NNNNN.parquet files of about shard_size_mb each."""

    columns = (
        "clip_id", "frame_indices", "frames_jpeg", "face_crops_jpeg", "face_boxes", "audio_pcm16", "log_mel",
        "egemaps",
    )  # fmt: skip

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.features = features(self.plan.classes)
        self.schema = self.features.arrow_schema
        self.buffer: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLIT_NAMES}
        self.open: dict[str, Any] = {}  # split -> (path, hashing file, ParquetWriter, items)

    def row(self, item: Item, feat: dict[str, Any] | None) -> dict[str, Any]:
        feat = feat or {}
        meta = item.meta
        frames = [{"bytes": b, "path": None} for b in feat.get("frames_jpeg") or []] or None
        crops = [None if b is None else {"bytes": b, "path": None} for b in feat.get("face_crops_jpeg") or []] or None
        pcm = feat.get("audio_pcm16")
        video = None
        if item.clip.media_form == "video" and meta.get("has_video") is not False:
            if self.options.copy_media:
                data = self.media_bytes(item)
                video = None if data is None else {"bytes": data, "path": pathlib.PurePath(item.clip.media_path).name}
            elif (path := self.media_path(item)) is not None:
                video = {"bytes": None, "path": path}
        return {
            "clip_id": item.clip.clip_id,
            "label": self.plan.classes.index(item.label) if item.label is not None else None,
            "corpus": item.clip.corpus,
            "protocol": self.plan.protocols[item.clip.corpus],
            "fold": self.plan.fold,
            "label_source": item.label_source,
            "human_label": item.human_label,
            **{k: meta.get(k) for k, _ in SCALARS if k in meta},
            "audio": None if pcm is None else {"bytes": wav_bytes(pcm), "path": f"{item.key}.wav"},
            "frames": frames,
            "face_crops": crops,
            "video": video,
            "frame_indices": feat.get("frame_indices"),
            "face_boxes": feat.get("face_boxes"),
            "log_mel": None if feat.get("log_mel") is None else feat["log_mel"].tolist(),
            "egemaps": feat.get("egemaps"),
            "metadata": dumps(metadata(item, self.plan)).decode(),
        }

    def add(self, item: Item, feat: dict[str, Any] | None) -> None:
        self.buffer[item.split].append(self.row(item, feat))
        if len(self.buffer[item.split]) >= ROW_GROUP:
            self._flush(item.split)

    def _flush(self, split: str) -> None:
        rows, self.buffer[split] = self.buffer[split], []
        if not rows and split in self.open:
            return
        if split not in self.open:
            n = len(self.stage.units(split))
            path = self.stage.temp(f"{split}-{n:05d}.parquet")
            from emopipe.exports.staging import HashingWriter

            fh = HashingWriter(path.open("wb"))
            # snappy, as datasets writes its own files: JPEG frames and crops do not compress, zstd only costs time
            self.open[split] = [path, fh, pq.ParquetWriter(fh, self.schema, compression="snappy"), 0, n]
        state = self.open[split]
        if rows:
            # the rows are already in the features' storage form (ClassLabel index, {bytes, path} for audio, images
            # and video): datasets' own encode_example would import torch to re-check the audio for nothing
            columns = {k: [r[k] for r in rows] for k in self.features}
            state[2].write_table(pa.Table.from_pydict(columns, schema=self.schema), row_group_size=ROW_GROUP)
            state[3] += len(rows)
        if state[1].size >= self.unit_bytes:
            self._commit(split)

    def _commit(self, split: str) -> None:
        path, fh, writer, items, n = self.open.pop(split)
        writer.close()
        fh.close()
        self.commit(split, items, {f"data/{split}-{n:05d}.parquet": path}, sha256=fh.sha.hexdigest(), bytes=fh.size)

    def close(self) -> tuple[dict[str, Any], dict[str, Any]]:
        for split in SPLIT_NAMES:
            if self.buffer[split] or split in self.open:
                self._flush(split)
            if split in self.open:
                self._commit(split)
        self.finish_problems()
        files = [
            {"path": rel, "rows": u["items"], "bytes": u["bytes"], "sha256": u["sha256"]}
            for split in SPLIT_NAMES
            for u in self.stage.units(split)
            for rel in u["files"]
        ]
        from emopipe.exports import card

        readme = card.export_readme(self.plan, self.options, self.ds, files)
        return {"files": files, "features": json.loads(json.dumps(self.features.to_dict()))}, {"README.md": readme}
