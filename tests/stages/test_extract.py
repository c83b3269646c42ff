"""ClipExtractor in one process: faces where there are faces, audio features or a reason, one row per clip
whatever breaks."""

import pathlib

import numpy as np
import pyarrow as pa
import pytest
from tests.corpora import broken_audio_clip, face_frames, pattern_frames, tone, truncated_clip

from emopipe.config import ExtractConfig
from emopipe.demo import write_mp4, write_wav
from emopipe.stages.extract import FEATURES, ClipExtractor, decode_jpeg, extraction_rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("media")
    write_mp4(root / "face.mp4", face_frames(20), 10, tone(2.0))
    write_mp4(root / "noface.mp4", pattern_frames(3, size=96, n=20), 10, tone(2.0, hz=300))
    write_mp4(root / "silent.mp4", face_frames(20), 10, None)
    write_wav(root / "voice.wav", tone(1.5, hz=220))
    broken_audio_clip(root / "badaudio.mkv", face_frames(20))
    truncated_clip(root / "truncated.mp4", face_frames(40))
    (root / "notes.mp4").write_text("this is a text file someone renamed to .mp4\n")
    return root


def _clip(name: str, form: str = "video") -> dict:
    return {"clip_id": f"footage:{name}", "corpus": "footage", "sha256": "0" * 64, "media_path": name,
            "media_form": form, "width": None, "height": None}  # fmt: skip


@pytest.fixture(scope="module")
def rows(corpus) -> dict[str, dict]:
    extractor = ClipExtractor(ExtractConfig(n_frames=8, frame_size=144), {"footage": str(corpus)})
    names = ["face.mp4", "noface.mp4", "silent.mp4", "badaudio.mkv", "truncated.mp4", "notes.mp4", "gone.mp4"]
    clips = [_clip(n) for n in names] + [_clip("voice.wav", "audio")]
    table = extractor(pa.Table.from_pylist(clips))
    assert table.schema.equals(FEATURES, check_metadata=False)
    assert table.num_rows == len(clips)  # every clip gets its row, whatever broke
    return {r["clip_id"].split(":")[1]: r for r in table.to_pylist()}


def test_face_is_found_and_cropped_in_every_frame_of_a_face_clip(rows):
    face = rows["face.mp4"]
    assert face["error"] is None
    assert face["face_share"] == 1.0
    assert len(face["frame_indices"]) == 8 and len(face["frames_jpeg"]) == 8
    crop = decode_jpeg(face["face_crops_jpeg"][0])
    assert crop.shape == (112, 112, 3)
    box = face["face_boxes"][0]
    assert box["score"] > 0.95 and 0 <= box["x1"] < box["x2"] <= face["frame_width"]
    assert len(face["face_landmarks"][0]) == 10


def test_no_face_is_recorded_not_dropped(rows):
    noface = rows["noface.mp4"]
    assert noface["error"] is None and noface["face_share"] == 0.0
    assert len(noface["frame_indices"]) == 8
    assert noface["face_boxes"] == [None] * 8 and noface["face_crops_jpeg"] == [None] * 8


def test_audio_features_have_their_shapes(rows):
    face = rows["face.mp4"]
    assert face["audio_sample_rate"] == 16000 and face["audio_reason"] is None
    assert len(face["audio_pcm16"]) == 2 * round(face["audio_duration_s"] * 16000)
    assert len(face["log_mel"][0]) == 80 and abs(len(face["log_mel"]) - 201) <= 11
    assert len(face["egemaps"]) == 88 and np.isfinite(face["egemaps"]).all()


def test_silent_video_has_null_audio_with_a_reason_and_no_error(rows):
    silent = rows["silent.mp4"]
    assert silent["error"] is None and silent["face_share"] == 1.0
    assert silent["audio_reason"] == "no_audio_stream"
    assert silent["audio_pcm16"] is None and silent["log_mel"] is None and silent["egemaps"] is None


def test_audio_only_clip_has_audio_and_no_frames(rows):
    voice = rows["voice.wav"]
    assert voice["error"] is None and voice["frame_indices"] is None and voice["face_share"] is None
    assert len(voice["egemaps"]) == 88


def test_broken_inputs_are_error_rows(rows):
    assert rows["badaudio.mkv"]["error"] == "audio_decode_failed"
    assert rows["badaudio.mkv"]["face_share"] == 1.0  # the video part still extracted
    assert rows["truncated.mp4"]["error"] == "decode_failed"
    assert rows["notes.mp4"]["error"] == "decode_failed"
    assert rows["gone.mp4"]["error"] == "missing_media"
    assert all(rows[n]["error_detail"] for n in ("badaudio.mkv", "truncated.mp4", "notes.mp4", "gone.mp4"))


def test_extraction_rows_summarise_rows(rows):
    table = pa.Table.from_pylist(list(rows.values()), schema=FEATURES)
    ext = {r["clip_id"].split(":")[1]: r for r in extraction_rows(table).to_pylist()}
    assert ext["face.mp4"]["n_sampled"] == 8 and ext["face.mp4"]["n_log_mel_bins"] == 80
    assert ext["face.mp4"]["n_egemaps"] == 88
    assert ext["silent.mp4"]["n_egemaps"] is None and ext["silent.mp4"]["audio_reason"] == "no_audio_stream"
    assert ext["voice.wav"]["n_sampled"] is None
