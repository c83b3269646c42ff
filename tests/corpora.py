"""Small corpora in the real DFEW, MAFW and footage layouts, with real media, for tests.

Each clip's picture is an 8x8 block pattern of its own (so clips differ and a clip's frame hash survives
re-encoding and resizing); every clip id gets one test fold, as the published 5-fold protocols do.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from emopipe.demo import write_mp4

DFEW_NAMES = {1: "Happy", 2: "Sad", 3: "Neutral", 4: "Angry", 5: "Surprise", 6: "Disgust", 7: "Fear"}
MAFW_CLASSES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
                "helplessness", "disappointment"]  # fmt: skip


def pattern_frames(seed: int, size: int = 32, n: int = 4) -> np.ndarray:
    blocks = np.random.default_rng(seed).integers(0, 2, size=(8, 8)) * 200 + 25
    img = np.kron(blocks, np.ones((size // 8, size // 8)))[..., None].repeat(3, axis=2).astype(np.uint8)
    return np.stack([img] * n)


def clip_media(path: pathlib.Path, seed: int, audio: bool = True, size: int = 32) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = (0.2 * np.sin(np.arange(19200) * 2 * np.pi * (200 + seed) / 48000)).astype(np.float32) if audio else None
    write_mp4(path, pattern_frames(seed, size), 10, tone)
    return path


def _xlsx(path: pathlib.Path, rows: list[list]) -> None:
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)


def make_dfew(
    root: pathlib.Path,
    *,
    n: int = 20,
    naming: str = "EmoLabel",
    padded: bool = True,
    frames_for: tuple[int, ...] = (),
    unsplit: tuple[int, ...] = (),
) -> dict:
    """Clips 1..n (label (i % 7) + 1, test fold (i % 5) + 1) in Clip/original/part_*; `frames_for` get a frame folder
    instead of a video; `unsplit` are in no split file. Returns the expected facts."""
    folds: dict[int, dict[str, list[tuple[int, int]]]] = {k: {"train": [], "test": []} for k in range(1, 6)}
    for i in range(1, n + 1):
        if i in frames_for:
            folder = root / "Clip" / "clip_224x224" / f"{i:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            import av

            for j, img in enumerate(pattern_frames(i), start=1):
                with av.open(str(folder / f"{j}.jpg"), "w") as out:
                    s = out.add_stream("mjpeg", rate=1)
                    s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuvj420p"
                    out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
                    out.mux(s.encode(None))
        else:
            clip_media(root / "Clip" / "original" / f"part_{(i % 11) + 1}" / f"{i:05d}.mp4", seed=i)
        if i in unsplit:
            continue
        label, test = (i % 7) + 1, (i % 5) + 1
        for k in range(1, 6):
            folds[k]["test" if k == test else "train"].append((i, label))
    for k, parts in folds.items():
        for split, rows in parts.items():
            if naming == "EmoLabel":
                path = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)" / f"set_{k}.csv"
            else:
                path = root / "label" / f"single_{split}set_{k}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            names = [f"{i:05d}" if padded else str(i) for i, _ in rows]
            path.write_text(
                "video_name,label\n" + "".join(f"{v},{lab}\n" for v, (_, lab) in zip(names, rows, strict=True))
            )
    votes = [["order", "1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7fear"]]
    for i in range(1, n + 1):
        v = [0] * 7
        v[i % 7] = 8
        v[(i + 1) % 7] = 2
        votes.append([i, *v])
    _xlsx(root / "Annotation" / "annotation.xlsx", votes)
    return {"folds": {k: (len(p["train"]), len(p["test"])) for k, p in folds.items()}, "n": n}


def make_mafw(
    root: pathlib.Path,
    ids: list[int],
    id_order: list[str] | None = None,
    no_audio: tuple[int, ...] = (),
    copy_from: dict[int, pathlib.Path] | None = None,
) -> dict:
    """MAFW clips data/clips/<id>.mp4; clip j-th gets class MAFW_CLASSES[j % 11] and test fold (j % 5) + 1.
    The spreadsheet numbers classes in `id_order` (default: a permuted order no repository uses)."""
    id_order = id_order or MAFW_CLASSES[::-1]
    copy_from = copy_from or {}
    labels = {}
    for j, i in enumerate(ids):
        dest = root / "data" / "clips" / f"{i:05d}.mp4"
        if i in copy_from:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(copy_from[i].read_bytes())
        else:
            clip_media(dest, seed=1000 + i, audio=i not in no_audio)
        labels[i] = MAFW_CLASSES[j % 11]
    base = root / "Train & Test Set"
    for k in range(1, 6):
        for split in ("train", "test"):
            chosen = [(j, i) for j, i in enumerate(ids) if ((j % 5) + 1 == k) == (split == "test")]
            plain = base / "single" / "no_caption" / f"set_{k}" / f"{split}.txt"
            plain.parent.mkdir(parents=True, exist_ok=True)
            plain.write_text("".join(f"{i:05d}.mp4 {labels[i]}\n" for _, i in chosen))
            caption = base / "single" / "with_caption" / f"set_{k}" / f"{split}.txt"
            caption.parent.mkdir(parents=True, exist_ok=True)
            text = "".join(
                f"{i:05d}.mp4\t{labels[i]}\t一个人看起来{labels[i]}\tA person looks {labels[i]}\n" for _, i in chosen
            )
            caption.write_bytes(text.encode("gbk"))
            compound = base / "compound" / "no_caption" / f"set_{k}" / f"{split}.txt"
            compound.parent.mkdir(parents=True, exist_ok=True)
            compound.write_text(
                "".join(f"{i:05d}.mp4 {labels[i]}_surprise\n" for _, i in chosen if labels[i] != "surprise")
            )
    sheet = [["MAFW single-label set"]] + [[f"{i:05d}.mp4", id_order.index(labels[i]) + 1] for i in ids]
    _xlsx(root / "Labels" / "single-set.xlsx", sheet)
    return {"labels": labels}


def make_footage(root: pathlib.Path) -> dict:
    """Two folders of clips with a JSON sidecar, a folder annotations.csv, and an exact duplicate."""
    a = clip_media(root / "2026-11-01" / "cam1" / "a.mp4", seed=501)
    clip_media(root / "2026-11-01" / "cam1" / "b.mkv", seed=502)
    clip_media(root / "2026-11-02" / "c.mov", seed=503)
    (root / "2026-11-02" / "copy_of_a.mp4").write_bytes(a.read_bytes())
    (root / "2026-11-01" / "cam1" / "a.json").write_text(
        json.dumps(
            {
                "transcription": "I did not expect that",
                "language": "en",
                "age": "30-39",
                "gender": "Female",
                "accent": "Scottish",
                "arousal": 7,
                "valence": -2,
                "emotions": ["surprised", "angry"],
                "audio_quality": "good",
            }
        )
    )
    (root / "2026-11-01" / "cam1" / "annotations.csv").write_text(
        "path,gender,arousal,emotions,speaker\nb.mkv,male,3,happy,spk-2\n"
    )
    return {"a": a}


def index_frames(n: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """n frames whose grey level encodes their index (frame i is 8*i + 4 everywhere), to check which were read."""
    w, h = size
    return np.stack([np.full((h, w, 3), 8 * i + 4, dtype=np.uint8) for i in range(n)])


def face_frames(n: int = 12, size: tuple[int, int] = (192, 144)) -> np.ndarray:
    """n frames panning slowly across scikit-image's astronaut photograph (a real face), resized to `size`."""
    import cv2
    from skimage import data

    photo = data.astronaut()  # 512x512 RGB; the face is around x 150-230, y 70-170
    frames = []
    for i in range(n):
        x0 = 40 + 4 * i
        window = photo[20 : 20 + 300, x0 : x0 + 400]
        frames.append(cv2.resize(window, size, interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def tone(seconds: float, hz: float = 440.0, rate: int = 48_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def broken_audio_clip(path: pathlib.Path, frames: np.ndarray, fps: int = 10) -> pathlib.Path:
    """A Matroska file with a good H.264 track and an AAC track whose packets are random bytes."""
    import av

    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        aac = out.add_stream("aac", rate=48_000, layout="mono")
        for img in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
        rng = np.random.default_rng(0)
        for i in range(40):
            packet = av.Packet(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
            packet.stream, packet.pts, packet.dts = aac, i * 1024, i * 1024
            out.mux(packet)
    return path


def truncated_clip(path: pathlib.Path, frames: np.ndarray, fps: int = 10) -> pathlib.Path:
    """An MP4 with its index up front (faststart), cut in half: it opens, then decoding fails half-way."""
    import av

    full = path.with_name(path.name + ".full")
    with av.open(str(full), mode="w", format="mp4", options={"movflags": "faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for img in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def audio_only_mp4(path: pathlib.Path, seconds: float = 1.0, rate: int = 16_000) -> pathlib.Path:
    """An .mp4 holding only an AAC track (what a phone's voice memo or an export without video gives)."""
    import av

    signal = (0.2 * np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 220 / rate)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, signal.size, 1024):
            frame = av.AudioFrame.from_ndarray(signal[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def undecodable_long_clip(
    path: pathlib.Path, seconds: float, fps: int = 25, size: tuple[int, int] = (32, 32)
) -> pathlib.Path:
    """A Matroska file whose metadata says `seconds` long (frames of `size`) but whose packets are random bytes.

    Nothing in it can be decoded, so a probe that answers anything but unreadable_media for it decided from
    the container's metadata alone.
    """
    from fractions import Fraction

    import av

    with av.open(str(path), mode="w") as out:
        video = out.add_stream("mjpeg", rate=fps)  # its encoder opens at any size FFmpeg allows (up to ~16k)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuvj420p"
        rng = np.random.default_rng(0)
        step = fps * 60
        for pts in [*range(0, int(seconds * fps), step), int(seconds * fps) - 1]:
            packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
            packet.stream, packet.pts, packet.dts, packet.time_base = video, pts, pts, Fraction(1, fps)
            out.mux(packet)
    return path


def long_clip(
    path: pathlib.Path, seconds: float, fps: int = 10, size: tuple[int, int] = (64, 48), rate: int = 48_000
) -> pathlib.Path:
    """An H.264 + AAC MP4 of `seconds`, written a second at a time (memory flat however long the clip is).

    The picture is index_frames' grey ramp (wrapping), the sound a 440 Hz tone: real streams every decoder reads.
    """
    import av

    w, h = size
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "ultrafast", "threads": "1"}
        audio = out.add_stream("aac", rate=rate, layout="mono")
        t = np.arange(rate, dtype=np.float64) / rate
        second = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(int(np.ceil(seconds))):
            for i in range(fps):
                img = np.full((h, w, 3), (8 * (s * fps + i)) % 256, dtype=np.uint8)
                out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            for start in range(0, rate, 1024):
                frame = av.AudioFrame.from_ndarray(second[None, start : start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = rate, s * rate + start
                out.mux(audio.encode(frame))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return path
