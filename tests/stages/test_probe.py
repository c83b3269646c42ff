"""Media probing with the real decoder on generated media, and what happens to broken files."""

import pytest

from emopipe.sources.base import InvalidInput
from emopipe.stages import probe


def test_probe_av_clip(tiny_corpus):
    out = probe.probe_file(tiny_corpus / "Actor_01" / "01-01-03-02-01-01-01.mp4")
    assert out["has_video"] and out["has_audio"]
    assert (out["width"], out["height"], out["codec"]) == (96, 72, "h264")
    assert out["fps"] == pytest.approx(10)
    assert out["n_frames"] == 6
    assert out["duration_s"] == pytest.approx(0.6, abs=0.05)
    assert (out["audio_sample_rate"], out["audio_channels"], out["audio_codec"]) == (48000, 1, "aac")


def test_probe_wav(tiny_corpus):
    out = probe.probe_file(tiny_corpus / "Actor_02" / "03-01-05-02-01-01-02.wav")
    assert not out["has_video"] and out["has_audio"]
    assert out["fps"] is None and out["width"] is None
    assert out["audio_codec"] == "pcm_s16le"
    assert out["duration_s"] == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize("data", [b"", b"not a video at all" * 10, None], ids=["empty", "text", "truncated"])
def test_broken_media_is_unreadable(tiny_corpus, tmp_path, data):
    good = (tiny_corpus / "Actor_01" / "01-01-03-02-01-01-01.mp4").read_bytes()
    path = tmp_path / "clip.mp4"
    path.write_bytes(good[:300] if data is None else data)
    with pytest.raises(InvalidInput) as err:
        probe.probe_file(path)
    assert err.value.reason == "unreadable_media"


def test_modality_mismatch():
    probed = {"has_video": True, "has_audio": True}
    probe.check_modality({"modality": "audio-visual"}, probed)
    with pytest.raises(InvalidInput, match="video-only file has video=True, audio=True"):
        probe.check_modality({"modality": "video-only"}, probed)


def test_probe_rows_keeps_every_row(tiny_corpus):
    rows = [
        {"media_path": "Actor_01/01-01-03-02-01-01-01.mp4", "modality": "audio-visual"},
        {"media_path": "Actor_02/01-01-04-02-01-02-02.mp4", "modality": "audio-visual"},  # truncated demo fault
        {"media_path": "Actor_01/missing.mp4", "modality": "audio-visual"},
    ]
    out = probe.probe_rows(rows, tiny_corpus)
    assert [r["error"] for r in out] == [None, "unreadable_media", "unreadable_media"]
    assert out[0]["duration_s"] > 0 and out[1]["error_detail"]
