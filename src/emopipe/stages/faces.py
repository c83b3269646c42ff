"""Face detection and alignment for video frames.

The default detector is MTCNN (Zhang et al. 2016) re-implemented in plain torch, with the weights that ship in the
facenet-pytorch 2.6.0 wheel (fetched and verified by `emopipe.weights`). It follows facenet-pytorch's
`detect_face` step by step: an image pyramid (scale 12 / min_face_size, factor 0.709) through PNet, NMS within each
scale and then across scales, box regression and squaring, RNet on 24x24 crops, ONet on 48x48 crops with five
landmarks, and a final "Min" NMS. torchvision is not needed: NMS is written in torch and resampling is
`interpolate(mode="area")`, as in facenet-pytorch's `imresample`.

A Haar-cascade detector (OpenCV's bundled frontal-face model) is the light fallback, without scores or landmarks.
`align_crop` turns a detected face into a fixed-size crop: a similarity warp onto the ArcFace template when landmarks
are known, a padded square crop around the box otherwise.

torch and cv2 are imported inside the classes and functions that use them, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import logging
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MTCNN_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
PYRAMID_FACTOR = 0.709  # facenet-pytorch's default scale step between pyramid levels
NET_BATCH = 512  # RNet/ONet crops per forward pass, as facenet-pytorch's fixed_batch_process

# Five-point template of the ArcFace 112x112 crop: left eye, right eye, nose tip, mouth left, mouth right.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Face:
    """One detected face.

    Args:
        box: x1, y1, x2, y2 in frame pixels; MTCNN boxes are not clipped and may reach past the frame edges.
        score: detector confidence in [0, 1] (1.0 for detectors without one).
        landmarks: five (x, y) points (left eye, right eye, nose, mouth left, mouth right), or None.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise ValueError(f"frames must be a uint8 array [N, H, W, 3] (RGB), got shape {shape} dtype {dtype}")


# ---------------------------------------------------------------------------------------------------------------------
# MTCNN networks: same layers and parameter names as facenet-pytorch, so its state dicts load strictly.


