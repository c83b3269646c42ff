"""Face detection on real photos (scikit-image's astronaut, cameraman, LFW faces): MTCNN with facenet-pytorch's
weights, the tracked MTCNN against the full cascade on moving, zooming and cutting clips, the Haar fallback, the
pure-torch NMS and area resampling against plain references, and the aligned crops."""

import shutil

import numpy as np
import pytest
from tests.moving_faces import agreement, load_photos, moving_face_clip

from emopipe import weights
from emopipe.stages import faces

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

# Where the astronaut's face is in skimage.data.astronaut() (512x512), checked by eye: forehead to chin, ear to ear.
ASTRONAUT_FACE = (175.0, 55.0, 275.0, 180.0)


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def mtcnn():
    return faces.MTCNNDetector()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def grey(shape=(512, 512, 3)):
    return np.full(shape, 128, dtype=np.uint8)


def noise(shape=(512, 512, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_mtcnn_finds_the_astronaut(mtcnn, astronaut):
    boxes, points, image_inds = mtcnn.detect_all(astronaut[None])
    assert len(boxes) == 1 and image_inds.tolist() == [0]  # one face in the photo, nothing else
    (face,) = mtcnn.detect(astronaut[None])
    assert face is not None and face.score > 0.95
    assert iou(face.box, ASTRONAUT_FACE) > 0.6
    x1, y1, x2, y2 = face.box
    assert len(face.landmarks) == 5
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


@pytest.mark.parametrize("kind", ["coffee", "grey", "noise"])
def test_mtcnn_frames_without_faces(mtcnn, kind):
    frame = {"coffee": skdata.coffee, "grey": grey, "noise": noise}[kind]()
    assert mtcnn.detect(frame[None]) == [None]


def test_mtcnn_batch_is_aligned_with_input(mtcnn, astronaut):
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    out = mtcnn.detect(np.stack([astronaut, grey(), mirrored, noise()]))
    assert len(out) == 4 and out[1] is None and out[3] is None
    (alone,) = mtcnn.detect(astronaut[None])
    assert out[0].box == pytest.approx(alone.box, abs=0.01)  # other frames in the batch change nothing
    x1, y1, x2, y2 = alone.box
    assert out[2] is not None and iou(out[2].box, (512 - x2, y1, 512 - x1, y2)) > 0.8
    assert out[2].landmarks[0][0] < out[2].landmarks[1][0]  # still the left eye first in the mirrored frame


def test_mtcnn_small_frame(mtcnn, astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    (face,) = mtcnn.detect(small[None])
    assert face is not None and face.score > 0.95
    assert iou(face.box, tuple(v / 2 for v in ASTRONAUT_FACE)) > 0.6


def test_mtcnn_degenerate_inputs(mtcnn):
    assert mtcnn.detect(np.zeros((0, 64, 64, 3), np.uint8)) == []
    assert mtcnn.detect(np.zeros((2, 10, 15, 3), np.uint8)) == [None, None]  # smaller than the smallest face
    with pytest.raises(ValueError, match="uint8"):
        mtcnn.detect(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        mtcnn.detect(np.zeros((64, 64, 3), np.uint8))


def test_pyramid_scales_follow_facenet():
    scales = faces.pyramid_scales(224, 224, 20)
    # 224 * 0.6 = 134.4 shrinks by 0.709 per level while >= 12: 134.4, 95.3, ..., 12.1 -> 8 levels.
    assert len(scales) == 8 and scales[0] == pytest.approx(0.6)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert faces.pyramid_scales(11, 500, 12) == []


def reference_nms(boxes, scores, groups, threshold, *, mode, extra):
    keep = []
    for group in np.unique(groups):
        ids = np.where(groups == group)[0]
        order = list(ids[np.argsort(-scores[ids], kind="stable")])
        while order:
            i = order.pop(0)
            keep.append(i)
            survivors = []
            for j in order:
                w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + extra)
                h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + extra)
                area_i = (boxes[i, 2] - boxes[i, 0] + extra) * (boxes[i, 3] - boxes[i, 1] + extra)
                area_j = (boxes[j, 2] - boxes[j, 0] + extra) * (boxes[j, 3] - boxes[j, 1] + extra)
                overlap = w * h / (min(area_i, area_j) if mode == "min" else area_i + area_j - w * h)
                if overlap <= threshold:
                    survivors.append(j)
            order = survivors
    return sorted(keep)


@pytest.mark.parametrize("matrix_limit", [2048, 0], ids=["matrix", "loop"])
@pytest.mark.parametrize(("mode", "plus_one"), [("union", False), ("min", True)])
def test_nms_matches_greedy_reference(monkeypatch, matrix_limit, mode, plus_one):
    import torch

    monkeypatch.setattr(faces, "NMS_MATRIX_LIMIT", matrix_limit)
    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 60, (300, 2))], axis=1).astype(np.float32)
    scores = rng.random(300).astype(np.float32)
    groups = rng.integers(0, 3, 300)
    got = faces.nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.5, mode=mode,
                    plus_one=plus_one)  # fmt: skip
    assert sorted(got.tolist()) == reference_nms(boxes, scores, groups, 0.5, mode=mode, extra=1.0 if plus_one else 0.0)
    assert faces.nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = faces.ARCFACE_TEMPLATE
    dst = src @ (scale * rotation).T + shift
    matrix = faces.similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)


