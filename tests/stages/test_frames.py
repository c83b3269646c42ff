"""Uniform frame sampling: exact indices, and the decoded pixels are those frames."""

import numpy as np
import pytest
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