@functools.cache
def _mtcnn_nets() -> tuple[type, type, type]:
    """The PNet, RNet and ONet classes (defined on first use so that torch is imported lazily)."""
    from torch import nn

    class PNet(nn.Module):
        """Proposal net: fully convolutional, a 12x12 window per output cell (stride 2)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
            self.prelu1 = nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
            self.prelu2 = nn.PReLU(16)
            self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
            self.prelu3 = nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
            self.softmax4_1 = nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self.prelu1(self.conv1(x))
            x = self.pool1(x)
            x = self.prelu2(self.conv2(x))
            x = self.prelu3(self.conv3(x))
            return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))

    class RNet(nn.Module):
        """Refinement net on 24x24 crops."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
            self.prelu1 = nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
            self.prelu2 = nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
            self.prelu3 = nn.PReLU(64)
            self.dense4 = nn.Linear(576, 128)
            self.prelu4 = nn.PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.softmax5_1 = nn.Softmax(dim=1)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            x = x.permute(0, 3, 2, 1).contiguous()  # the converted Caffe weights expect (w, h, c) order
            x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
            return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))

    class ONet(nn.Module):
        """Output net on 48x48 crops: box regression, five landmarks and the final face score."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
            self.prelu1 = nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
            self.prelu2 = nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
            self.prelu3 = nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
            self.prelu4 = nn.PReLU(128)
            self.dense5 = nn.Linear(1152, 256)
            self.prelu5 = nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.softmax6_1 = nn.Softmax(dim=1)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = x.permute(0, 3, 2, 1).contiguous()
            x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    return PNet, RNet, ONet


# ---------------------------------------------------------------------------------------------------------------------
# Box helpers, after facenet-pytorch's detect_face.py. Boxes are float tensors [K, >=4] of x1, y1, x2, y2(, score...).


NMS_MATRIX_LIMIT = 2048  # larger groups use the sequential greedy loop instead of an [n, n] overlap matrix


def _overlap(a: torch.Tensor, b: torch.Tensor, mode: str, extra: float) -> torch.Tensor:
    """Overlaps [len(a), len(b)] of boxes given as rows x1, y1, x2, y2, area; `extra` is added to each width."""
    import torch

    w = (torch.minimum(a[:, None, 2], b[:, 2]) - torch.maximum(a[:, None, 0], b[:, 0]) + extra).clamp(min=0)
    h = (torch.minimum(a[:, None, 3], b[:, 3]) - torch.maximum(a[:, None, 1], b[:, 1]) + extra).clamp(min=0)
    inter = w * h
    if mode == "min":
        return inter / torch.minimum(a[:, None, 4], b[:, 4])
    return inter / (a[:, None, 4] + b[:, 4] - inter)


def _greedy(table: torch.Tensor, threshold: float, mode: str, extra: float) -> torch.Tensor:
    """Positions kept by greedy NMS over boxes already sorted by decreasing score (rows of `_overlap`'s table)."""
    import torch

    n = len(table)
    if n > NMS_MATRIX_LIMIT:
        kept, remaining = [], torch.arange(n, device=table.device)
        while len(remaining) > 0:
            kept.append(remaining[0])
            rest = remaining[1:]
            remaining = rest[_overlap(table[remaining[:1]], table[rest], mode, extra)[0] <= threshold]
        return torch.stack(kept)
    # suppresses[i, j]: box i, if kept, removes the lower-scored box j. Iterating "j is kept when no kept box before
    # it suppresses it" to a fixed point gives exactly the sequential greedy result (position j is final as soon as
    # all positions before it are), and takes a few vectorised passes instead of one Python step per kept box.
    order = torch.arange(n, device=table.device)
    suppresses = (_overlap(table, table, mode, extra) > threshold) & (order[:, None] < order)
    kept = torch.ones(n, dtype=torch.bool, device=table.device)
    for _ in range(n):
        new = ~(suppresses & kept[:, None]).any(dim=0)
        if torch.equal(new, kept):
            break
        kept = new
    return order[kept]


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    threshold: float,
    *,
    mode: str = "union",
    plus_one: bool = False,
) -> torch.Tensor:
    """Greedy non-maximum suppression, independently within each group (image); pure torch.

    Args:
        boxes: [K, 4] x1, y1, x2, y2.
        scores: [K] scores; higher boxes are kept first.
        groups: [K] integer group of each box; boxes of different groups never suppress each other.
        threshold: a box is dropped when its overlap with a kept box is above this.
        mode: "union" (IoU, as torchvision's batched_nms) or "min" (intersection over the smaller area, as
            facenet-pytorch's final ONet NMS).
        plus_one: count widths as x2 - x1 + 1 (the pixel-inclusive convention of the original MATLAB code).

    Returns:
        Indices of the kept boxes, by decreasing score within each group (groups in ascending order).
    """
    import torch

    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    keep: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long, device=boxes.device)]
    extra = 1.0 if plus_one else 0.0
    for group in torch.unique(groups):
        members = (groups == group).nonzero().flatten()
        members = members[scores[members].argsort(descending=True, stable=True)]
        x1, y1, x2, y2 = boxes[members, :4].unbind(1)
        areas = (x2 - x1 + extra) * (y2 - y1 + extra)
        table = torch.stack([x1, y1, x2, y2, areas], dim=1)
        keep.append(members[_greedy(table, threshold, mode, extra)])
    return torch.cat(keep)


