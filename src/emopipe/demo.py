"""Generate a small demo corpus in the real RAVDESS layout, with real media, deterministically.

`Actor_01` … `Actor_NN` folders hold `01-01-EE-II-01-01-AA.mp4` (H.264 video + AAC audio, full-AV speech)
and, when asked, the matching audio-only `03-01-EE-II-01-01-AA.wav` (16-bit PCM). Each actor records every
one of the eight emotions once (strong intensity except neutral, which has no strong take). The picture pans
across one public-domain photograph of a face (scikit-image's astronaut), tinted per actor and emotion, and the
sound is a tone whose pitch depends on the emotion: real streams that real decoders and face detectors read,
but one face for every "actor" and no acted emotion. With `faults`, four broken inputs are added so the
quarantine is exercised. `<root>/.emopipe-synthetic.json` says the corpus is generated, so reports, the datasheet,
the card and lineage never present it as real RAVDESS recordings (`read_synthetic_marker`).
"""

from __future__ import annotations

import functools
import json
import logging
import pathlib
import wave

import numpy as np

from emopipe.config import DemoConfig

log = logging.getLogger(__name__)

SYNTHETIC_FILE = ".emopipe-synthetic.json"  # {"generator": ..., "description": ...} in a generated corpus's root
AUDIO_RATE = 48_000  # RAVDESS ships 48 kHz audio
_PITCH = {1: 220.0, 2: 247.0, 3: 294.0, 4: 330.0, 5: 370.0, 6: 415.0, 7: 440.0, 8: 494.0}


@functools.cache
def _face_photo() -> np.ndarray | None:
    """A real photograph with a face (scikit-image's astronaut, public domain), when scikit-image is installed."""
    try:
        from skimage import data
    except ImportError:
        return None
    return data.astronaut()


def _frames(cfg: DemoConfig, actor: int, emotion: int, rng: np.random.Generator) -> np.ndarray:
    """(n, h, w, 3) uint8: a slow pan across a photograph of a face, tinted by actor and emotion.

    Without scikit-image, a disc moving across a coloured background stands in for the face.
    """
    n = max(1, round(cfg.seconds * cfg.fps))
    tint = np.array([0.85 + 0.006 * actor, 0.8 + 0.025 * emotion, 1.0 - 0.006 * actor], dtype=np.float32)
    noise = rng.integers(0, 12, size=(cfg.height, cfg.width, 1), dtype=np.uint8)
    out = np.empty((n, cfg.height, cfg.width, 3), dtype=np.uint8)
    photo = _face_photo()
    yy, xx = np.mgrid[0 : cfg.height, 0 : cfg.width]
    for i in range(n):
        if photo is not None:  # a 400x300 window (4:3) panning right, sampled to the frame size
            x0 = 30 + round(40 * i / max(1, n - 1))
            img = photo[20 + yy * 300 // cfg.height, x0 + xx * 400 // cfg.width].astype(np.float32) * tint
        else:
            cx = cfg.width * (0.25 + 0.5 * i / max(1, n - 1))
            cy = cfg.height / 2 + cfg.height / 8 * np.sin(2 * np.pi * i / n)
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(cfg.width, cfg.height) / 4) ** 2
            img = np.broadcast_to(tint * 160, (cfg.height, cfg.width, 3)).copy()
            img[disc] = (230, 190, 160)
        out[i] = np.clip(img + noise, 0, 255).astype(np.uint8)
    return out


