"""Audio features: the track as 16 kHz mono, an 80-bin log-mel spectrogram and openSMILE's eGeMAPS functionals.

Decoding and resampling go through FFmpeg (PyAV's `AudioResampler`), which is also what reads the probe.
The log-mel follows the common speech front end (25 ms Hann window, 10 ms hop, 80 Slaney mel bands,
log10 power); eGeMAPSv02 functionals (88 values) come from the `opensmile` package, the field's reference.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

SAMPLE_RATE = 16_000
N_MELS = 80
WIN_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms
N_FFT = 400


class AudioError(Exception):
    """No usable audio. `code`: no_audio_stream (the clip has none) or audio_decode_failed (a broken track)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def read_audio(path: pathlib.Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """The first audio track of a media file as float32 mono at `sample_rate`, in [-1, 1].

    Decoded and resampled a frame at a time straight into one float32 buffer, so memory is the signal itself
    (no list of chunks). With `max_seconds`, only the first `max_seconds` of the track are kept and decoding
    stops there: a 30-minute clip costs what its first minute costs.

    Raises:
        AudioError: `no_audio_stream` when there is no audio track (or `path` is a frame folder),
            `audio_decode_failed` when the track cannot be decoded or decodes to nothing.
    """
    import av

    if path.is_dir():
        raise AudioError("no_audio_stream", "a frame folder has no audio")
    cap = None if max_seconds is None else max(1, int(round(max_seconds * sample_rate)))
    buffer = np.empty(cap if cap is not None else sample_rate * 10, dtype=np.float32)
    n = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError("no_audio_stream", "the file has no audio track")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            frames = container.decode(stream)
            while cap is None or n < cap:
                frame = next(frames, None)
                for chunk in resampler.resample(frame):
                    buffer, n = _append(buffer, n, chunk.to_ndarray().reshape(-1), cap)
                if frame is None:  # the resampler is flushed: the track is over
                    break
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise AudioError("audio_decode_failed", f"{type(err).__name__}: {err}"[:300]) from err
    if n == 0:
        raise AudioError("audio_decode_failed", "the audio track decoded to no samples")
    signal = buffer[:n]
    np.clip(signal, -1.0, 1.0, out=signal)
    return signal


def _append(buffer: np.ndarray, n: int, samples: np.ndarray, cap: int | None) -> tuple[np.ndarray, int]:
    """Copy `samples` into `buffer` at `n` (growing it by doubling when uncapped; dropping what passes `cap`)."""
    if cap is not None:
        samples = samples[: cap - n]
    if n + samples.size > buffer.size:
        grown = np.empty(max(2 * buffer.size, n + samples.size), dtype=np.float32)
        grown[:n] = buffer[:n]
        buffer = grown
    buffer[n : n + samples.size] = samples
    return buffer, n + samples.size


def to_pcm16(signal: np.ndarray) -> bytes:
    """float32 [-1, 1] -> little-endian int16 PCM bytes (the compact stored form)."""
    return (np.clip(signal, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Inverse of `to_pcm16`: float32 samples in [-1, 1]."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa's default)."""
    hz = np.asarray(hz, dtype=np.float64)
    lin = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, lin)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    lin = mel * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, lin)


@functools.cache
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney mel scale, area-normalised ('slaney' norm)."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = mel_points[:-2, None], mel_points[1:-1, None], mel_points[2:, None]
    rising = (fft_freqs[None, :] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(signal: np.ndarray, sample_rate: int = SAMPLE_RATE, chunk_frames: int = 2048) -> np.ndarray:
    """log10 mel power spectrogram, float32 [frames, 80]; frames = 1 + len(signal) // 160 (centred windows).

    Computed `chunk_frames` windows at a time into the output array, so the working memory is a few MB
    whatever the signal's length (windowing every frame at once took ~30x the signal's size).
    """
    pad = N_FFT // 2
    padded = np.pad(signal.astype(np.float32, copy=False), pad, mode="reflect" if signal.size > pad else "constant")
    n_frames = 1 + (padded.size - N_FFT) // HOP_LENGTH
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]  # a view, no copy
    window = np.hanning(WIN_LENGTH + 1)[:-1].astype(np.float32)  # periodic Hann
    bank = mel_filterbank(sample_rate).T
    out = np.empty((n_frames, N_MELS), dtype=np.float32)
    for start in range(0, n_frames, chunk_frames):
        power = np.abs(np.fft.rfft(windows[start : start + chunk_frames] * window, n=N_FFT, axis=1)) ** 2
        mel = power.astype(np.float32) @ bank
        out[start : start + chunk_frames] = np.log10(np.maximum(mel, 1e-10))
    return out


@functools.cache
def _smile():
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )


def egemaps_names() -> list[str]:
    """Names of the 88 eGeMAPSv02 functionals, in the order `egemaps` returns them."""
    return list(_smile().feature_names)


def egemaps(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """eGeMAPSv02 functionals of a mono signal: float32 [88]."""
    values = _smile().process_signal(signal, sample_rate).to_numpy(dtype=np.float32)
    return values.reshape(-1)