@pytest.mark.parametrize("size", [112, 224])
def test_align_crop(mtcnn, astronaut, size):
    (face,) = mtcnn.detect(astronaut[None])
    aligned = faces.align_crop(astronaut, face, size)
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    # The landmarks land near the template; the eyes sit where ArcFace puts them, not in the black border.
    matrix = faces.similarity_transform(np.array(face.landmarks), faces.ARCFACE_TEMPLATE * size / 112)
    mapped = np.array(face.landmarks) @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - faces.ARCFACE_TEMPLATE * size / 112).max() < 0.1 * size
    boxed = faces.align_crop(astronaut, faces.Face(face.box, face.score, None), size)
    assert boxed.shape == (size, size, 3) and boxed.dtype == np.uint8
    assert aligned.mean() > 60 and boxed.mean() > 60


def test_align_crop_pads_at_the_frame_border(astronaut):
    crop = faces.align_crop(astronaut, faces.Face((-50.0, -50.0, 50.0, 50.0), 1.0, None), 112)
    assert crop.shape == (112, 112, 3)
    assert crop[:40, :40].max() == 0 and crop[-20:, -20:].mean() > 0  # black outside the frame, image inside


def test_haar_finds_the_astronaut(astronaut):
    haar = faces.HaarDetector()
    face, nothing = haar.detect(np.stack([astronaut, grey()]))
    assert nothing is None
    assert face.score == 1.0 and face.landmarks is None
    assert iou(face.box, ASTRONAUT_FACE) > 0.5


def test_make_detector(tmp_path):
    assert isinstance(faces.make_detector("haar"), faces.HaarDetector)
    with pytest.raises(ValueError, match="unknown face detector 'nope'; known: mtcnn, mtcnn_full, haar"):
        faces.make_detector("nope")
    with pytest.raises(ValueError, match="no weights"):
        faces.make_detector("haar", weights=str(tmp_path))
    for name in faces.MTCNN_FILES:
        shutil.copy(weights.path("mtcnn", name), tmp_path / name)
    detector = faces.make_detector("mtcnn", weights=str(tmp_path), min_face_size=40, redetect_every=4)
    assert isinstance(detector, faces.TrackingMTCNN) and detector.min_face_size == 40
    assert detector.redetect_every == 4 and detector.name == "mtcnn"
    full = faces.make_detector("mtcnn_full", weights=str(tmp_path), min_face_fraction=0.2)
    assert type(full) is faces.MTCNNDetector and full.min_face(224, 398) == pytest.approx(44.8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"redetect_every": -1}, "redetect_every must be >= 0"),
        ({"track_min_score": 0.5}, r"track_min_score must be in \[min_score, 1\]"),
        ({"min_face_fraction": 1.0}, r"min_face_fraction must be in \[0, 1\)"),
    ],
)
def test_tracker_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        faces.TrackingMTCNN(**kwargs)


def test_user_weights_dir_missing_a_file(tmp_path):
    shutil.copy(weights.path("mtcnn", "pnet.pt"), tmp_path / "pnet.pt")
    with pytest.raises(FileNotFoundError, match=r"lacks rnet\.pt, onet\.pt"):
        faces.MTCNNDetector(weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="onet.pt"):
        faces.make_detector("mtcnn", weights=str(tmp_path / "nowhere"))


# ---------------------------------------------------------------------------------------------------------------------
# Area resampling from summed-area tables: the same values as torch's area interpolation (facenet's imresample).