def _tone(cfg: DemoConfig, actor: int, emotion: int, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 samples in [-1, 1]: an enveloped tone with a harmonic, pitch by emotion and actor, plus noise."""
    t = np.arange(int(cfg.seconds * AUDIO_RATE), dtype=np.float64) / AUDIO_RATE
    f = _PITCH[emotion] * (1 + 0.02 * (actor - 12))  # each actor has a voice of their own
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) * 20)
    tone = 0.3 * env * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t))
    return (tone + rng.normal(0, 0.01, size=t.shape)).astype(np.float32)


def write_mp4(path: pathlib.Path, frames: np.ndarray, fps: int, audio: np.ndarray | None) -> None:
    """Write H.264 (yuv420p) video plus optional mono AAC audio with PyAV, bit-exact for the same input."""
    import av  # heavy: imported only when media is written

    with av.open(str(path), mode="w", options={"fflags": "+bitexact"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"preset": "veryfast", "crf": "28", "threads": "1"}
        video.codec_context.flags |= av.codec.context.Flags.bitexact
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            astream.codec_context.flags |= av.codec.context.Flags.bitexact
        for img in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
        if astream is not None and audio is not None:
            step = 1024  # AAC frame size
            for start in range(0, len(audio), step):
                chunk = audio[start : start + step]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = AUDIO_RATE, start
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))


def write_wav(path: pathlib.Path, audio: np.ndarray) -> None:
    """16-bit PCM mono WAV, as RAVDESS ships its audio-only files."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes(pcm.tobytes())


def make_ravdess_demo(root: pathlib.Path, cfg: DemoConfig) -> pathlib.Path:
    """Write the demo corpus under `root` (skipped when a finished one is already there). Returns root."""
    root = pathlib.Path(root)
    marker = root / ".emopipe-demo"
    stamp = repr(cfg)
    if marker.is_file() and marker.read_text() == stamp:
        if not (root / SYNTHETIC_FILE).is_file():  # a demo written before the marker existed
            write_synthetic_marker(root, cfg)
        log.info("demo corpus already at %s", root)
        return root
    rng = np.random.default_rng(cfg.seed)
    for actor in range(1, cfg.actors + 1):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion in range(1, 9):
            intensity = 1 if emotion == 1 else 2
            stem = f"01-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}"
            audio = _tone(cfg, actor, emotion, rng)
            write_mp4(folder / f"01-{stem}.mp4", _frames(cfg, actor, emotion, rng), cfg.fps, audio)
            if cfg.audio_only:
                write_wav(folder / f"03-{stem}.wav", audio)
    if cfg.faults:
        _add_faults(root, cfg)
    write_synthetic_marker(root, cfg)
    marker.write_text(stamp)
    log.info("demo corpus written to %s", root)
    return root


def _add_faults(root: pathlib.Path, cfg: DemoConfig) -> None:
    """Broken inputs a real corpus copy may contain; each must end up in the quarantine with its reason."""
    good = root / "Actor_01" / "01-01-03-02-01-01-01.mp4"
    data = good.read_bytes()
    (root / "Actor_01" / "01-01-09-02-01-01-01.mp4").write_bytes(data)  # emotion code 09 does not exist
    (root / "Actor_01" / "01-01-03-02-01-01-01 (copy).mp4").write_bytes(data)  # breaks the naming convention
    last = f"{cfg.actors:02d}"
    (root / f"Actor_{last}" / f"01-01-03-02-01-02-{last}.mp4").write_bytes(b"")  # empty file
    (root / f"Actor_{last}" / f"01-01-04-02-01-02-{last}.mp4").write_bytes(data[:200])  # truncated download


def synthetic_description(cfg: DemoConfig) -> str:
    """What the demo corpus is, in the words the datasheet and the report print."""
    clips = cfg.actors * 8 * (2 if cfg.audio_only else 1)
    face = (
        "one public-domain photograph of a face (scikit-image's astronaut)"
        if _face_photo() is not None
        else ("a disc on a coloured background")
    )
    return (
        f"emopipe's demo generator (emopipe.demo) wrote {clips} clips in the RAVDESS file layout and naming, "
        f"{cfg.actors} numbered 'actors' x 8 emotions: every picture pans across {face}, tinted per actor and "
        "emotion, and every sound is a tone whose pitch depends on the emotion. Nobody was recorded and no emotion "
        "was portrayed; the labels and the gender come from the file names alone."
    )


def write_synthetic_marker(root: pathlib.Path, cfg: DemoConfig) -> pathlib.Path:
    """Write `<root>/.emopipe-synthetic.json`: which generator made the corpus and what it is."""
    from emopipe import __version__

    path = pathlib.Path(root) / SYNTHETIC_FILE
    record = {
        "generator": f"emopipe.demo.make_ravdess_demo {__version__}",
        "layout": "ravdess",
        "description": synthetic_description(cfg),
        "settings": {
            k: getattr(cfg, k) for k in ("actors", "seconds", "width", "height", "fps", "audio_only", "seed")
        },
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_synthetic_marker(root: pathlib.Path) -> dict[str, str] | None:
    """The generator's record of a corpus root ({"generator", "description", ...}), or None for a real corpus.

    A marker that cannot be read or has no description still says the corpus is generated, in those words.
    """
    path = pathlib.Path(root) / SYNTHETIC_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        description = f"the folder carries {SYNTHETIC_FILE}, the marker of a generated corpus."
    return {**{k: str(v) for k, v in data.items() if isinstance(v, str)}, "description": description}
