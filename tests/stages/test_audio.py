"""Audio: 16 kHz mono from any container, log-mel with the standard front end, eGeMAPS from openSMILE."""

import numpy as np
import pytest
from tests.corpora import index_frames, tone

from emopipe.demo import write_mp4, write_wav
from emopipe.stages import audio


def test_track_is_resampled_to_16k_mono_keeping_its_pitch(tmp_path):
    write_mp4(tmp_path / "c.mp4", index_frames(10), 10, tone(1.0, hz=440.0))  # 48 kHz AAC
    signal = audio.read_audio(tmp_path / "c.mp4")
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(signal.size - 16_000) < 1_100  # 1 s, give or take AAC priming
    spectrum = np.abs(np.fft.rfft(signal[2000:14000]))
    assert abs(np.argmax(spectrum) * 16_000 / 12_000 - 440.0) < 3


def test_log_mel_and_egemaps_shapes(tmp_path):
    write_wav(tmp_path / "a.wav", tone(2.0, hz=300.0))
    signal = audio.read_audio(tmp_path / "a.wav")
    mel = audio.log_mel(signal)
    assert mel.shape == (1 + signal.size // 160, 80) and mel.dtype == np.float32
    feats = audio.egemaps(signal)
    assert feats.shape == (88,) and np.isfinite(feats).all()
    names = audio.egemaps_names()
    assert len(names) == 88 and names[0].startswith("F0semitone")
    f0_mean = feats[0]  # F0 in semitones above 27.5 Hz: 300 Hz is 12*log2(300/27.5) = 41.4
    assert abs(f0_mean - 12 * np.log2(300 / 27.5)) < 1.0


def test_mel_filterbank_matches_transformers_slaney():
    from transformers.audio_utils import mel_filter_bank

    ref = mel_filter_bank(
        num_frequency_bins=201,
        num_mel_filters=80,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=16000,
        norm="slaney",
        mel_scale="slaney",
    )
    assert np.allclose(audio.mel_filterbank(), ref.T, atol=1e-6)


def test_a_tone_lights_up_its_mel_band():
    t = np.arange(16_000) / 16_000
    mel = audio.log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    centres = np.argmax(audio.mel_filterbank(), axis=1) * 8000 / 200
    assert abs(centres[np.argmax(mel[50])] - 1000) < 60


def test_pcm16_round_trip():
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    assert np.allclose(audio.from_pcm16(audio.to_pcm16(x)), x, atol=1 / 32767)


def test_silent_video_has_no_audio_stream(tmp_path):
    write_mp4(tmp_path / "silent.mp4", index_frames(5), 10, None)
    with pytest.raises(audio.AudioError) as err:
        audio.read_audio(tmp_path / "silent.mp4")
    assert err.value.code == "no_audio_stream"


def test_broken_track_is_a_decode_failure(tmp_path):
    from tests.corpora import broken_audio_clip

    broken_audio_clip(tmp_path / "b.mkv", index_frames(10))
    with pytest.raises(audio.AudioError) as err:
        audio.read_audio(tmp_path / "b.mkv")
    assert err.value.code == "audio_decode_failed"


def _reference_log_mel(signal: np.ndarray) -> np.ndarray:
    """The front end computed the direct way, every window at once (what log_mel did before it was chunked)."""
    pad = audio.N_FFT // 2
    padded = np.pad(signal.astype(np.float32), pad, mode="reflect")
    n_frames = 1 + (padded.size - audio.N_FFT) // audio.HOP_LENGTH
    idx = np.arange(audio.N_FFT)[None, :] + audio.HOP_LENGTH * np.arange(n_frames)[:, None]
    window = np.hanning(audio.WIN_LENGTH + 1)[:-1].astype(np.float32)
    power = np.abs(np.fft.rfft(padded[idx] * window, n=audio.N_FFT, axis=1)) ** 2
    return np.log10(np.maximum(power.astype(np.float32) @ audio.mel_filterbank().T, 1e-10))


def test_chunked_log_mel_equals_the_direct_computation():
    signal = np.random.default_rng(0).normal(0, 0.2, 16_000 * 3 + 77).astype(np.float32)
    reference = _reference_log_mel(signal)
    for chunk in (1, 7, 300, 100_000):
        mel = audio.log_mel(signal, chunk_frames=chunk)
        assert mel.shape == reference.shape == (1 + signal.size // 160, 80)
        assert np.allclose(mel, reference, atol=1e-4)


def test_max_seconds_keeps_the_first_seconds_of_the_track(tmp_path):
    from tests.corpora import long_clip

    long_clip(tmp_path / "long.mp4", 12)
    whole = audio.read_audio(tmp_path / "long.mp4")
    first = audio.read_audio(tmp_path / "long.mp4", max_seconds=5)
    assert abs(whole.size - 12 * 16_000) < 2_100 and first.size == 5 * 16_000
    assert np.array_equal(first, whole[: first.size])  # the same samples: a window, not a resampling


def test_a_features_row_is_bounded_by_max_audio_s(tmp_path):
    """However long the clip, PCM and log-mel cover at most max_audio_s (here 2 s of a 9 s clip)."""
    import pyarrow as pa
    from tests.corpora import long_clip

    from emopipe.config import ExtractConfig
    from emopipe.stages.extract import ClipExtractor

    long_clip(tmp_path / "long.mp4", 9)
    cfg = ExtractConfig(face_detector="haar", n_frames=4, frame_size=48, max_audio_s=2.0)
    clip = {"clip_id": "footage:long.mp4", "corpus": "footage", "sha256": "0" * 64, "media_path": "long.mp4",
            "media_form": "video", "width": 64, "height": 48}  # fmt: skip
    table = ClipExtractor(cfg, {"footage": str(tmp_path)})(pa.Table.from_pylist([clip]))
    row = table.to_pylist()[0]
    assert row["error"] is None and row["audio_duration_s"] == 2.0
    assert len(row["audio_pcm16"]) == 2 * 2 * 16_000
    assert len(row["log_mel"]) == 1 + 2 * 16_000 // 160 and len(row["log_mel"][0]) == 80
    assert len(row["egemaps"]) == 88 and np.isfinite(row["egemaps"]).all()
    assert row["frame_indices"][-1] > 70  # the frames still span the whole clip (9 s at 10 fps), not the audio window
    assert table.column("log_mel").nbytes < 2 * 201 * 80 * 4
