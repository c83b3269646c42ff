"""Where an export finds each clip's media, and proof that it is the media the version was built from.

A version records every corpus's root (`Dataset.corpora`) and each clip's path under it; a trainer's machine may
mount the corpora elsewhere (`media_roots`). Before anything is written, each root must be a folder and the first
clips found under it must have the sha256 the version recorded: a wrong root (another corpus, another release) is
a user's mistake, refused in one line. Later, per clip, a missing file or one whose bytes changed becomes a
reported row of the export, never a silent drop; copied files are hashed while they are copied.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

SAMPLE = 3  # files hashed per corpus before an export starts
CHUNK = 1 << 20


class MediaError(ValueError):
    """A media root is missing or holds other bytes than the version was built from."""


@dataclass(frozen=True)
class Clip:
    """What an export needs to know about one clip's media."""

    clip_id: str
    corpus: str
    media_path: str
    media_form: str
    sha256: str
    size_bytes: int


def roots(recorded: dict[str, pathlib.Path], overrides: dict[str, pathlib.Path], corpora: Iterable[str]) -> dict:
    """corpus -> media root for the corpora of an export: the override where given, else the recorded root.

    Raises:
        MediaError: a corpus with no root, or a root that is not a folder.
    """
    out = {}
    for corpus in sorted(set(corpora)):
        root = overrides.get(corpus) or recorded.get(corpus)
        if root is None:
            raise MediaError(f"no media root for corpus {corpus}: give --media-root {corpus}=PATH")
        root = pathlib.Path(root)
        if not root.is_dir():
            where = "given" if corpus in overrides else "recorded in the version"
            raise MediaError(
                f"media root of {corpus} ({root}, {where}) is not a folder: "
                f"mount it or give --media-root {corpus}=PATH"
            )
        out[corpus] = root
    return out


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def check_roots(clips: list[Clip], where: dict[str, pathlib.Path]) -> None:
    """Hash the first few files of every corpus (in clip_id order) against the version's sha256.

    Raises:
        MediaError: a hashed file has other bytes (the root holds another corpus or release), or none of the first
            files exists (the root is not this corpus's).
    """
    by_corpus: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.clip_id):
        if clip.media_form != "frames":  # a frame folder's digest is the reader's own: checked per clip by presence
            by_corpus.setdefault(clip.corpus, []).append(clip)
    for corpus, members in sorted(by_corpus.items()):
        root, tried = where[corpus], []
        for clip in members[:SAMPLE]:
            path = root / clip.media_path
            tried.append(clip.media_path)
            if not path.is_file():
                continue
            if (found := sha256_file(path)) != clip.sha256:
                raise MediaError(
                    f"media root of {corpus} ({root}) holds other bytes than the version: {clip.media_path} has "
                    f"sha256 {found[:12]}…, the version recorded {clip.sha256[:12]}… (another corpus or release?)"
                )
            break
        else:
            raise MediaError(
                f"media root of {corpus} ({root}) has none of its first clips ({', '.join(tried)}): "
                f"give --media-root {corpus}=PATH where the corpus is mounted"
            )


def problem(clip: Clip, root: pathlib.Path) -> str | None:
    """Why a clip's media cannot be used, from a stat only: missing_media, media_changed (other size); else None."""
    path = root / clip.media_path
    if clip.media_form == "frames":
        return None if path.is_dir() and any(path.iterdir()) else "missing_media"
    try:
        size = path.stat().st_size
    except OSError:
        return "missing_media"
    if not path.is_file():
        return "missing_media"
    return None if size == clip.size_bytes else "media_changed"


def copy_verified(clip: Clip, root: pathlib.Path, dest: pathlib.Path) -> str | None:
    """Copy a clip's media to `dest` (a file, or a folder for frame folders), hashing a file as it is copied.

    Returns None when copied, else the reason it was not (missing_media, sha256_mismatch); nothing is left at
    `dest` then.
    """
    src = root / clip.media_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    if clip.media_form == "frames":
        if not src.is_dir():
            return "missing_media"
        dest.mkdir(exist_ok=True)
        for image in sorted(p for p in src.iterdir() if p.is_file()):
            _copy(image, dest / image.name)
        return None
    if not src.is_file():
        return "missing_media"
    h = hashlib.sha256()
    tmp = dest.with_name(f".{dest.name}.tmp")
    with src.open("rb") as fin, tmp.open("wb") as fout:
        while block := fin.read(CHUNK):
            h.update(block)
            fout.write(block)
    if h.hexdigest() != clip.sha256:
        tmp.unlink()
        return "sha256_mismatch"
    os.replace(tmp, dest)
    return None


def read_verified(clip: Clip, root: pathlib.Path) -> tuple[bytes | None, str | None]:
    """A clip's media file's bytes (for shards and Parquet files) if they have the recorded sha256."""
    src = root / clip.media_path
    if not src.is_file():
        return None, "missing_media"
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != clip.sha256:
        return None, "sha256_mismatch"
    return data, None


def _copy(src: pathlib.Path, dst: pathlib.Path) -> None:
    import shutil

    shutil.copyfile(src, dst)
