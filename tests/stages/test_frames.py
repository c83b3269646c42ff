"""Uniform frame sampling: exact indices, and the decoded pixels are those frames."""

import numpy as np
import pytest
from tests.conftest import needs_decoder
from tests.corpora import index_frames

from emopipe.demo import write_mp4
from emopipe.stages import frames


def test_indices_are_segment_centres():
    assert frames.sample_indices(160, 16) == list(range(5, 160, 10))
    assert frames.sample_indices(16, 16) == list(range(16))
    assert frames.sample_indices(1, 4) == [0, 0, 0, 0]


@pytest.mark.parametrize("n_frames", [7, 16, 30, 75, 101, 1000])
def test_indices_are_uniform_sorted_and_in_range(n_frames):
    idx = frames.sample_indices(n_frames, 16)
    assert len(idx) == 16 and idx == sorted(idx)
    assert 0 <= idx[0] and idx[-1] < n_frames
    if n_frames >= 16:
        assert len(set(idx)) == 16
        gaps = np.diff(idx)
        assert gaps.max() - gaps.min() <= 1  # uniform up to rounding
        assert abs((idx[0] + idx[-1]) / 2 - (n_frames - 1) / 2) <= 1  # centred on the clip


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError):
        frames.sample_indices(0, 16)


def test_video_frames_are_the_sampled_ones_resized_at_decode(tmp_path):
    path = tmp_path / "index.mp4"
    write_mp4(path, index_frames(30, size=(96, 64)), 10, None)  # frame i has grey level 8*i+4
    got = frames.read_video(path, 8, short_side=32)
    assert got.n_source_frames == 30
    assert got.indices == frames.sample_indices(30, 8)
    assert got.frames.shape == (8, 32, 48, 3)  # aspect kept: 96x64 -> 48x32
    levels = got.frames.reshape(8, -1).mean(axis=1)
    assert np.allclose(levels, [8 * i + 4 for i in got.indices], atol=4)
    assert np.allclose(got.times_s, [i / 10 for i in got.indices], atol=1e-3)


def test_frame_folder_is_sampled_in_natural_order(tmp_path):
    import cv2

    folder = tmp_path / "00017"
    folder.mkdir()
    for i, img in enumerate(index_frames(20), start=1):  # 1.jpg … 20.jpg, as DFEW's clip_224x224 folders
        cv2.imwrite(str(folder / f"{i}.jpg"), img)
    got = frames.read_frames(folder, 4, short_side=48)
    assert got.n_source_frames == 20
    assert np.allclose(got.frames.reshape(4, -1).mean(axis=1), [8 * i + 4 for i in got.indices], atol=3)


def test_audio_file_has_no_video_stream(tmp_path):
    from tests.corpora import tone

    from emopipe.demo import write_wav

    write_wav(tmp_path / "a.wav", tone(0.5))
    with pytest.raises(frames.FrameError) as err:
        frames.read_video(tmp_path / "a.wav", 4, 32)
    assert err.value.code == "no_video_stream"


# ---------------------------------------------------------------------------------------------------------------------
# The three decoders: same indices and counts, pixels within a tolerance, the same errors.
# Tolerance: the resizers differ (decord and PyAV: FFmpeg's bilinear swscale, but decord resizes some widths with
# OpenCV instead; torchcodec: bilinear with anti-aliasing), so pixels of a real picture downscaled ~2x (as 360p to
# 224) differ by a mean of at most ~1 grey level, and by more than 8 only at 1 % of them (edges).
MEAN_TOLERANCE, P99_TOLERANCE = 1.5, 8


def _available(decoder: str) -> bool:
    try:
        frames.check_decoder(decoder)
    except frames.DecoderUnavailable:
        return False
    return True


