"""Weights from PyPI wheels: fetched with pip, every file's sha256 checked, tampering caught."""

import dataclasses

import pytest

from emopipe import weights


def test_fetch_verifies_and_repairs(tmp_path):
    folder = weights.fetch("mtcnn", tmp_path)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["onet.pt", "pnet.pt", "rnet.pt"]
    (folder / "pnet.pt").write_bytes(b"tampered")
    weights.fetch("mtcnn", tmp_path)  # a file that fails its checksum is fetched again
    assert weights.sha256_of(folder / "pnet.pt") == weights.REGISTRY["mtcnn"].files["facenet_pytorch/data/pnet.pt"]


def test_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    entry = weights.REGISTRY["mtcnn"]
    monkeypatch.setitem(weights.REGISTRY, "mtcnn", dataclasses.replace(entry, wheel_sha256="0" * 64))
    with pytest.raises(weights.WeightsError, match="sha256"):
        weights.fetch("mtcnn", tmp_path)
    assert not list(tmp_path.rglob("*.pt"))  # nothing unverified is left behind


def test_unknown_weights():
    with pytest.raises(weights.WeightsError, match="unknown"):
        weights.fetch("nope")