def test_whole_frame_levels_equal_torch_area_interpolation():
    import torch
    from torch.nn.functional import interpolate

    frames = noise((3, 97, 131, 3), seed=4)
    sums = faces._Sums(frames, [0, 1, 2], torch.device("cpu"))
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    for size in [(59, 80), (12, 17), (97, 131), (140, 200)]:  # down, far down, same, up
        expected = interpolate(images, size=size, mode="area")
        assert torch.allclose(sums.whole(size), expected, atol=1e-3), size


def test_crops_equal_per_box_interpolation_clipped_to_the_frame():
    import torch
    from torch.nn.functional import interpolate

    frames = noise((2, 120, 160, 3), seed=5)
    boxes = torch.tensor([[10.7, 20.2, 60.9, 70.1], [-15.0, -8.0, 30.0, 40.0], [100.0, 90.0, 190.0, 150.0],
                          [50.0, 50.0, 55.5, 53.0], [170.0, 10.0, 200.0, 40.0]])  # fmt: skip
    tables = torch.tensor([0, 1, 0, 1, 0])
    sums = faces._Sums(frames, [0, 1], torch.device("cpu"))
    crops, valid = faces._crops(sums, boxes, tables, 24)
    assert valid.tolist() == [True, True, True, True, False]  # the last box lies outside the frame
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    for crop, box, t in zip(crops, boxes[valid], tables[valid], strict=True):
        x1, y1, x2, y2 = (int(v) for v in box.trunc())
        x, y, ex, ey = max(x1, 1), max(y1, 1), min(x2, 160), min(y2, 120)  # facenet's `pad`
        region = images[t, :, y - 1 : ey, x - 1 : ex][None]
        expected = (interpolate(region, size=(24, 24), mode="area")[0] - 127.5) * 0.0078125
        assert torch.allclose(crop, expected, atol=1e-4)