def _avi(path, images, fps=25):
    """MPEG-4 Part 2 in AVI, as DFEW's movie clips."""
    import av

    with av.open(str(path), mode="w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = images.shape[2], images.shape[1], "yuv420p"
        video.bit_rate = 800_000
        for img in images:
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from tests.corpora import face_frames

    root = tmp_path_factory.mktemp("decoders")
    write_mp4(root / "index.mp4", index_frames(30, size=(96, 64)), 10, None)
    write_mp4(root / "face.mp4", face_frames(45, size=(320, 240)), 15, None)
    _avi(root / "face.avi", face_frames(40, size=(320, 176)))
    write_mp4(root / "short.mp4", index_frames(5, size=(96, 64)), 10, None)
    return root


@pytest.mark.parametrize("decoder", ["pyav", "torchcodec"])
@pytest.mark.parametrize("name", ["index.mp4", "face.mp4", "face.avi", "short.mp4"])
def test_decoders_read_the_same_frames(clips, decoder, name):
    needs_decoder(decoder, decoder)
    short = (
        48 if name.endswith(".mp4") and "face" not in name else 112
    )  # the face clips: a ~2x downscale, as 360p->224
    reference = frames.read_video(clips / name, 8, short_side=short, decoder="decord")
    got = frames.read_video(clips / name, 8, short_side=short, decoder=decoder)
    assert got.n_source_frames == reference.n_source_frames
    assert got.indices == reference.indices
    assert got.frames.shape == reference.frames.shape and got.frames.dtype == np.uint8
    diff = np.abs(got.frames.astype(int) - reference.frames.astype(int))
    assert diff.mean() <= MEAN_TOLERANCE and np.percentile(diff, 99) <= P99_TOLERANCE, (diff.mean(), diff.max())
    assert np.allclose(got.times_s, reference.times_s, atol=1e-3)
    if name.startswith("index"):  # flat frames: which frame was read is exact
        levels = got.frames.reshape(8, -1).mean(axis=1)
        assert np.allclose(levels, [8 * i + 4 for i in got.indices], atol=4)


@pytest.mark.parametrize("decoder", frames.DECODERS)
def test_every_decoder_reports_broken_files_the_same_way(tmp_path, decoder):
    from tests.corpora import face_frames, tone, truncated_clip

    from emopipe.demo import write_wav

    needs_decoder(decoder, decoder)
    truncated_clip(tmp_path / "cut.mp4", face_frames(40))
    (tmp_path / "notes.mp4").write_text("this is a text file someone renamed to .mp4\n")
    write_wav(tmp_path / "a.wav", tone(0.5))
    for name, code in (("cut.mp4", "decode_failed"), ("notes.mp4", "decode_failed"), ("a.wav", "no_video_stream")):
        with pytest.raises(frames.FrameError) as err:
            frames.read_video(tmp_path / name, 4, 32, decoder=decoder)
        assert err.value.code == code, (name, err.value.detail)
        assert err.value.detail and "\n" not in err.value.detail


def test_an_unknown_decoder_is_one_line():
    with pytest.raises(frames.DecoderUnavailable, match=r"^extract_features.decoder must be one of decord, pyav, "):
        frames.check_decoder("opencv")
    with pytest.raises(frames.DecoderUnavailable):
        frames.read_video(__import__("pathlib").Path("x.mp4"), 4, 32, decoder="opencv")


@pytest.mark.skipif(_available("torchcodec"), reason="torchcodec loads here: FFmpeg's shared libraries are installed")
def test_torchcodec_without_ffmpeg_names_what_is_missing():
    with pytest.raises(frames.DecoderUnavailable) as err:
        frames.check_decoder("torchcodec")
    text = str(err.value)
    assert "\n" not in text and "torchcodec" in text
    assert "FFmpeg" in text or "pip install torchcodec" in text


def test_a_frame_size_decord_cannot_decode_is_read_with_pyav(tmp_path):
    """decord 0.6 fails on frames narrower than 32 px (which the probe lets through from 16 px): before, every such
    clip was a decode_failed row; now the same FFmpeg decodes it through PyAV."""
    path = tmp_path / "narrow.mp4"
    write_mp4(path, index_frames(20, (16, 64)), 10, None)  # 16 px wide, 64 tall
    import decord

    with pytest.raises(decord.DECORDError):  # the decord bug this guards against (a new decord may fix it)
        decord.VideoReader(str(path), num_threads=1).get_batch([0]).asnumpy()
    got = frames.read_frames(path, 4, 224, decoder="decord")
    want = frames.read_frames(path, 4, 224, decoder="pyav")
    assert got.frames.shape == want.frames.shape == (4, 64, 16, 3)
    assert got.indices == want.indices and np.array_equal(got.frames, want.frames)


def test_pyav_skips_frames_no_sampled_frame_needs_and_reads_the_same_pixels(tmp_path):
    """The default decoder drops the packets of non-reference B-frames that are not sampled (skip_frame): on H.264
    with B-frames the sampled frames must come out bit-identical to decoding every frame."""
    import av
    from av.video.frame import PictureType
    from tests.corpora import face_frames

    path = tmp_path / "bframes.mp4"
    write_mp4(path, face_frames(60, size=(320, 240)), 15, None)  # x264 veryfast: B-frames, some not referenced
    with av.open(str(path)) as container:
        every = [(PictureType(f.pict_type), f) for f in container.decode(video=0)]
        assert sum(kind == PictureType.B for kind, _ in every) >= 20  # the file has B-frames to skip
        got = frames.read_frames(path, 8, 112, decoder="pyav")
        want = [
            every[i][1].reformat(width=150, height=112, format="rgb24", interpolation="BILINEAR") for i in got.indices
        ]
    assert got.indices == frames.sample_indices(60, 8)
    assert np.array_equal(got.frames, np.stack([f.to_ndarray() for f in want]))
    assert got.times_s == [float(every[i][1].time) for i in got.indices]
