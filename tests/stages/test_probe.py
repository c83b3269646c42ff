"""Media probing with the real decoder on generated media, and what happens to broken files."""

import os

import pytest
from tests.corpora import audio_only_mp4, index_frames, tone, undecodable_long_clip

from emopipe.config import ValidateConfig
from emopipe.demo import write_mp4, write_wav
from emopipe.sources.base import InvalidInput
from emopipe.stages import probe

LIMITS = probe.ProbeLimits(min_duration_s=0.2, max_duration_s=600, min_fps=5, max_fps=120, min_frames=4, min_side=16)


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


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"duration_s": 0.1, "fps": 10.0, "n_frames": 1, "has_video": True}, "too_short"),
        ({"duration_s": 1800.0, "fps": 25.0, "n_frames": None, "has_video": True}, "too_long"),
        ({"duration_s": None, "fps": 25.0, "n_frames": 25 * 700, "has_video": True}, "too_long"),
        ({"duration_s": 5.0, "fps": 2.0, "n_frames": 10, "has_video": True}, "fps_out_of_range"),
        ({"duration_s": 1.0, "fps": 1000.0, "n_frames": 1000, "has_video": True}, "fps_out_of_range"),
        ({"duration_s": 0.3, "fps": 10.0, "n_frames": 3, "has_video": True}, "too_few_frames"),
        ({"duration_s": 2, "fps": 10, "n_frames": 20, "has_video": True, "width": 8, "height": 64}, "frame_too_small"),
        ({"duration_s": 2, "fps": 10, "n_frames": 20, "has_video": True, "width": 16, "height": 16}, None),
        ({"duration_s": 0.1, "fps": None, "n_frames": None, "has_video": False}, "too_short"),
        ({"duration_s": 2.0, "fps": 25.0, "n_frames": 50, "has_video": True}, None),
        ({"duration_s": 2.0, "fps": None, "n_frames": None, "has_video": False}, None),
        ({"duration_s": None, "fps": None, "n_frames": None, "has_video": True}, None),  # nothing known: not judged
    ],
)
def test_check_limits(facts, reason):
    if reason is None:
        probe.check_limits(facts, LIMITS)
        return
    with pytest.raises(InvalidInput) as err:
        probe.check_limits(facts, LIMITS)
    assert err.value.reason == reason and err.value.detail


def test_limits_come_from_params():
    from emopipe.config import ExtractConfig, Params

    limits = probe.ProbeLimits.from_params(
        Params(validate=ValidateConfig(min_fps=8), extract_features=ExtractConfig(n_frames=8))
    )
    got = (limits.min_duration_s, limits.max_duration_s, limits.min_fps, limits.max_fps, limits.min_frames)
    assert (*got, limits.min_side) == (0.2, 600.0, 8, 120.0, 8, 16)


def test_clips_that_cannot_serve_as_a_sample_are_quarantined_by_the_probe_not_the_gate(tmp_path):
    """A 0.1 s clip and a 2 fps clip used to pass the probe and then fail the blocking gate for the whole dataset."""
    write_mp4(tmp_path / "good.mp4", index_frames(10), 10, tone(1.0))
    write_mp4(tmp_path / "short.mp4", index_frames(1), 10, None)  # 0.1 s
    write_mp4(tmp_path / "slow.mp4", index_frames(10), 2, None)  # 2 fps
    write_mp4(tmp_path / "few.mp4", index_frames(3), 10, tone(0.3))  # 3 frames, 4 sampled
    write_wav(tmp_path / "blip.wav", tone(0.05))
    undecodable_long_clip(tmp_path / "long.mkv", 1800)
    write_mp4(tmp_path / "thumb.mp4", index_frames(10, (8, 8)), 10, tone(1.0))  # 8 x 8 px: the gate wants 16
    audio_only_mp4(tmp_path / "voice.mp4")  # a "video" with no video stream: extraction could only fail on it
    names = ["good.mp4", "short.mp4", "slow.mp4", "few.mp4", "blip.wav", "long.mkv", "thumb.mp4", "voice.mp4"]
    rows = [
        {"corpus": "footage", "media_path": n, "media_form": "audio" if n.endswith("wav") else "video"} for n in names
    ]
    out = {r["media_path"]: r for r in probe.probe_rows(rows, tmp_path, LIMITS)}
    assert {n: out[n]["error"] for n in names} == {
        "good.mp4": None,
        "short.mp4": "too_short",
        "slow.mp4": "fps_out_of_range",
        "few.mp4": "too_few_frames",
        "blip.wav": "too_short",
        "long.mkv": "too_long",  # decided from metadata: nothing in that file can be decoded
        "thumb.mp4": "frame_too_small",
        "voice.mp4": "modality_mismatch",
    }
    assert "2 fps" in out["slow.mp4"]["error_detail"] and "1800" in out["long.mkv"]["error_detail"]
    # without limits the same files pass (or, for the undecodable one, fail as unreadable): the limits decide
    plain = {r["media_path"]: r["error"] for r in probe.probe_rows(rows, tmp_path)}
    expected = {"long.mkv": "unreadable_media", "voice.mp4": "modality_mismatch"}  # a stream fact, not a limit
    assert plain == {n: expected.get(n) for n in names}
    # what passes the probe is inside the gate's dataset-wide bounds
    gate = ValidateConfig()
    good = out["good.mp4"]
    assert (
        gate.min_duration_s <= good["duration_s"] <= gate.max_duration_s
        and gate.min_fps <= good["fps"] <= gate.max_fps
        and min(good["width"], good["height"]) >= gate.min_frame_side
    )


def test_the_probe_stage_checks_its_limits(tiny_corpus):
    import pyarrow as pa

    from emopipe import schemas
    from emopipe.sources import ravdess

    clips = ravdess.scan(tiny_corpus, run_id="t").clips
    stage = probe.ProbeStage({"ravdess": str(tiny_corpus)}, limits=probe.ProbeLimits(min_duration_s=1.0))
    out = stage.process(clips)
    assert stage.version != probe.ProbeStage({"ravdess": str(tiny_corpus)}).version  # new limits probe again
    assert isinstance(out, pa.Table) and out.num_rows == clips.num_rows
    errors = {e for e in out["error"].to_pylist()}
    assert errors <= {"too_short", "unreadable_media"} and "too_short" in errors  # the tiny clips are 0.6 s
    assert schemas.CLIPS.names == out.schema.names[:-1]


def test_a_fifo_is_never_handed_to_the_decoder(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    [row] = probe.probe_rows([{"corpus": "footage", "media_path": "pipe.mp4", "media_form": "video"}], tmp_path)
    assert row["error"] == "not_a_file"


def test_huge_frames_are_refused_from_the_metadata(tmp_path):
    undecodable_long_clip(tmp_path / "huge.mkv", 2, size=(9000, 9000))  # 8192 on a side is the most
    [row] = probe.probe_rows([{"corpus": "footage", "media_path": "huge.mkv", "media_form": "video"}], tmp_path)
    assert row["error"] == "frame_too_large" and "9000 x 9000" in row["error_detail"]
