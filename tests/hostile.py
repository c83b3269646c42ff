"""Hostile corpora: each reader's real layout with a few good clips of known labels, and beside them every kind of
bad input we could think of, each with the quarantine reason(s) it must get.

`make_hostile(reader, root)` writes one and returns a `Hostile`: what a scan of it (and then the probe) must give.
The kinds fall in three families:
- the file system (`_filesystem`): FIFOs, sockets, broken, looping and self symlinks, symlinks to /dev/zero, to a
  clip or a folder outside the root, folders named like clips, zero-byte files, names that are not UTF-8 or hold
  newlines, tabs, escapes, DEL or a bidi override, very long names, files that vanish or are replaced mid-scan;
- the media (`_media`, found by the probe): truncated files, text renamed to .mp4, a 0.1 s clip, a 2 fps clip,
  a clip whose metadata says 30 minutes and whose packets are noise;
- the corpus's own files: names off the grammar, split / label / annotation files with a BOM, CRLF, NUL bytes,
  blank lines, repeated headers, folds outside 1..5, labels with trailing spaces, not UTF-8, huge fields, ragged
  rows; spreadsheets with formulas, error cells, booleans and absurd numbers; JSON that is a list, deeply nested,
  has huge numbers, NaN / Infinity, duplicate keys, lone surrogates; Parquet with wrong column types; markup as a
  demographic value; sidecars and rows for files that do not exist; Unicode-normalisation and case duplicates.
Real media comes from tests/corpora.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emopipe.demo import write_mp4, write_wav
from emopipe.sources.base import MAX_PATH_CHARS, printable
from tests.corpora import MAFW_CLASSES, _xlsx, clip_media, index_frames, pattern_frames, tone, undecodable_long_clip

READERS = ("ravdess", "dfew", "mafw", "footage")
# the names `_filesystem` asks a reader for (plus "vanish" and "replaced", in a folder processed late)
FS_TAGS = ["fifo", "sock", "dangling", "self", "loop1", "loop2", "zero", "outside", "dir", "dirlink", "empty",
           "latin1", "bytes", "nl", "tab", "esc", "del", "bidi", "zwsp", "locked"]  # fmt: skip


@dataclass
class Hostile:
    """What a scan of a hostile corpus must give.

    Args:
        root: the corpus root.
        good: media_path -> clip columns it must have (a good clip, kept exactly once with these labels).
        probe: media_path -> reasons the probe must give (kept by ingest: only decoding can tell).
        bad: one (quarantine path, allowed reasons) per quarantine row the scan must write.
        kinds: every kind of bad input planted, for messages.
        during_scan: the `progress` callback that makes files vanish or change once the scan has begun.
    """

    root: pathlib.Path
    good: dict[str, dict[str, Any]] = field(default_factory=dict)
    probe: dict[str, set[str]] = field(default_factory=dict)
    bad: list[tuple[str, set[str]]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    during_scan: Callable[[int], None] | None = None
    _vanish: list[pathlib.Path] = field(default_factory=list)
    _replace: list[pathlib.Path] = field(default_factory=list)
    _relink: list[tuple[pathlib.Path, pathlib.Path]] = field(default_factory=list)

    def expect(self, rel: str, *reasons: str, kind: str) -> None:
        """One quarantine row at `rel` (as the OS spells it) with one of `reasons`."""
        self.bad.append((printable(rel, MAX_PATH_CHARS), set(reasons)))
        self.kinds.append(kind)

    def arm(self) -> None:
        """Build `during_scan`: on its first call, the planted victims vanish, are replaced or re-pointed."""
        fired = False

        def progress(_: int) -> None:
            nonlocal fired
            if fired:
                return
            fired = True
            for path in self._vanish:
                path.unlink()
            for path in self._replace:
                tmp = path.with_name("." + path.name + ".new")
                tmp.write_bytes(b"other bytes entirely")
                os.replace(tmp, path)  # a new inode under the old name
            for link, target in self._relink:
                tmp = link.with_name("." + link.name + ".new")
                os.symlink(target, tmp)
                os.replace(tmp, link)

        self.during_scan = progress


def _write(path: pathlib.Path, data: bytes = b"x") -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _raw_name(folder: pathlib.Path, name: bytes, data: bytes = b"x") -> None:
    """A file whose name is raw bytes (not necessarily UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.close(fd)


def _socket(path: pathlib.Path) -> None:
    """A Unix socket at `path` (bound from inside its folder: socket paths are limited to ~108 bytes)."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(here)


def _filesystem(h: Hostile, folder: str, name: Callable[[str], str], outside: pathlib.Path, late: str) -> None:
    """Plant the file-system kinds in `folder` (relative to the root); `name(tag)` gives a name the reader would
    accept there, and `late` a folder (or name prefix) processed after the good clips, for the mid-scan victims."""
    base = h.root / folder
    base.mkdir(parents=True, exist_ok=True)
    rel = (folder + "/") if folder else ""
    good_clip = clip_media(outside / "secret.mp4", seed=999)

    os.mkfifo(base / name("fifo"))
    h.expect(rel + name("fifo"), "not_a_file", kind="FIFO named like a clip")
    _socket(base / name("sock"))
    h.expect(rel + name("sock"), "not_a_file", kind="Unix socket named like a clip")
    os.symlink("no-such-target.mp4", base / name("dangling"))
    h.expect(rel + name("dangling"), "broken_symlink", kind="symlink to nothing")
    os.symlink(name("self"), base / name("self"))
    h.expect(rel + name("self"), "broken_symlink", kind="symlink to itself")
    os.symlink(name("loop2"), base / name("loop1"))
    os.symlink(name("loop1"), base / name("loop2"))
    h.expect(rel + name("loop1"), "broken_symlink", kind="symlink loop")
    h.expect(rel + name("loop2"), "broken_symlink", kind="symlink loop")
    os.symlink("/dev/zero", base / name("zero"))
    h.expect(rel + name("zero"), "unsafe_path", kind="symlink to /dev/zero")
    os.symlink(good_clip, base / name("outside"))
    h.expect(rel + name("outside"), "unsafe_path", kind="symlink to a clip outside the root")
    os.symlink(outside, base / "linked-folder")
    h.expect(rel + "linked-folder", "unsafe_path", kind="symlink to a folder outside the root")
    os.symlink(os.path.relpath(outside, base), base / "relative-escape")
    h.expect(rel + "relative-escape", "unsafe_path", kind="relative symlink climbing out of the root")
    (base / name("dir")).mkdir()
    h.expect(rel + name("dir"), "not_a_file", kind="folder named like a clip")
    os.symlink(h.root, base / name("dirlink"))
    h.expect(rel + name("dirlink"), "not_a_file", kind="symlink named like a clip to a folder inside the root")
    _write(base / name("empty"), b"")
    h.expect(rel + name("empty"), "empty_file", kind="zero-byte clip")

    _raw_name(base, b"caf\xe9-" + os.fsencode(name("latin1")))
    h.expect(rel + os.fsdecode(b"caf\xe9-" + os.fsencode(name("latin1"))), "bad_name", kind="name not UTF-8")
    _raw_name(base, b"\xff\xfe" + os.fsencode(name("bytes")))
    h.expect(rel + os.fsdecode(b"\xff\xfe" + os.fsencode(name("bytes"))), "bad_name", kind="name of raw bytes")
    for tag, char in [("nl", "\n"), ("tab", "\t"), ("esc", "\x1b[31m"), ("del", "\x7f"), ("bidi", "\u202e")]:
        _write(base / (name(tag) + char + ".mp4"))
        h.expect(rel + name(tag) + char + ".mp4", "bad_name", kind=f"name with {tag}")
    _write(base / (name("zwsp").replace(".", "\u200b.", 1)))
    h.expect(rel + name("zwsp").replace(".", "\u200b.", 1), "bad_name", kind="name with a zero-width space")
    if os.geteuid() != 0:  # root reads everything
        locked = _write(base / name("locked"))
        locked.chmod(0)
        h.expect(rel + name("locked"), "unreadable_file", kind="permission denied")

    lbase = h.root / late
    lrel = late + "/"
    gone = clip_media(lbase / name("vanish"), seed=998)
    h._vanish.append(gone)
    h.expect(lrel + name("vanish"), "file_changed", kind="clip that vanishes mid-scan")
    swapped = clip_media(lbase / name("replaced"), seed=997)
    h._replace.append(swapped)
    h.expect(lrel + name("replaced"), "file_changed", kind="clip replaced by another file mid-scan")


def _media(h: Hostile, folder: str, name: Callable[[str], str]) -> None:
    """Media only decoding can judge: kept by ingest, refused by the probe with its reason."""
    base = h.root / folder
    rel = (folder + "/") if folder else ""
    whole = clip_media(base / name("truncated"), seed=77)
    whole.write_bytes(whole.read_bytes()[:300])  # a download cut short
    h.probe[rel + name("truncated")] = {"unreadable_media"}
    _write(base / name("text"), b"this is a text file someone renamed to .mp4\n" * 4)
    h.probe[rel + name("text")] = {"unreadable_media"}
    write_mp4(base / name("short"), index_frames(1, (32, 32)), 10, None)
    h.probe[rel + name("short")] = {"too_short"}
    write_mp4(base / name("slow"), index_frames(8, (32, 32)), 2, None)
    h.probe[rel + name("slow")] = {"fps_out_of_range"}
    undecodable_long_clip(base / name("long"), 1800)
    h.probe[rel + name("long")] = {"too_long"}
    undecodable_long_clip(base / name("huge"), 2, size=(9000, 9000))
    h.probe[rel + name("huge")] = {"frame_too_large"}


# ---------------------------------------------------------------------------------------------------- RAVDESS


def make_ravdess(root: pathlib.Path) -> Hostile:
    h = Hostile(root)
    outside = root.parent / (root.name + "-outside")
    a1 = root / "Actor_01"
    good = {
        "Actor_01/01-01-03-01-01-01-01.mp4": "happiness",
        "Actor_01/02-01-04-01-01-01-01.mp4": "sadness",  # video-only: no audio track
        "Actor_01/03-01-05-01-01-01-01.wav": "anger",
        "Actor_02/01-02-06-01-01-01-02.mp4": "fear",  # song
        "Actor_02/01-01-02-02-02-02-02.MP4": "calm",  # upper-case extension
        "Actor_02/01-01-08-01-01-01-02.mp4": "surprise",
    }
    for i, (rel, label) in enumerate(good.items()):
        path = root / rel
        if rel.endswith(".wav"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, tone(0.5, hz=200 + 10 * i))
        else:
            clip_media(path, seed=i, audio=not rel.split("/")[1].startswith("02-"))
        h.good[rel] = {"label": label, "native_id": pathlib.PurePosixPath(rel).stem}
    data = (root / "Actor_01/01-01-03-01-01-01-01.mp4").read_bytes()
    names = {
        "Actor_01/01-01-09-01-01-01-01.mp4": ("code_out_of_range", "emotion code 09"),
        "Actor_01/01-01-03-01-01-01-25.mp4": ("code_out_of_range", "actor 25"),
        "Actor_01/01-01-01-02-01-01-01.mp4": ("invalid_combination", "strong neutral"),
        "Actor_01/01-02-07-01-01-01-01.mp4": ("invalid_combination", "sung disgust"),
        "Actor_01/03-01-03-02-01-01-01.mp4": ("modality_mismatch", "audio-only code in an .mp4"),
        "Actor_01/01-01-03-01-01-01-01.avi": ("unsupported_extension", ".avi"),
        "Actor_01/01-01-03-02-01-01-02.mp4": ("folder_mismatch", "actor 02 inside Actor_01"),
        "extra/01-01-03-01-01-01-01.mp4": ("duplicate_id", "the same id in another folder"),
        "Actor_01/readme.txt": ("bad_name", "a text file"),
        "Actor_01/01-01-03-01-01-01-01.mp4.part": ("bad_name", "a partial download"),
        "Actor_01/01-01-03-01-01-01-01 (copy).mp4": ("bad_name", "a copy's name"),
        "Actor_01/٠١-01-03-01-01-01-01.mp4": ("bad_name", "Arabic-Indic digits"),
        "Actor_01/01-01-03-01-01-01-0１.mp4": ("bad_name", "a full-width digit"),
        "Actor_01/01-01-03-01-01-01-01 .mp4": ("bad_name", "a space before the extension"),
        "Actor_01/" + "01-" * 80 + "01.mp4": ("bad_name", "a 245-character name"),
    }
    for rel, (reason, kind) in names.items():
        _write(root / rel, data)
        h.expect(rel, reason, kind=kind)
    # the bug the issue names: a newline before the extension
    _write(a1 / "01-01-03-01-01-01-01\n.mp4", data)
    h.expect("Actor_01/01-01-03-01-01-01-01\n.mp4", "bad_name", kind="newline before the extension")
    (root / "Actor_03").mkdir()
    (root / "Actor_03" / "01-01-03-01-01-01-03.wav").mkdir()
    h.expect("Actor_03/01-01-03-01-01-01-03.wav", "not_a_file", kind="folder named like a .wav")
    _write(a1 / ".DS_Store", b"hidden files are skipped, not quarantined")
    os.link(root / "Actor_01/01-01-03-01-01-01-01.mp4", root / "Actor_02/01-01-03-01-01-01-02.mp4")
    h.expect("Actor_02/01-01-03-01-01-01-02.mp4", "duplicate_content", kind="a hard link under another id")

    def clip_name(tag: str) -> str:
        i = [*FS_TAGS, "vanish", "replaced"].index(tag)
        emotion, statement, repetition = 2 + i % 7, 1 + (i // 7) % 2, 1 + (i // 14) % 2
        actor = 24 if tag in {"vanish", "replaced"} else 1
        return f"01-01-{emotion:02d}-02-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"  # strong: no good clip is

    _filesystem(h, "Actor_01", clip_name, outside, late="Actor_24")

    def media_name(tag: str) -> str:
        i = ["truncated", "text", "short", "slow", "long", "silent", "huge"].index(tag)
        return f"01-01-{2 + i:02d}-01-01-01-03.mp4"

    _media(h, "Actor_03", media_name)
    write_mp4(root / "Actor_03" / media_name("silent"), pattern_frames(3, size=32, n=4), 10, None)
    h.probe["Actor_03/" + media_name("silent")] = {"modality_mismatch"}  # audio-visual code, no audio track
    h.arm()
    return h


# ---------------------------------------------------------------------------------------------------- DFEW


def make_dfew(root: pathlib.Path) -> Hostile:
    h = Hostile(root)
    outside = root.parent / (root.name + "-outside")
    labels = {1: "Happy", 2: "Sad", 3: "Neutral", 4: "Angry", 5: "Surprise", 6: "Disgust", 7: "Fear"}
    canonical = {1: "happiness", 2: "sadness", 3: "neutral", 4: "anger", 5: "surprise", 6: "disgust", 7: "fear"}
    ids = list(range(1, 11))
    for i in ids:
        rel = f"Clip/original/part_{1 + i % 3}/{i:05d}.mp4"
        clip_media(root / rel, seed=i)
        h.good[rel] = {"label": canonical[1 + i % 7], "native_id": f"{i:05d}", "test_fold": 1 + i % 5}
    # a frame folder clip (no video), with a FIFO and a zero-byte image beside its frames
    frames = root / "Clip" / "clip_224x224" / "00011"
    import av

    for j, img in enumerate(pattern_frames(11), start=1):
        with av.open(str(_write(frames / f"{j}.jpg", b"")), "w") as out:
            s = out.add_stream("mjpeg", rate=1)
            s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuvj420p"
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(s.encode(None))
    h.good["Clip/clip_224x224/00011"] = {"label": canonical[1 + 11 % 7], "native_id": "00011", "test_fold": 2}
    ids.append(11)
    os.mkfifo(frames / "9.jpg")
    h.expect("Clip/clip_224x224/00011/9.jpg", "not_a_file", kind="FIFO among a frame folder's images")
    _write(frames / "10.jpg", b"")
    h.expect("Clip/clip_224x224/00011/10.jpg", "empty_file", kind="zero-byte image in a frame folder")
    _write(frames / "Thumbs.db")
    h.expect("Clip/clip_224x224/00011/Thumbs.db", "unsupported_extension", kind="non-image in a frame folder")
    _write(root / "Clip" / "clip_224x224" / "00012")
    h.expect("Clip/clip_224x224/00012", "not_a_file", kind="a file where a frame folder should be")

    # split files: every good clip in exactly one test fold; hostile lines beside them
    for k in range(1, 6):
        for split in ("train", "test"):
            rows = [f"{i:05d},{1 + i % 7}\n".encode() for i in ids if ((1 + i % 5) == k) == (split == "test")]
            lines = [b"video_name,label\n", *rows]
            rel = f"EmoLabel_DataSplit/{split}(single-labeled)/set_{k}.csv"
            if (k, split) == (1, "test"):  # BOM, CRLF, blank lines, a trailing-space label: all fine
                lines = [line.replace(b"\n", b"\r\n") for line in lines] + [b"\r\n", b"   \r\n"]
                lines[1] = lines[1].replace(b"\r\n", b"  \r\n")
                _write(root / rel, b"\xef\xbb\xbf" + b"".join(lines))
            elif (k, split) == (5, "train"):  # UTF-16 with a byte-order mark
                _write(root / rel, b"".join(lines).decode().encode("utf-16"))
            else:
                _write(root / rel, b"".join(lines))
    test2 = root / "EmoLabel_DataSplit/test(single-labeled)/set_2.csv"
    hostile_lines = [
        (b"video_name,label\n", "malformed_row", "repeated header"),
        (b"00003,\x001\n", "unknown_label", "NUL byte in a label"),
        (b"000\x0013,1\n", "malformed_row", "NUL byte in a clip number"),
        (b"00004,\xb2\n".replace(b"\xb2", "²".encode()), "unknown_label", "superscript digit as a label"),
        ("٣,1\n".encode(), "malformed_row", "Arabic-Indic digit as a clip number"),
        (b"00005,9\n", "unknown_label", "label 9 of 7"),
        (b"00005,1,extra\n", "malformed_row", "three fields"),
        (b"just one field\n", "malformed_row", "one field"),
        (b'"unclosed,1\n', "malformed_row", "unclosed quote"),
        (b"00099,1\n", "missing_media", "clip without media"),
        (b"\x80\xff\x80,1\n", "bad_encoding", "neither UTF-8 nor GBK"),
        (b"00006," + b"7" * 200_000 + b"\n", "malformed_row", "a 200 kB field"),
        (b"100000,1\n", "malformed_row", "clip number out of range"),
    ]
    with test2.open("ab") as fh:
        for line, reason, kind in hostile_lines:
            fh.write(line)
            h.expect("EmoLabel_DataSplit/test(single-labeled)/set_2.csv", reason, kind=kind)
    # a clip in train but in no test fold (the issue's KeyError); a clip in two test folds; twice in one fold
    clip_media(root / "Clip/original/part_1/00021.mp4", seed=21)
    clip_media(root / "Clip/original/part_1/00022.mp4", seed=22)
    with (root / "EmoLabel_DataSplit/train(single-labeled)/set_3.csv").open("ab") as fh:
        fh.write(b"00021,1\n00008,2\n")
    h.expect("EmoLabel_DataSplit/train(single-labeled)/set_3.csv", "protocol_violation", kind="train-only clip")
    h.expect("EmoLabel_DataSplit/train(single-labeled)/set_3.csv", "duplicate_in_fold", kind="twice in one fold")
    with (root / "EmoLabel_DataSplit/test(single-labeled)/set_4.csv").open("ab") as fh:
        fh.write(b"00022,2\n")
    with (root / "EmoLabel_DataSplit/test(single-labeled)/set_5.csv").open("ab") as fh:
        fh.write(b"00022,2\n")
    h.expect("EmoLabel_DataSplit/test(single-labeled)/set_4.csv", "protocol_violation", kind="two test folds")
    h.good["Clip/original/part_1/00021.mp4"] = {"label": "happiness", "native_id": "00021"}
    h.good["Clip/original/part_1/00022.mp4"] = {"label": "sadness", "native_id": "00022"}
    _write(root / "EmoLabel_DataSplit/test(single-labeled)/set_6.csv", b"video_name,label\n00001,1\n")
    h.expect("EmoLabel_DataSplit/test(single-labeled)/set_6.csv", "protocol_violation", kind="fold 6 of 5")
    _write(root / "EmoLabel_DataSplit/test(single-labeled)/set_0.csv", b"00001,1\n")
    h.expect("EmoLabel_DataSplit/test(single-labeled)/set_0.csv", "protocol_violation", kind="fold 0")
    _write(root / "EmoLabel_DataSplit/train(single-labeled)/set_1.csv.bak", b"00001,1\n")
    h.expect("EmoLabel_DataSplit/train(single-labeled)/set_1.csv.bak", "unexpected_file", kind="backup split file")
    os.mkfifo(root / "EmoLabel_DataSplit/train(single-labeled)/set_2.csv.fifo")
    h.expect("EmoLabel_DataSplit/train(single-labeled)/set_2.csv.fifo", "not_a_file", kind="FIFO among split files")

    # votes: good rows for the good clips, hostile cells beside them
    header = ["order", "1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7fear"]
    sheet: list[list[Any]] = [header]
    for i in ids:
        v = [0] * 7
        v[i % 7] = 10
        sheet.append([i, *v])
        h.good[next(r for r, g in h.good.items() if g["native_id"] == f"{i:05d}")]["votes"] = labels[1 + i % 7]
    bad_rows: list[tuple[list[Any], str]] = [
        ([21, "=1+1", 0, 0, 0, 0, 0, 0], "a formula with no cached value"),
        ([22, "#DIV/0!", 0, 0, 0, 0, 0, 0], "an error cell"),
        ([23, True, 0, 0, 0, 0, 0, 0], "a boolean vote"),
        ([24, 1e300, 0, 0, 0, 0, 0, 0], "an absurd vote count"),
        ([25, -3, 0, 0, 0, 0, 0, 0], "a negative vote count"),
        ([26, 2.5, 0, 0, 0, 0, 0, 0], "a fractional vote count"),
        (["n/a", 1, 0, 0, 0, 0, 0, 0], "a clip number that is text"),
        ([27], "a short row"),
    ]
    for row, kind in bad_rows:
        sheet.append(row)
        h.expect("Annotation/annotation.xlsx", "malformed_row", kind=kind)
    _xlsx(root / "Annotation" / "annotation.xlsx", sheet)

    # media folders: odd entries where videos live
    _write(root / "Clip/original/00030.mp4", b"x")
    h.expect("Clip/original/00030.mp4", "unexpected_file", kind="a clip outside part_*")
    clip_media(root / "Clip/original/part_1/sub/00031.mp4", seed=31)
    h.expect("Clip/original/part_1/sub", "not_a_file", kind="a folder inside a part folder")
    h.expect("Clip/original/part_1/sub/00031.mp4", "unexpected_file", kind="a clip one level too deep")
    _write(root / "Clip/original/part_1/notes.txt")
    h.expect("Clip/original/part_1/notes.txt", "unsupported_extension", kind="a text file among clips")
    _write(root / "Clip/original/part_1/clip-seven.mp4")
    h.expect("Clip/original/part_1/clip-seven.mp4", "bad_name", kind="a clip name that is not a number")
    _write(root / "Clip/original/part_4/00040.mp4", (root / "Clip/original/part_2/00001.mp4").read_bytes())
    h.expect("Clip/original/part_4/00040.mp4", "duplicate_content", kind="a copy under another id")
    _write(root / "Clip/original/part_3/00001.avi", (root / "Clip/original/part_2/00001.mp4").read_bytes())
    h.expect("Clip/original/part_3/00001.avi", "duplicate_id", kind="the same clip as .mp4 and .avi")

    def clip_name(tag: str) -> str:
        if tag in {"vanish", "replaced"}:
            return f"{99990 + (tag == 'replaced'):05d}.mp4"
        return f"{200 + FS_TAGS.index(tag):05d}.mp4"

    _filesystem(h, "Clip/original/part_1", clip_name, outside, late="Clip/original/part_9")
    os.symlink(outside, root / "Clip" / "clip_224x224_16f")
    h.expect("Clip/clip_224x224_16f", "unsafe_path", kind="frame root linked outside")

    def media_name(tag: str) -> str:
        return f"{300 + ['truncated', 'text', 'short', 'slow', 'long', 'huge'].index(tag):05d}.mp4"

    _media(h, "Clip/original/part_5", media_name)
    h.arm()
    return h


# ---------------------------------------------------------------------------------------------------- MAFW


def make_mafw(root: pathlib.Path) -> Hostile:
    h = Hostile(root)
    outside = root.parent / (root.name + "-outside")
    ids = [19, 25, 27, 103, 350, 903, 1204, 3414, 5000, 7021, 8812]
    order = MAFW_CLASSES[::-1]  # the sheet's own class numbering
    for j, i in enumerate(ids):
        rel = f"data/clips/{i:05d}.mp4"
        clip_media(root / rel, seed=1000 + i, audio=j != 3)
        cls = MAFW_CLASSES[j % 11]
        h.good[rel] = {"label": schemas_label("mafw", cls), "native_id": f"{i:05d}", "test_fold": 1 + j % 5}
    labels = {i: MAFW_CLASSES[j % 11] for j, i in enumerate(ids)}
    base = root / "Train & Test Set"
    for k in range(1, 6):
        for split in ("train", "test"):
            chosen = [i for j, i in enumerate(ids) if ((j % 5) + 1 == k) == (split == "test")]
            plain = "".join(f"{i:05d}.mp4 {labels[i]}\n" for i in chosen).encode()
            if (k, split) == (1, "test"):  # BOM, CRLF, blank lines, trailing spaces: all fine
                plain = b"\xef\xbb\xbf" + plain.replace(b"\n", b"   \r\n") + b"\r\n\r\n"
            if (k, split) == (3, "test"):  # saved as Excel's "Unicode text": UTF-16 with a byte-order mark
                plain = plain.decode().encode("utf-16")
            _write(base / "single" / "no_caption" / f"set_{k}" / f"{split}.txt", plain)
            caption = "".join(
                f"{i:05d}.mp4\t{labels[i]}\t一个人看起来{labels[i]}\tA person looks {labels[i]}\n" for i in chosen
            )
            _write(base / "single" / "with_caption" / f"set_{k}" / f"{split}.txt", caption.encode("gbk"))
    for i in ids:
        h.good[f"data/clips/{i:05d}.mp4"]["description"] = f"A person looks {labels[i]}"
    test2 = base / "single" / "no_caption" / "set_2" / "test.txt"
    rel2 = "Train & Test Set/single/no_caption/set_2/test.txt"
    hostile_lines = [
        (b"00019.mp4 joy\n", "unknown_label", "a label MAFW does not have"),
        (b"00019.mp4 Anger\n", "unknown_label", "a class name capitalised"),
        (b"../../etc/passwd.mp4 anger\n", "unsafe_path", "path traversal"),
        (b"/abs/00025.mp4 anger\n", "unsafe_path", "absolute path"),
        (b"000\x0027.mp4 anger\n", "unsafe_path", "NUL byte in an id"),
        (b"just-one-field\n", "malformed_row", "one field"),
        (b"a b c\n", "malformed_row", "three fields"),
        (b"\x80\xff\x80 anger\n", "bad_encoding", "neither UTF-8 nor GBK"),
        ("٣.mp4 anger\n".encode(), "malformed_row", "Arabic-Indic digit as an id"),
    ]
    with test2.open("ab") as fh:
        for line, reason, kind in hostile_lines:
            fh.write(line)
            h.expect(rel2, reason, kind=kind)
        fh.write(b"20099.mp4 anger\n")
    h.expect("data/clips/20099.mp4", "missing_media", kind="split line for a clip without media")
    # train-only clip; fold 7; a val.txt; stray file at the top of the split tree
    clip_media(root / "data/clips/30001.mp4", seed=30001)
    with (base / "single" / "no_caption" / "set_2" / "train.txt").open("ab") as fh:
        fh.write(b"30001.mp4 anger\n")
    h.expect("Train & Test Set/single/no_caption/set_2/train.txt", "protocol_violation", kind="train-only clip")
    h.good["data/clips/30001.mp4"] = {"label": "anger", "native_id": "30001"}
    _write(base / "single" / "no_caption" / "set_7" / "test.txt", b"00019.mp4 anger\n")
    h.expect("Train & Test Set/single/no_caption/set_7/test.txt", "protocol_violation", kind="fold 7 of 5")
    _write(base / "single" / "no_caption" / "set_1" / "val.txt", b"00019.mp4 anger\n")
    h.expect("Train & Test Set/single/no_caption/set_1/val.txt", "unexpected_file", kind="a validation split")
    _write(base / "readme.txt", b"hello")
    h.expect("Train & Test Set/readme.txt", "unexpected_file", kind="stray file in the split tree")
    # compound labels (fine) and a hostile one
    for k in range(1, 6):
        for split in ("train", "test"):
            chosen = [i for j, i in enumerate(ids) if ((j % 5) + 1 == k) == (split == "test")]
            text = "".join(f"{i:05d}.mp4 {labels[i]}_surprise\n" for i in chosen if labels[i] != "surprise")
            _write(base / "compound" / "no_caption" / f"set_{k}" / f"{split}.txt", text.encode())
    with (base / "compound" / "no_caption" / "set_1" / "train.txt").open("ab") as fh:
        fh.write(b"00025.mp4 anger_<script>\n")
    h.expect("Train & Test Set/compound/no_caption/set_1/train.txt", "unknown_label", kind="markup in a compound")
    # the spreadsheet: good ids, hostile cells
    sheet: list[list[Any]] = [["MAFW single-label set"]] + [[f"{i:05d}.mp4", order.index(labels[i]) + 1] for i in ids]
    bad_rows = [
        (["00019.mp4", "=A1"], "a formula"),
        (["00025.mp4", "#N/A"], "an error cell"),
        (["00027.mp4", True], "a boolean id"),
        (["00103.mp4", 1e300], "an absurd id"),
        (["00350.mp4", 0], "id 0"),
        ([3.5, 1], "a fractional clip cell"),
        (["00903.mp4"], "a short row"),
    ]
    for row, kind in bad_rows:
        sheet.append(row)
        h.expect("Labels/single-set.xlsx", "malformed_row", kind=kind)
    _xlsx(root / "Labels" / "single-set.xlsx", sheet)
    # a gender file: good lines, markup and an odd form
    _write(
        root / "Labels" / "gender.txt",
        b"00019.mp4 Male\n00025 female\n00027 <script>alert(1)</script>\n00103\n",
    )
    h.good["data/clips/00019.mp4"]["gender"] = "male"
    h.good["data/clips/00025.mp4"]["gender"] = "female"
    h.expect("Labels/gender.txt", "unknown_label", "malformed_row", kind="markup as a gender")
    h.expect("Labels/gender.txt", "malformed_row", kind="a gender line with one field")
    # odd entries where clips live
    _write(root / "data/clips/notes.txt")
    h.expect("data/clips/notes.txt", "unsupported_extension", kind="a text file among clips")
    clip_media(root / "data/clips/sub/40005.mp4", seed=5)
    h.expect("data/clips/sub", "not_a_file", kind="a folder among clips")
    h.expect("data/clips/sub/40005.mp4", "unexpected_file", kind="a clip one level too deep")
    _write(root / "data/clips/40000.mp4", (root / "data/clips/00025.mp4").read_bytes())
    h.expect("data/clips/40000.mp4", "duplicate_content", kind="a copy under another id")
    _write(root / "data/clips/019.mp4", (root / "data/clips/00019.mp4").read_bytes())
    h.expect("data/clips/019.mp4", "duplicate_id", kind="the same id written unpadded")

    def clip_name(tag: str) -> str:
        if tag in {"vanish", "replaced"}:
            return f"{99990 + (tag == 'replaced'):05d}.mp4"
        return f"{50000 + FS_TAGS.index(tag):05d}.mp4"

    _filesystem(h, "data/clips", clip_name, outside, late="data/clips")

    def media_name(tag: str) -> str:
        return f"{60000 + ['truncated', 'text', 'short', 'slow', 'long', 'huge'].index(tag):05d}.mp4"

    _media(h, "data/clips", media_name)
    h.arm()
    return h


def schemas_label(corpus: str, native: str) -> str:
    from emopipe import schemas

    return schemas.taxonomy().native_to_canonical(corpus)[native]


# ---------------------------------------------------------------------------------------------------- footage


def make_footage(root: pathlib.Path) -> Hostile:
    h = Hostile(root)
    outside = root.parent / (root.name + "-outside")
    day = root / "2026-11-01"

    def clip(rel: str, seed: int, **expected: Any) -> pathlib.Path:
        path = root / rel
        if path.suffix == ".webm":  # H.264 in a WebM name: the reader goes by the name, the decoder by the bytes
            clip_media(path.with_suffix(".mp4"), seed=seed).rename(path)
        else:
            clip_media(path, seed=seed)
        h.good[rel] = expected
        return path

    a = clip("2026-11-01/a.mp4", 1, label="happiness", gender="female", age_group="30-39", arousal=7.0)
    (day / "a.json").write_text(
        json.dumps({"gender": " Female ", "age": "30 – 39", "arousal": 7, "emotions": ["happy"], "lang": "en"})
    )
    clip("2026-11-01/b.mkv", 2, label="sadness", gender="male")
    clip("2026-11-01/c.mov", 3, label="anger", age_group="65+")
    clip("2026-11-01/d.webm", 4, compound_labels=["fear", "surprise"])
    clip("2026-11-01/e.mp4", 5, label="disgust")
    clip("2026-11-01/日本語 クリップ.mp4", 6, label="neutral")
    (day / "日本語 クリップ.json").write_text(json.dumps({"emotions": "Neutral"}, ensure_ascii=False))
    clip("2026-11-01/" + "long-name-" * 24 + ".mp4", 7)  # 245 characters: long but a fine name
    clip("2026-11-01/my clip (1).avi", 8)
    clip("2026-11-01/cafe\u0301.mp4", 9)  # NFD
    _write(day / "café.mp4", clip_media(outside / "nfc.mp4", seed=10).read_bytes())  # NFC: another clip, same name
    h.expect("2026-11-01/café.mp4", "duplicate_id", kind="Unicode-normalisation duplicate")
    clip("2026-11-01/Clip.mp4", 11)
    _write(day / "clip.mp4", clip_media(outside / "case.mp4", seed=12).read_bytes())
    h.expect("2026-11-01/clip.mp4", "duplicate_id", kind="case duplicate")
    (day / "copy of a.mp4").write_bytes(a.read_bytes())  # the same bytes: a duplicate path, no row
    h.good["2026-11-01/a.mp4"]["duplicate_paths"] = ["2026-11-01/copy of a.mp4", "2026-11-01/inside-link.mp4"]
    os.symlink("a.mp4", day / "inside-link.mp4")
    # a folder named like a video, holding a good clip
    clip("2026-11-01/folder.mp4/inner.mp4", 13)
    h.expect("2026-11-01/folder.mp4", "not_a_file", kind="folder named like a video")

    # the folder table: BOM, CRLF, blank lines; good rows and hostile rows
    table = [
        "path,gender,age_group,emotions,arousal,valence,speaker",
        "b.mkv,MAN,,sad,,,spk-2",
        "c.mov,,65 +,angry,,,",
        "d.webm,,,fearful|surprised,,,",
        "",
        "path,gender,age_group,emotions,arousal,valence,speaker",  # repeated header
        "e.mp4,,,disgusted,,,,,",  # ragged: extra fields -> its annotation is not applied
        "missing.mp4,female,,,,,",
        "../../etc/passwd,male,,,,,",
        "b.mkv,female,,,,,",  # annotated twice
        'x.mp4,"' + "y" * 200_000 + '",,,,,',  # a field beyond the csv module's limit
        "\u202eevil.mp4,,,,,,",  # a bidi override in the path
    ]
    raw = ("\r\n".join(table) + "\r\n").encode()
    _write(day / "annotations.csv", b"\xef\xbb\xbf" + raw)
    for kind, reason in [
        ("repeated header", "malformed_row"),
        ("ragged row", "malformed_row"),
        ("annotated twice", "malformed_row"),
        ("a 200 kB field", "malformed_row"),
        ("path traversal in a table", "unsafe_path"),
        ("bidi override in a table path", "unsafe_path"),
    ]:
        h.expect("2026-11-01/annotations.csv", reason, kind=kind)
    h.expect("2026-11-01/missing.mp4", "missing_media", kind="table row for a file that does not exist")
    # e.mp4's label comes from its sidecar instead (the ragged row is not used)
    (day / "e.json").write_text(json.dumps({"emotions": "disgust"}))

    # sidecars of every hostile shape, each beside a clip of its own that stays (unannotated or partly annotated)
    side = root / "2026-11-02"
    sidecars: list[tuple[str, bytes, str, set[str], dict[str, Any]]] = [
        ("list", b"[1, 2, 3]", "a list", {"unreadable_annotation"}, {}),
        ("nested", b"[" * 100_000 + b"]" * 100_000, "nested 100,000 deep", {"unreadable_annotation"}, {}),
        ("deepobj", b'{"a": ' * 5000 + b"1" + b"}" * 5000, "objects nested 5,000 deep", {"unreadable_annotation"}, {}),
        ("bignum", b'{"valence": 1' + b"0" * 5000 + b"}", "a 5,000-digit number", {"unreadable_annotation"}, {}),
        ("inf", b'{"valence": 1e999, "emotions": "happy"}', "1e999", {"invalid_annotation"}, {"label": "happiness"}),
        ("nan", b'{"arousal": NaN, "valence": "-Infinity"}', "NaN / -Infinity", {"invalid_annotation"}, {}),
        ("dupkey", b'{"gender": "male", "gender": "female"}', "duplicate keys", {"unreadable_annotation"}, {}),
        ("surrogate", b'{"gender": "\\ud800"}', "a lone surrogate", {"unreadable_annotation"}, {}),
        ("latin1", '{"gender": "féminin"}'.encode("latin-1"), "not UTF-8", {"unreadable_annotation"}, {}),
        ("truncated", b'{"gender": "fem', "truncated JSON", {"unreadable_annotation"}, {}),
        ("empty", b"", "an empty sidecar", {"unreadable_annotation"}, {}),
        (
            "script",
            json.dumps({"gender": "<script>alert(1)</script>", "emotions": "happy"}).encode(),
            "markup as gender",
            {"invalid_annotation"},
            {"label": "happiness"},
        ),  # fmt: skip
        (
            "agescript",
            json.dumps({"age_group": "<img src=x onerror=alert(1)>"}).encode(),
            "markup as age group",
            {"invalid_annotation"},
            {},
        ),  # fmt: skip
        ("accent", json.dumps({"accent": "</td><script>"}).encode(), "markup as accent", {"invalid_annotation"}, {}),
        ("types", json.dumps({"emotions": {"a": 1}}).encode(), "emotions as an object", {"invalid_annotation"}, {}),
        ("boolarousal", b'{"arousal": true}', "a boolean arousal", {"invalid_annotation"}, {}),
        ("range", b'{"arousal": 11}', "arousal out of 0..10", {"invalid_annotation"}, {}),
        ("bom", b"\xef\xbb\xbf" + json.dumps({"emotions": "calm"}).encode(), "a BOM (fine)", set(), {"label": "calm"}),
    ]
    for n, (stem, data, kind, reasons, expected) in enumerate(sidecars):
        clip(f"2026-11-02/{stem}.mp4", 100 + n, **expected)
        _write(side / f"{stem}.json", data)
        if reasons:
            where = f"2026-11-02/{stem}.json" if "unreadable_annotation" in reasons else f"2026-11-02/{stem}.mp4"
            h.expect(where, *reasons, kind=kind)
            if stem == "nan":
                h.expect(where, *reasons, kind=kind)  # arousal and valence, one row each
    h.good["2026-11-02/script.mp4"]["gender"] = None
    _write(side / "orphan.json", b"{}")
    h.expect("2026-11-02/orphan.json", "missing_media", kind="sidecar for a clip that does not exist")

    # a Parquet table with wrong column types, a corrupt one, a table that is not UTF-8
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq_dir = root / "2026-11-03"
    clip("2026-11-03/p1.mp4", 201, label="happiness")
    clip("2026-11-03/p2.mp4", 202)
    clip("2026-11-03/p3.mp4", 203)
    pq_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "path": ["p1.mp4", "p2.mp4", "p3.mp4", None],
                "emotions": ["happy", None, None, "sad"],
                "arousal": [None, [1.0, 2.0], None, None],
                "gender": [None, None, {"value": "female"}, None],
            }
        ),
        pq_dir / "annotations.parquet",
    )
    h.expect("2026-11-03/p2.mp4", "invalid_annotation", kind="Parquet arousal as a list")
    h.expect("2026-11-03/p3.mp4", "invalid_annotation", kind="Parquet gender as a struct")
    h.expect("2026-11-03/annotations.parquet", "malformed_row", kind="Parquet row without a path")
    bad_dir = root / "2026-11-04"
    clip("2026-11-04/q.mp4", 301)
    _write(bad_dir / "annotations.parquet", b"PAR1 this is not parquet PAR1")
    h.expect("2026-11-04/annotations.parquet", "unreadable_annotation", kind="corrupt Parquet")
    clip("2026-11-05/r.mp4", 302)
    _write(root / "2026-11-05" / "annotations.csv", "path,gender\nr.mp4,féminin\n".encode("latin-1"))
    h.expect("2026-11-05/annotations.csv", "unreadable_annotation", kind="a table that is not UTF-8")
    clip("2026-11-06/s.mp4", 303)
    _write(root / "2026-11-06" / "annotations.csv", b"gender,emotions\nfemale,happy\n")
    h.expect("2026-11-06/annotations.csv", "unreadable_annotation", kind="a table without a path column")
    _write(root / "2026-11-06" / "notes.txt", b"hello")
    h.expect("2026-11-06/notes.txt", "unsupported_extension", kind="a text file")

    _filesystem(h, "2026-11-07", lambda tag: f"{tag}.mp4", outside, late="zz-late")
    # a symlink inside the root, re-pointed outside it once the walk has vouched for it
    target = clip_media(root / "zz-late" / "target.mp4", seed=401)
    h.good["zz-late/target.mp4"] = {}
    os.symlink("target.mp4", root / "zz-late" / "zz-link.mp4")
    h._relink.append((root / "zz-late" / "zz-link.mp4", outside / "secret.mp4"))
    h.expect("zz-late/zz-link.mp4", "file_changed", kind="symlink re-pointed outside mid-scan")
    assert target.exists()
    _media(h, "2026-11-08", lambda tag: f"{tag}.mp4")
    h.arm()
    return h


def make_hostile(reader: str, root: pathlib.Path) -> Hostile:
    """The hostile corpus of `reader` (ravdess, dfew, mafw, footage) under `root`."""
    return {"ravdess": make_ravdess, "dfew": make_dfew, "mafw": make_mafw, "footage": make_footage}[reader](root)
