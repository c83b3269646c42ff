"""Generated clips of real faces that move, zoom and cut, for checking a face tracker against full detection.

The faces are scikit-image's photographs of people: the astronaut (Eileen Collins), the cameraman, and the 100
faces of its LFW subset (25x25 crops, pasted enlarged onto a face-free photo). Frames without a face are views of
its face-free photographs (coffee, rocket, brick, grass, ...). A clip is one to three shots; a shot is one photo seen
through a virtual camera that pans and zooms between two random views, and a cut starts the next shot. The frames
are rendered at the size the extractor stores (398x224 by default), as sampled frames of a ~3 s clip would differ.

Needs numpy and OpenCV only, once the photos are loaded (`load_photos()` reads them from scikit-image; a GPU
machine without scikit-image gets them as arrays, see benchmarks/gpu_check.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Where the face is in each photograph (x1, y1, x2, y2, photo pixels): full MTCNN's box, checked by eye.
FACE_BOXES = {"astronaut": (181, 62, 268, 172), "camera": (199, 119, 254, 192)}
# Photographs in which full MTCNN finds no face (checked; chelsea the cat is left out on purpose: a cat's face is
# not a no-face frame anyone would vouch for).
NO_FACE = ("coffee", "rocket", "brick", "grass", "gravel", "horse", "clock", "coins", "moon", "page")
LFW_FACES = 100  # lfw_subset(): the first 100 images are faces, the other 100 are not
LFW_SIDE = 25


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def load_photos() -> dict[str, np.ndarray]:
    """The photographs from scikit-image (all bundled with it, nothing is downloaded): name -> uint8 RGB.

    "lfw" holds the LFW faces as one uint8 array [100, 25, 25] (grey).
    """
    from skimage import data

    photos = {name: _rgb(getattr(data, name)()) for name in (*FACE_BOXES, *NO_FACE)}
    photos["lfw"] = (np.clip(data.lfw_subset()[:LFW_FACES], 0, 1) * 255).astype(np.uint8)
    return photos


@dataclass(frozen=True)
class Shot:
    """One shot of a generated clip.

    Args:
        photo: name of the photograph (for an LFW face, "lfw:<index>").
        frames: how many frames it lasts.
        has_face: whether a face is in view (the whole face box stays inside the frame).
    """

    photo: str
    frames: int
    has_face: bool


def _portrait(photos: dict[str, np.ndarray], index: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """LFW face `index` enlarged 4-6x and pasted onto a face-free photograph five faces wide; returns it and the
    pasted square (the face box)."""
    import cv2

    side = int(rng.integers(4, 7)) * LFW_SIDE
    background = photos[NO_FACE[int(rng.integers(len(NO_FACE)))]]
    canvas = cv2.resize(background, (5 * side, 5 * side), interpolation=cv2.INTER_AREA)
    face = cv2.resize(photos["lfw"][index], (side, side), interpolation=cv2.INTER_CUBIC)
    x, y = (int(v) for v in rng.integers(side, 5 * side - 2 * side, 2))
    # feather the edge so that the paste is not a hard square
    ramp = np.minimum(np.arange(side), np.arange(side)[::-1]) / (side / 8)
    alpha = np.clip(np.minimum(ramp[:, None], ramp[None, :]), 0, 1)[..., None]
    region = canvas[y : y + side, x : x + side].astype(np.float32)
    canvas[y : y + side, x : x + side] = (alpha * face[..., None] + (1 - alpha) * region).astype(np.uint8)
    return canvas, (x, y, x + side, y + side)


def _render(photo: np.ndarray, scale: float, cx: float, cy: float, size: tuple[int, int]) -> np.ndarray:
    """The view of `photo` at `scale` (frame px per photo px) centred on photo point (cx, cy), grey outside it."""
    import cv2

    width, height = size
    matrix = np.float32([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])
    flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(photo, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=(96,) * 3)


def moving_face_clip(
    seed: int,
    photos: dict[str, np.ndarray],
    *,
    n: int = 16,
    size: tuple[int, int] = (398, 224),
    face_sizes: tuple[float, float] = (0.12, 0.6),
    no_face_share: float = 0.2,
) -> tuple[np.ndarray, list[Shot]]:
    """A clip of n frames: one to three shots of faces (or face-free photos) that pan and zoom.

    Args:
        seed: the clip (same seed, same clip).
        photos: from `load_photos()`.
        n: frames.
        size: (width, height) of the frames.
        face_sizes: smallest and largest face side as a share of the frame height.
        no_face_share: chance that a shot shows a face-free photograph.

    Returns:
        uint8 frames [n, height, width, 3] and the shots, in order.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    cuts = sorted(int(c) for c in rng.choice(np.arange(2, n - 1), size=int(rng.integers(0, 3)), replace=False))
    lengths = np.diff([0, *cuts, n]).tolist()
    frames, shots = [], []
    for length in lengths:
        if rng.random() < no_face_share:
            name = NO_FACE[int(rng.integers(len(NO_FACE)))]
            photo, box = photos[name], None
        elif rng.random() < 0.5:
            name = ("astronaut", "camera")[int(rng.integers(2))]
            photo, box = photos[name], FACE_BOXES[name]
        else:
            index = int(rng.integers(LFW_FACES))
            name = f"lfw:{index}"
            photo, box = _portrait(photos, index, rng)
        views = []
        for _ in range(2):  # the shot's first and last view; the camera moves linearly between them
            if box is None:
                scale = float(rng.uniform(1.0, 2.0)) * max(width / photo.shape[1], height / photo.shape[0])
                cx = float(rng.uniform(width / 2 / scale, photo.shape[1] - width / 2 / scale))
                cy = float(rng.uniform(height / 2 / scale, photo.shape[0] - height / 2 / scale))
            else:
                face = max(box[2] - box[0], box[3] - box[1])
                scale = float(rng.uniform(*face_sizes)) * height / face
                fw, fh = (box[2] - box[0]) * scale, (box[3] - box[1]) * scale
                # where the face centre lands in the frame: anywhere that keeps the whole face box inside
                u = float(rng.uniform(fw / 2, width - fw / 2))
                v = float(rng.uniform(fh / 2, height - fh / 2))
                cx = (box[0] + box[2]) / 2 + (width / 2 - u) / scale
                cy = (box[1] + box[3]) / 2 + (height / 2 - v) / scale
            views.append((scale, cx, cy))
        (s0, x0, y0), (s1, x1, y1) = views
        for i in range(length):
            t = i / max(1, length - 1)
            scale = s0 * (s1 / s0) ** t  # zoom evenly in log scale
            # keep the face box inside the frame at every step: interpolate the face's frame position, not the view
            if box is None:
                cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            else:
                fcx, fcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                u = width / 2 - s0 * (x0 - fcx)
                u = u + t * ((width / 2 - s1 * (x1 - fcx)) - u)
                v = height / 2 - s0 * (y0 - fcy)
                v = v + t * ((height / 2 - s1 * (y1 - fcy)) - v)
                cx, cy = fcx + (width / 2 - u) / scale, fcy + (height / 2 - v) / scale
            frames.append(_render(photo, scale, cx, cy, size))
        shots.append(Shot(name, length, box is not None))
    return np.stack(frames), shots


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes x1, y1, x2, y2."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def agreement(reference: list, candidate: list, min_iou: float = 0.8) -> dict[str, float | int]:
    """How a detector's faces compare with a reference detector's on the same frames (lists of Face or None).

    Returns:
        reference_faces (frames where the reference found a face), found (of those, frames where the candidate's
        box has IoU >= min_iou with it), recall (found / reference_faces), missed, moved (a face found but IoU below
        min_iou), invented (candidate faces on frames where the reference found none), and the median IoU.
    """
    ious = [iou(r.box, c.box) for r, c in zip(reference, candidate, strict=True) if r is not None and c is not None]
    n_ref = sum(r is not None for r in reference)
    found = sum(v >= min_iou for v in ious)
    return {
        "frames": len(reference),
        "reference_faces": n_ref,
        "found": found,
        "recall": round(found / n_ref, 4) if n_ref else 1.0,
        "missed": sum(r is not None and c is None for r, c in zip(reference, candidate, strict=True)),
        "moved": sum(v < min_iou for v in ious),
        "invented": sum(r is None and c is not None for r, c in zip(reference, candidate, strict=True)),
        "median_iou": round(float(np.median(ious)), 4) if ious else float("nan"),
    }
