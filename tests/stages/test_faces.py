"""Face detection on a real photo (scikit-image's astronaut): MTCNN with facenet-pytorch's weights, the Haar
fallback, the pure-torch NMS against a plain reference, and the aligned crops."""

import shutil

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="unknown face detector 'nope'"):
        faces.make_detector("nope")
    with pytest.raises(ValueError, match="no weights"):
        faces.make_detector("haar", weights=str(tmp_path))
    for name in faces.MTCNN_FILES:
        shutil.copy(weights.path("mtcnn", name), tmp_path / name)
    detector = faces.make_detector("mtcnn", weights=str(tmp_path), min_face_size=40)
    assert isinstance(detector, faces.MTCNNDetector) and detector.min_face_size == 40


def test_user_weights_dir_missing_a_file(tmp_path):
    shutil.copy(weights.path("mtcnn", "pnet.pt"), tmp_path / "pnet.pt")
    with pytest.raises(FileNotFoundError, match=r"lacks rnet\.pt, onet\.pt"):
        faces.MTCNNDetector(weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="onet.pt"):
        faces.make_detector("mtcnn", weights=str(tmp_path / "nowhere"))