def test_full_cascade_batch_equals_frame_by_frame(mtcnn):
    photos = load_photos()
    frames, _ = moving_face_clip(3, photos, n=6)
    together = mtcnn.detect(frames)
    alone = [mtcnn.detect(f[None])[0] for f in frames]
    for a, b in zip(together, alone, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.box == pytest.approx(b.box, abs=1e-3) and a.source == "detected"


# ---------------------------------------------------------------------------------------------------------------------
# The tracked MTCNN (face_detector: mtcnn) against the full cascade on every frame (mtcnn_full).


@pytest.fixture(scope="module")
def photos():
    return load_photos()


@pytest.fixture(scope="module")
def tracker():
    return faces.TrackingMTCNN()


def test_tracking_finds_the_faces_full_mtcnn_finds_and_invents_none(mtcnn, tracker, photos):
    """Clips that pan, zoom and cut between real faces and face-free photos: every sampled frame is compared."""
    reference, tracked, no_face = [], [], []
    for seed in range(10):
        frames, shots = moving_face_clip(seed, photos)
        reference += mtcnn.detect(frames)
        tracked += tracker.detect(frames)
        no_face += [not shot.has_face for shot in shots for _ in range(shot.frames)]
    found = agreement(reference, tracked, min_iou=0.8)
    assert found["reference_faces"] >= 120 and sum(no_face) >= 10  # the check has faces and face-free frames
    assert found["recall"] >= 0.99, found
    assert not any(t is not None for t, empty in zip(tracked, no_face, strict=True) if empty)  # nothing invented
    assert not any(r is not None for r, empty in zip(reference, no_face, strict=True) if empty)  # nor by the reference
    sources = [t.source for t in tracked if t is not None]
    assert sources.count("tracked") > 2 * sources.count("detected")  # the point: most faces are followed, not searched


def test_tracking_follows_a_face_through_a_cut_and_frames_without_one(tracker, photos, astronaut):
    import cv2

    def view(photo, x0, scale=0.55):
        matrix = np.float32([[scale, 0, -x0 * scale], [0, scale, -20 * scale]])
        return cv2.warpAffine(photo, matrix, (398, 224), borderMode=cv2.BORDER_REFLECT)

    camera = photos["camera"]
    frames = np.stack(
        [view(astronaut, 40 + 6 * i) for i in range(6)]  # the astronaut pans
        + [view(photos["coffee"], 10 * i, 0.6) for i in range(3)]  # a cut to a face-free photo
        + [view(camera, 20 + 4 * i, 0.9) for i in range(5)]  # a cut to the cameraman elsewhere in the frame
    )
    found = tracker.detect(frames)
    sources = [None if f is None else f.source for f in found]
    # After a frame without a face the next NO_FACE_LOOKAHEAD frames (here 7..10) go to the full cascade together.
    assert faces.NO_FACE_LOOKAHEAD == 4
    assert sources == ["detected"] + ["tracked"] * 5 + [None] * 3 + ["detected"] * 2 + ["tracked"] * 3
    reference = faces.MTCNNDetector().detect(frames)
    assert agreement(reference, found)["recall"] == 1.0


def test_tracker_degenerate_inputs(tracker, astronaut):
    import torch

    assert tracker.detect(np.zeros((0, 64, 64, 3), np.uint8)) == []
    assert tracker.detect(np.zeros((3, 10, 15, 3), np.uint8)) == [None] * 3  # smaller than the smallest face
    with pytest.raises(ValueError, match="uint8"):
        tracker.detect(np.zeros((1, 64, 64, 3), np.float32))
    # an anchor far outside the frame (MTCNN boxes are not clipped): nothing to follow there, no crash
    lost = faces.Face((900.0, 900.0, 1000.0, 1000.0), 0.99, None)
    with torch.inference_mode():
        assert tracker._track(astronaut[None], [0], [lost]) == [None]


def test_redetect_every_runs_the_full_cascade_on_schedule(photos):
    frames, _ = moving_face_clip(1, photos, n=12, no_face_share=0.0)
    frames = np.stack([frames[0]] * 12)  # one still face: only the schedule decides
    found = faces.TrackingMTCNN(redetect_every=4).detect(frames)
    assert [f.source[0] for f in found] == list("dtttdtttdttt")


def test_a_low_followed_score_sends_the_frame_to_the_full_cascade(photos, astronaut):
    strict = faces.TrackingMTCNN(track_min_score=1.0)  # no followed face can beat it: every frame is searched
    frames = np.stack([astronaut] * 3)
    found = strict.detect(frames)
    assert all(f is not None and f.source == "detected" for f in found)
    # frames 1 and 2 followed from 0 (both fail), 1 searched, 2 followed from 1 (fails), 2 searched
    assert strict.counts == {"full": 3, "tracked": 3}


def test_min_face_fraction_starts_the_pyramid_at_a_share_of_the_frame(astronaut):
    import cv2

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # the face is ~55 px of 256
    assert faces.MTCNNDetector(min_face_fraction=0.1).detect(small[None])[0] is not None
    assert faces.MTCNNDetector(min_face_fraction=0.5).detect(small[None])[0] is None  # looks for 128 px faces
    assert len(faces.pyramid_scales(256, 256, 0.5 * 256)) < len(faces.pyramid_scales(256, 256, 20))


def test_extractor_records_how_each_face_was_found(tmp_path, photos):
    import pyarrow as pa

    from emopipe.config import ExtractConfig
    from emopipe.demo import write_mp4
    from emopipe.stages.extract import ClipExtractor

    frames, shots = moving_face_clip(7, photos, n=30, no_face_share=0.0)
    write_mp4(tmp_path / "clip.mp4", frames, 10, None)
    clip = {"clip_id": "footage:clip.mp4", "corpus": "footage", "sha256": "0" * 64, "media_path": "clip.mp4",
            "media_form": "video", "width": None, "height": None}  # fmt: skip
    for detector in ("mtcnn", "mtcnn_full"):
        cfg = ExtractConfig(n_frames=8, face_detector=detector, audio=False)
        (row,) = ClipExtractor(cfg, {"footage": str(tmp_path)})(pa.Table.from_pylist([clip])).to_pylist()
        assert row["error"] is None and row["face_share"] == 1.0
        assert [b is None for b in row["face_boxes"]] == [s is None for s in row["face_box_sources"]]
        expected = {"mtcnn": {"detected", "tracked"}, "mtcnn_full": {"detected"}}[detector]
        assert set(row["face_box_sources"]) == expected, row["face_box_sources"]


def test_align_crop_falls_back_to_the_box_when_landmarks_say_nothing(astronaut):
    face = faces.Face((175.0, 55.0, 275.0, 180.0), 0.99, ((200.0, 100.0),) * 5)  # five times the same point
    crop = faces.align_crop(astronaut, face, 112)
    assert crop.shape == (112, 112, 3) and crop.mean() > 60