def _regress(boxes: torch.Tensor, reg: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Apply box offsets (fractions of the box width/height); facenet's `bbreg` (plus_one) or PNet's inline form."""
    import torch

    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    shifted = boxes[:, :4] + reg[:, :4] * torch.stack([w, h, w, h], dim=1)
    return torch.cat([shifted, boxes[:, 4:5]], dim=1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of side max(w, h) around its centre; facenet's `rerec`."""
    import torch

    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.cat([torch.stack([x1, y1, x1 + side, y1 + side], dim=1), boxes[:, 4:]], dim=1)


def _resample(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area resampling of [N, C, H, W] float images; facenet's `imresample`."""
    from torch.nn.functional import interpolate

    return interpolate(images, size=size, mode="area")


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images - 127.5) * 0.0078125


def _crops(
    images: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each box out of its image, clipped to the frame (facenet's `pad`), and resample to size x size.

    Args:
        images: [N, 3, H, W] float frames.
        boxes: [K, >=4] boxes in pixels.
        image_inds: [K] frame index of each box.
        size: side of the output crops.

    Returns:
        The normalised crops [K', 3, size, size] and the boolean mask [K] of boxes that have a non-empty crop.
    """
    import torch

    h, w = images.shape[2:4]
    corners = boxes[:, :4].trunc().int().cpu()
    x = corners[:, 0].clamp(min=1).tolist()
    y = corners[:, 1].clamp(min=1).tolist()
    ex = corners[:, 2].clamp(max=w).tolist()
    ey = corners[:, 3].clamp(max=h).tolist()
    inds = image_inds.tolist()
    valid = [ey[k] > y[k] - 1 and ex[k] > x[k] - 1 for k in range(len(inds))]
    crops = [
        _resample(images[inds[k], :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]].unsqueeze(0), (size, size))
        for k in range(len(inds))
        if valid[k]
    ]
    out = torch.cat(crops) if crops else images.new_zeros((0, 3, size, size))
    return _normalise(out), torch.tensor(valid, dtype=torch.bool, device=boxes.device)


def _batched(net: Any, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Run `net` over `data` in chunks of NET_BATCH (channels-last) and concatenate each output."""
    import torch

    chunks = [
        data[i : i + NET_BATCH].contiguous(memory_format=torch.channels_last) for i in range(0, len(data), NET_BATCH)
    ]
    outs = [net(chunk) for chunk in chunks]
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float = PYRAMID_FACTOR) -> list[float]:
    """Scales of the MTCNN image pyramid: from 12 / min_face_size down while the short side stays >= 12 pixels.

    Args:
        height: frame height in pixels.
        width: frame width in pixels.
        min_face_size: smallest face side to look for, in pixels.
        factor: ratio between successive scales.
    """
    scale = 12.0 / min_face_size
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


class MTCNNDetector:
    """MTCNN in plain torch with facenet-pytorch's converted weights; the best face per frame.

    Args:
        weights_dir: folder holding pnet.pt, rnet.pt and onet.pt (facenet-pytorch state dicts); None fetches the
            packaged weights through `emopipe.weights`.
        min_face_size: smallest face side to look for, in pixels (sets the first pyramid scale, 12 / min_face_size).
        thresholds: PNet, RNet and ONet score thresholds of the cascade.
        min_score: a frame's best face is reported only when its ONet score is at least this.
        device: torch device for the networks and the frames.

    Raises:
        FileNotFoundError: weights_dir lacks one of the three weight files.
    """

    name = "mtcnn"

    def __init__(
        self,
        weights_dir: str | pathlib.Path | None = None,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        device: str = "cpu",
    ) -> None:
        import torch

        if len(thresholds) != 3:
            raise ValueError(f"thresholds must hold three values (PNet, RNet, ONet), got {thresholds!r}")
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be a positive number of pixels, got {min_face_size}")
        if weights_dir is None:
            from emopipe import weights

            folder = weights.fetch("mtcnn")
        else:
            folder = pathlib.Path(weights_dir)
            missing = [f for f in MTCNN_FILES if not (folder / f).is_file()]
            if missing:
                raise FileNotFoundError(f"MTCNN weights folder {folder} lacks {', '.join(missing)}")
        self.min_face_size = min_face_size
        self.thresholds = tuple(float(t) for t in thresholds)
        self.min_score = float(min_score)
        self.device = torch.device(device)
        nets = []
        for cls, filename in zip(_mtcnn_nets(), MTCNN_FILES, strict=True):
            net = cls()
            state = torch.load(folder / filename, map_location=self.device, weights_only=True)
            net.load_state_dict(state, strict=True)
            nets.append(net.to(self.device).eval())
        self.pnet, self.rnet, self.onet = nets
        log.debug("MTCNN weights loaded from %s", folder)

    def detect(self, frames: np.ndarray) -> list[Face | None]:
        """The highest-scoring face of each frame, or None where no face reaches min_score.

        Args:
            frames: uint8 array [N, H, W, 3], RGB, all frames the same size; they go through the pyramid as one batch.
        """
        _check_frames(frames)
        boxes, points, image_inds = self.detect_all(frames)
        best: list[Face | None] = [None] * len(frames)
        for k in range(len(boxes)):
            i, score = int(image_inds[k]), float(boxes[k, 4])
            if score >= self.min_score and (best[i] is None or score > best[i].score):
                best[i] = Face(
                    box=(float(boxes[k, 0]), float(boxes[k, 1]), float(boxes[k, 2]), float(boxes[k, 3])),
                    score=score,
                    landmarks=tuple((float(px), float(py)) for px, py in points[k]),
                )
        return best

    def detect_all(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face the cascade keeps, in all frames, as facenet-pytorch's `detect_face` returns them.

        Args:
            frames: uint8 array [N, H, W, 3], RGB, all frames the same size.

        Returns:
            boxes [K, 5] (x1, y1, x2, y2, score), landmarks [K, 5, 2] (x, y) and the frame index [K] of each face.
        """
        import torch

        _check_frames(frames)
        with torch.inference_mode():
            images = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
            images = images.permute(0, 3, 1, 2).float().contiguous()
            boxes, image_inds = self._propose(images)
            boxes, image_inds = self._refine(images, boxes, image_inds)
            boxes, points, image_inds = self._output(images, boxes, image_inds)
        return boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()

    def _propose(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: PNet over the pyramid, NMS per scale (0.5) then across scales (0.7), regression, squaring."""
        import torch

        h, w = images.shape[2:4]
        found, found_inds = [], []
        for scale in pyramid_scales(h, w, self.min_face_size):
            level = _normalise(_resample(images, (int(h * scale + 1), int(w * scale + 1))))
            level = level.contiguous(memory_format=torch.channels_last)  # pooling runs ~2x faster than NCHW on CPU
            reg, probs = self.pnet(level)
            # Each output cell is a 12x12 window at stride 2 in the scaled image.
            mask = probs[:, 1] >= self.thresholds[0]
            cells = mask.nonzero()  # (image, row, col)
            xy = cells[:, 1:].flip(1).to(images.dtype)
            corners = torch.cat([((2 * xy + 1) / scale).floor(), ((2 * xy + 12) / scale).floor()], dim=1)
            boxes = torch.cat([corners, probs[:, 1][mask].unsqueeze(1), reg.permute(0, 2, 3, 1)[mask]], dim=1)
            keep = nms(boxes[:, :4], boxes[:, 4], cells[:, 0], 0.5)
            found.append(boxes[keep])
            found_inds.append(cells[keep, 0])
        if not found:
            return images.new_zeros((0, 5)), torch.zeros(0, dtype=torch.long, device=images.device)
        boxes, image_inds = torch.cat(found), torch.cat(found_inds)
        keep = nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds = boxes[keep], image_inds[keep]
        boxes = _regress(boxes[:, :5], boxes[:, 5:9], plus_one=False)
        log.debug("PNet: %d candidate boxes in %d frames", len(boxes), len(images))
        return _square(boxes), image_inds

    def _refine(
        self, images: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: RNet on 24x24 crops, threshold, NMS (0.7), regression, squaring."""
        import torch

        crops, valid = _crops(images, boxes, image_inds, 24)
        if len(crops) == 0:
            return boxes[:0], image_inds[:0]
        boxes, image_inds = boxes[valid], image_inds[valid]
        reg, probs = _batched(self.rnet, crops)
        score = probs[:, 1]
        passed = score > self.thresholds[1]
        boxes = torch.cat([boxes[passed, :4], score[passed].unsqueeze(1)], dim=1)
        image_inds, reg = image_inds[passed], reg[passed]
        keep = nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds, reg = boxes[keep], image_inds[keep], reg[keep]
        log.debug("RNet: %d boxes", len(boxes))
        return _square(_regress(boxes, reg)), image_inds

    def _output(
        self, images: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 3: ONet on 48x48 crops, threshold, landmarks, regression, "Min" NMS (0.7) within each frame."""
        import torch

        crops, valid = _crops(images, boxes, image_inds, 48)
        if len(crops) == 0:
            return boxes[:0], images.new_zeros((0, 5, 2)), image_inds[:0]
        boxes, image_inds = boxes[valid], image_inds[valid]
        reg, marks, probs = _batched(self.onet, crops)
        score = probs[:, 1]
        passed = score > self.thresholds[2]
        boxes = torch.cat([boxes[passed, :4], score[passed].unsqueeze(1)], dim=1)
        image_inds, reg, marks = image_inds[passed], reg[passed], marks[passed]
        # Landmarks are fractions of the (pixel-inclusive) box before its final regression.
        w = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        xs = w * marks[:, :5] + boxes[:, 0:1] - 1
        ys = h * marks[:, 5:10] + boxes[:, 1:2] - 1
        points = torch.stack([xs, ys], dim=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7, mode="min", plus_one=True)
        log.debug("ONet: %d faces", len(keep))
        return boxes[keep], points[keep], image_inds[keep]


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade; the largest detection per frame, score 1.0, no landmarks.

    Args:
        min_face_size: smallest face side to look for, in pixels.
    """

    name = "haar"
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, min_face_size: int = 20) -> None:
        import cv2

        path = pathlib.Path(cv2.data.haarcascades) / self.CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FileNotFoundError(f"could not load the Haar cascade {path}")
        self.min_face_size = min_face_size

    def detect(self, frames: np.ndarray) -> list[Face | None]:
        """The largest face of each frame, or None.

        Args:
            frames: uint8 array [N, H, W, 3], RGB.
        """
        import cv2

        _check_frames(frames)
        out: list[Face | None] = []
        for frame in frames:
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            found = self.cascade.detectMultiScale(
                grey, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_face_size, self.min_face_size)
            )
            if len(found) == 0:
                out.append(None)
                continue
            x, y, w, h = (float(v) for v in max(found, key=lambda r: r[2] * r[3]))
            out.append(Face(box=(x, y, x + w, y + h), score=1.0, landmarks=None))
        return out


def make_detector(
    name: str = "mtcnn", weights: str | None = None, device: str = "cpu", min_face_size: int = 20
) -> MTCNNDetector | HaarDetector:
    """A face detector by name.

    Args:
        name: "mtcnn" (default) or "haar".
        weights: for mtcnn, a folder with pnet.pt/rnet.pt/onet.pt; None uses the packaged facenet-pytorch weights.
            The Haar cascade ships with OpenCV and takes none.
        device: torch device for mtcnn.
        min_face_size: smallest face side to look for, in pixels.

    Raises:
        ValueError: unknown name, or weights given for haar.
    """
    if name == "mtcnn":
        return MTCNNDetector(weights_dir=weights, min_face_size=min_face_size, device=device)
    if name == "haar":
        if weights is not None:
            raise ValueError("the haar detector uses OpenCV's bundled cascade and takes no weights")
        return HaarDetector(min_face_size=min_face_size)
    raise ValueError(f"unknown face detector {name!r}; known: mtcnn, haar")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation) mapping src onto dst (Umeyama 1991).

    Args:
        src: [K, 2] points.
        dst: [K, 2] corresponding points.

    Returns:
        The 2x3 affine matrix, as cv2.warpAffine takes it.
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])  # no reflections
    rotation = u @ np.diag(d) @ vt
    src_var = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / src_var if src_var > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_crop(frame: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    """A size x size uint8 RGB crop of the face.

    With landmarks, the five points are mapped onto the ArcFace 112x112 template (scaled to `size`) by a similarity
    transform and the frame is warped with cv2.warpAffine (black outside the frame). Without landmarks, a square of
    side 1.2 x max(box width, height) around the box centre is cut out, padded with black where it leaves the frame,
    and resized with INTER_AREA.

    Args:
        frame: uint8 [H, W, 3] RGB frame.
        face: the detection in that frame.
        size: side of the output crop in pixels.
    """
    import cv2

    if face.landmarks is not None:
        template = ARCFACE_TEMPLATE * (size / 112.0)
        matrix = similarity_transform(np.array(face.landmarks), template)
        return cv2.warpAffine(
            frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    x1, y1, x2, y2 = face.box
    side = max(1, round(1.2 * max(x2 - x1, y2 - y1)))
    left = round((x1 + x2) / 2 - side / 2)
    top = round((y1 + y2) / 2 - side / 2)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    h, w = frame.shape[:2]
    fx1, fy1 = max(left, 0), max(top, 0)
    fx2, fy2 = min(left + side, w), min(top + side, h)
    if fx2 > fx1 and fy2 > fy1:
        square[fy1 - top : fy2 - top, fx1 - left : fx2 - left] = frame[fy1:fy2, fx1:fx2]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
