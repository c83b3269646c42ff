"""Face detection, tracking and alignment for video frames.

The detector is MTCNN (Zhang et al. 2016) re-implemented in plain torch, with the weights that ship in the
facenet-pytorch 2.6.0 wheel (fetched and verified by `emopipe.weights`). The full cascade follows facenet-pytorch's
`detect_face` step by step: an image pyramid (scale 12 / min_face_size, factor 0.709) through PNet, NMS within each
scale and then across scales, box regression and squaring, RNet on 24x24 crops, ONet on 48x48 crops with five
landmarks, and a final "Min" NMS. torchvision is not needed (it cannot be installed beside the CPU torch): NMS is
written in torch, and resampling keeps facenet's `imresample` (torch's area interpolation, i.e. adaptive average
pooling) but computes it from one summed-area table per frame (`cv2.integral`), so the hundreds of RNet/ONet crops of
a clip cost one vectorised gather instead of one interpolation call each.

`TrackingMTCNN` (`face_detector: mtcnn`, the default) runs that cascade only where it must: on the first sampled
frame, every `redetect_every` frames, and wherever following the face fails. On the other frames it follows the
previous frame's face: PNet on a window around it (three times its size) at the three pyramid scales around its
size, then the same RNet and ONet. A followed face whose ONet score falls below `track_min_score` (or that is
lost) sends that frame back to the full cascade, so a cut, a new face or no face at all is found as the full
detector finds it. `MTCNNDetector` (`mtcnn_full`) is the full cascade on every frame. Every `Face` says how it was
found (`source`: detected or tracked).

A Haar-cascade detector (OpenCV's bundled frontal-face model) is the light fallback, without scores or landmarks.
`align_crop` turns a detected face into a fixed-size crop: a similarity warp onto the ArcFace template when landmarks
are known (scikit-image's `SimilarityTransform`), a padded square crop around the box otherwise.

torch and cv2 are imported inside the classes and functions that use them, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import logging
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MTCNN_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
PYRAMID_FACTOR = 0.709  # facenet-pytorch's default scale step between pyramid levels
NET_BATCH = 512  # RNet/ONet crops per forward pass, as facenet-pytorch's fixed_batch_process
DETECTORS = ("mtcnn", "mtcnn_full", "haar")  # face_detector values: tracked MTCNN, full MTCNN per frame, Haar

# Tracking: the window PNet searches around the previous face (its side, in face sizes) and the face sizes it looks
# for there, relative to the previous face. Sampled frames of a 3 s clip are ~0.2 s apart; a face that moves more
# than a face width or changes size by more than 1.5x between them is lost and found again by the full cascade.
TRACK_WINDOW = 3.0
TRACK_SIZES = (1.5, 1 / 1.5)
# Boxes per followed frame that go on from PNet to RNet and from RNet to ONet (the full cascade keeps all): only the
# best face of a frame is wanted, and ONet (~13 M multiply-adds a crop) is most of a followed frame's cost.
TRACK_CANDIDATES = (4, 1)
NO_FACE_LOOKAHEAD = 4  # after a frame without a face, this many frames go to the full cascade in one batch

# Five-point template of the ArcFace 112x112 crop: left eye, right eye, nose tip, mouth left, mouth right.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    Args:
        box: x1, y1, x2, y2 in frame pixels; MTCNN boxes are not clipped and may reach past the frame edges.
        score: detector confidence in [0, 1] (1.0 for detectors without one).
        landmarks: five (x, y) points (left eye, right eye, nose, mouth left, mouth right), or None.
        source: how it was found: "detected" (the detector ran on the whole frame) or "tracked" (followed from the
            previous frame's face).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None
    source: str = "detected"


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


def _greedy(
    table: torch.Tensor, threshold: float, mode: str, extra: float, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Positions kept by greedy NMS over boxes already sorted by decreasing score (rows of `_overlap`'s table).

    With `groups` (boxes sorted by group, then by decreasing score; at most NMS_MATRIX_LIMIT of them), boxes of
    different groups never suppress each other, so all groups are done in one pass.
    """
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
    if groups is not None:
        suppresses &= groups[:, None] == groups
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
    extra = 1.0 if plus_one else 0.0

    def table(members: torch.Tensor) -> torch.Tensor:
        x1, y1, x2, y2 = boxes[members, :4].unbind(1)
        return torch.stack([x1, y1, x2, y2, (x2 - x1 + extra) * (y2 - y1 + extra)], dim=1)

    # by group, then by decreasing score (two stable sorts)
    order = scores.argsort(descending=True, stable=True)
    order = order[groups[order].argsort(stable=True)]
    if len(order) <= NMS_MATRIX_LIMIT:  # all groups in one overlap matrix, other groups masked out
        return order[_greedy(table(order), threshold, mode, extra, groups[order])]
    keep: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long, device=boxes.device)]
    for group in torch.unique(groups):
        members = order[groups[order] == group]
        keep.append(members[_greedy(table(members), threshold, mode, extra)])
    return torch.cat(keep)


def _first_of_each(groups: torch.Tensor, k: int | None) -> torch.Tensor:
    """Positions of the first k boxes of each group, for boxes in `nms` output order (grouped, best first)."""
    import torch

    if k is None or len(groups) == 0:
        return torch.arange(len(groups), device=groups.device)
    _, counts = torch.unique_consecutive(groups, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return (torch.arange(len(groups), device=groups.device) - starts < k).nonzero().flatten()


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


# ---------------------------------------------------------------------------------------------------------------------
# Area resampling from summed-area tables. torch's area interpolation (facenet's `imresample`) is adaptive average
# pooling: output cell i of n over an input span of length m averages input rows floor(i*m/n) .. ceil((i+1)*m/n)-1.
# The same windows summed from an integral image give the same values (sums are exact integers) for any number of
# regions at once.


def _windows(start: Any, length: Any, cells: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive average pooling's windows: cell i of n over `length` pixels from `start` covers
    [start + floor(i * length / n), start + ceil((i + 1) * length / n)). Arguments broadcast (ints or tensors)."""
    return start + (cells * length) // n, start - (-((cells + 1) * length) // n)  # -(-a // n) is ceil(a / n)


class _Sums:
    """Summed-area tables of frames, each over a region of its frame (the whole frame, or a window around a face).

    Args:
        frames: uint8 [N, H, W, 3] RGB.
        inds: which frames to take, one table each.
        regions: per table, (top, left, bottom, right) in frame pixels, clipped to the frame; None for whole frames.
        device: torch device of the tables.
    """

    def __init__(
        self,
        frames: np.ndarray,
        inds: Sequence[int],
        device: torch.device,
        regions: Sequence[tuple[int, int, int, int]] | None = None,
    ) -> None:
        import cv2
        import torch

        self.height, self.width = frames.shape[1:3]
        h, w = self.height, self.width
        if regions is None:
            regions = [(0, 0, h, w)] * len(inds)
        # clipped to the frame, and never empty (a region wholly outside keeps one row or column at the edge)
        regions = [(min(max(0, t), h - 1), min(max(0, lf), w - 1), min(h, b), min(w, r)) for t, lf, b, r in regions]
        regions = [(t, lf, max(b, t + 1), max(r, lf + 1)) for t, lf, b, r in regions]
        rows = max(b - t for t, _, b, _ in regions)
        cols = max(r - lf for _, lf, _, r in regions)
        # int32 holds 255 * H * W exactly up to ~8 Mpixel regions; float64 (exact to 2**53) beyond
        depth, dtype = (cv2.CV_32S, np.int32) if 255 * rows * cols < 2**31 else (cv2.CV_64F, np.float64)
        tables = np.empty((len(inds), rows + 1, cols + 1, 3), dtype)
        for k, (i, (t, lf, b, r)) in enumerate(zip(inds, regions, strict=True)):
            table = cv2.integral(np.ascontiguousarray(frames[i, t:b, lf:r]), sdepth=depth)
            if table.shape[:2] == (rows + 1, cols + 1):
                tables[k] = table
            else:  # edge padding repeats the last row/column of sums: cells past the region add nothing
                pad = ((0, rows + 1 - table.shape[0]), (0, cols + 1 - table.shape[1]), (0, 0))
                tables[k] = np.pad(table, pad, "edge")
        self.tables = torch.from_numpy(tables).to(device)
        self.top = torch.tensor([t for t, _, _, _ in regions], dtype=torch.long, device=device)
        self.left = torch.tensor([lf for _, lf, _, _ in regions], dtype=torch.long, device=device)
        self.bottom = torch.tensor([b for _, _, b, _ in regions], dtype=torch.long, device=device)
        self.right = torch.tensor([r for _, _, _, r in regions], dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self.tables)

    def pool(
        self, tables: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
    ) -> torch.Tensor:
        """Average each cell [y0, y1) x [x0, x1) (frame pixels) of K grids: float [K, 3, rows, cols].

        Cells that fall outside a table's region average what is inside it, and are 0 where nothing is.

        Args:
            tables: [K] table of each grid.
            y0: [K, rows] first frame row of each cell row.
            y1: [K, rows] row after its last.
            x0: [K, cols] first frame column of each cell column.
            x1: [K, cols] column after its last.
        """
        import torch

        # into table coordinates, clipped to the table's region
        t_top, t_left = self.top[tables, None], self.left[tables, None]
        y0 = torch.maximum(y0, t_top).minimum(self.bottom[tables, None]) - t_top
        y1 = torch.maximum(y1, t_top).minimum(self.bottom[tables, None]) - t_top
        x0 = torch.maximum(x0, t_left).minimum(self.right[tables, None]) - t_left
        x1 = torch.maximum(x1, t_left).minimum(self.right[tables, None]) - t_left
        # one flat gather per corner of every cell: rows of 3 channels in the tables viewed as [K * rows * cols, 3]
        rows, cols = self.tables.shape[1:3]
        flat = self.tables.view(-1, 3)
        base = tables[:, None, None] * rows
        r0, r1, c0, c1 = (base + y0[:, :, None]) * cols, (base + y1[:, :, None]) * cols, x0[:, None, :], x1[:, None, :]

        def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return flat.index_select(0, (r + c).view(-1))

        sums = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
        cells = ((y1 - y0)[:, :, None] * (x1 - x0)[:, None, :]).clamp(min=1).view(-1, 1)
        out = (sums.float() / cells.float()).view(len(tables), y0.shape[1], x0.shape[1], 3)
        return out.permute(0, 3, 1, 2).contiguous()

    def area(
        self,
        tables: torch.Tensor,
        top: torch.Tensor,
        left: torch.Tensor,
        height: torch.Tensor,
        width: torch.Tensor,
        *,
        size: tuple[int, int],
    ) -> torch.Tensor:
        """Area-resample K rectangles (frame pixels, one table each) to size (rows, cols): float [K, 3, rows, cols].

        Args:
            tables: [K] table of each rectangle.
            top: [K] first row of each rectangle.
            left: [K] first column.
            height: [K] rows (>= 1).
            width: [K] columns (>= 1).
            size: output rows and columns.
        """
        import torch

        dev = self.tables.device
        y0, y1 = _windows(top[:, None], height[:, None], torch.arange(size[0], device=dev), size[0])
        x0, x1 = _windows(left[:, None], width[:, None], torch.arange(size[1], device=dev), size[1])
        return self.pool(tables, y0, y1, x0, x1)

    def grid(
        self,
        tables: torch.Tensor,
        size: tuple[int, int],
        row0: torch.Tensor,
        col0: torch.Tensor,
        *,
        rows: int,
        cols: int,
    ) -> torch.Tensor:
        """Part of whole frames resampled to size: cells row0 .. row0 + rows - 1 and col0 .. col0 + cols - 1 of each.

        The values are those of `whole(size)` at the same cells, so PNet sees exactly the full pyramid's pixels
        there; cells past the grid's edge are 0.

        Args:
            tables: [K] table of each part.
            size: (rows, cols) of the whole resampled frame, as in `whole`.
            row0: [K] first cell row.
            col0: [K] first cell column.
            rows: cell rows to take.
            cols: cell columns to take.
        """
        import torch

        dev = self.tables.device
        y0, y1 = _windows(0, self.height, row0[:, None] + torch.arange(rows, device=dev), size[0])
        x0, x1 = _windows(0, self.width, col0[:, None] + torch.arange(cols, device=dev), size[1])
        return self.pool(tables, y0, y1, x0, x1)  # cells past the grid start at or after the frame's edge: empty

    def whole(self, size: tuple[int, int]) -> torch.Tensor:
        """Every table's whole frame resampled to size, as `interpolate(frames, size, mode="area")`.

        The pooling windows are the same for every frame, so rows and then columns are picked with index_select.
        """
        import torch

        out_h, out_w = size
        dev = self.tables.device
        y0, y1 = _windows(0, self.height, torch.arange(out_h, device=dev), out_h)
        x0, x1 = _windows(0, self.width, torch.arange(out_w, device=dev), out_w)
        rows = self.tables.index_select(1, y1) - self.tables.index_select(1, y0)
        sums = rows.index_select(2, x1) - rows.index_select(2, x0)
        cells = ((y1 - y0)[:, None] * (x1 - x0)[None, :])[None, :, :, None]
        return (sums.float() / cells.float()).permute(0, 3, 1, 2).contiguous()


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images - 127.5) * 0.0078125


def _crops(sums: _Sums, boxes: torch.Tensor, tables: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each box out of its frame, clipped to the frame (facenet's `pad`), and resample to size x size.

    Args:
        sums: the frames' summed-area tables.
        boxes: [K, >=4] boxes in frame pixels.
        tables: [K] table (frame) of each box.
        size: side of the output crops.

    Returns:
        The normalised crops [K', 3, size, size] and the boolean mask [K] of boxes that have a non-empty crop.
    """
    import torch

    corners = boxes[:, :4].trunc().long()
    x = corners[:, 0].clamp(min=1)
    y = corners[:, 1].clamp(min=1)
    ex = corners[:, 2].clamp(max=sums.width)
    ey = corners[:, 3].clamp(max=sums.height)
    valid = (ey > y - 1) & (ex > x - 1)
    x, y, ex, ey, tables = x[valid], y[valid], ex[valid], ey[valid], tables[valid]
    parts = [
        sums.area(tables[s : s + NET_BATCH], (y - 1)[s : s + NET_BATCH], (x - 1)[s : s + NET_BATCH],
                  (ey - y + 1)[s : s + NET_BATCH], (ex - x + 1)[s : s + NET_BATCH], size=(size, size))
        for s in range(0, len(tables), NET_BATCH)
    ]  # fmt: skip
    out = torch.cat(parts) if parts else boxes.new_zeros((0, 3, size, size))
    return _normalise(out), valid


def _batched(net: Any, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Run `net` over `data` in chunks of NET_BATCH (channels-last) and concatenate each output."""
    import torch

    chunks = [
        data[i : i + NET_BATCH].contiguous(memory_format=torch.channels_last) for i in range(0, len(data), NET_BATCH)
    ]
    outs = [net(chunk) for chunk in chunks]
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = PYRAMID_FACTOR) -> list[float]:
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


@dataclass(frozen=True)
class _Level:
    """One PNet input: frames (or parts of them) resampled at one pyramid scale.

    Args:
        images: [K, 3, h, w] float, not normalised.
        scale: level pixels per frame pixel.
        tables: [K] table of each image; None: image k is table k.
        row0: [K] level cell row where each image starts (even); None for whole levels.
        col0: [K] level cell column where each image starts (even).
        rows: [K] rows of each image that belong to it (the rest is padding to the batch's size).
        cols: [K] columns of each image that belong to it.
    """

    images: torch.Tensor
    scale: float
    tables: torch.Tensor | None = None
    row0: torch.Tensor | None = None
    col0: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None


class MTCNNDetector:
    """MTCNN in plain torch with facenet-pytorch's converted weights: the full cascade on every frame.

    Args:
        weights_dir: folder holding pnet.pt, rnet.pt and onet.pt (facenet-pytorch state dicts); None fetches the
            packaged weights through `emopipe.weights`.
        min_face_size: smallest face side to look for, in frame pixels.
        thresholds: PNet, RNet and ONet score thresholds of the cascade.
        min_score: a frame's best face is reported only when its ONet score is at least this.
        device: torch device for the networks and the frames.
        min_face_fraction: smallest face side to look for as a share of the frame's shorter side; the pyramid starts
            at the larger of this and min_face_size (12 / that size), so large-face footage skips the costly fine
            levels. 0 leaves min_face_size alone.

    Raises:
        FileNotFoundError: weights_dir lacks one of the three weight files.
        ValueError: a setting out of range.
    """

    name = "mtcnn_full"

    def __init__(
        self,
        weights_dir: str | pathlib.Path | None = None,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        device: str = "cpu",
        *,
        min_face_fraction: float = 0.0,
    ) -> None:
        import torch

        if len(thresholds) != 3:
            raise ValueError(f"thresholds must hold three values (PNet, RNet, ONet), got {thresholds!r}")
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be a positive number of pixels, got {min_face_size}")
        if not 0 <= min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {min_face_fraction}")
        if weights_dir is None:
            from emopipe import weights

            folder = weights.fetch("mtcnn")
        else:
            folder = pathlib.Path(weights_dir)
            missing = [f for f in MTCNN_FILES if not (folder / f).is_file()]
            if missing:
                raise FileNotFoundError(f"MTCNN weights folder {folder} lacks {', '.join(missing)}")
        self.min_face_size = min_face_size
        self.min_face_fraction = float(min_face_fraction)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.min_score = float(min_score)
        self.device = torch.device(device)
        # since construction: frames through the full cascade, and attempts to follow a face into a frame
        self.counts = {"full": 0, "tracked": 0}
        nets = []
        for cls, filename in zip(_mtcnn_nets(), MTCNN_FILES, strict=True):
            net = cls()
            state = torch.load(folder / filename, map_location=self.device, weights_only=True)
            net.load_state_dict(state, strict=True)
            nets.append(net.to(self.device).eval())
        self.pnet, self.rnet, self.onet = nets
        log.debug("MTCNN weights loaded from %s", folder)

    def min_face(self, height: int, width: int) -> float:
        """The smallest face side (pixels) the pyramid looks for in frames of this size."""
        return max(float(self.min_face_size), self.min_face_fraction * min(height, width))

    def detect(self, frames: np.ndarray) -> list[Face | None]:
        """The highest-scoring face of each frame, or None where no face reaches min_score.

        Args:
            frames: uint8 array [N, H, W, 3], RGB, all frames the same size; they go through the pyramid as one batch.
        """
        import torch

        _check_frames(frames)
        if len(frames) == 0:
            return []
        with torch.inference_mode():
            return self._detect(frames, list(range(len(frames))))

    def detect_all(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face the cascade keeps, in all frames, as facenet-pytorch's `detect_face` returns them.

        Args:
            frames: uint8 array [N, H, W, 3], RGB, all frames the same size.

        Returns:
            boxes [K, 5] (x1, y1, x2, y2, score), landmarks [K, 5, 2] (x, y) and the frame index [K] of each face.
        """
        import torch

        _check_frames(frames)
        if len(frames) == 0:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.int64)
        with torch.inference_mode():
            sums = _Sums(frames, list(range(len(frames))), self.device)
            boxes, points, inds = self._cascade(sums)
        return boxes.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()

    # The cascade, on summed-area tables. `tables` index the tables of a _Sums (one per frame or window).

    def _detect(self, frames: np.ndarray, inds: list[int]) -> list[Face | None]:
        """The full cascade on frames[inds], batched: the best face of each, source "detected"."""
        self.counts["full"] += len(inds)
        sums = _Sums(frames, inds, self.device)
        return self._best(*self._cascade(sums), len(inds), "detected")

    def _cascade(self, sums: _Sums) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = sums.height, sums.width
        levels = [
            _Level(sums.whole((int(h * scale + 1), int(w * scale + 1))), scale)
            for scale in pyramid_scales(h, w, self.min_face(h, w))
        ]
        boxes, tables = self._propose(levels, sums)
        boxes, tables = self._refine(sums, boxes, tables)
        return self._output(sums, boxes, tables)

    def _best(
        self, boxes: torch.Tensor, points: torch.Tensor, tables: torch.Tensor, n: int, source: str
    ) -> list[Face | None]:
        """The highest-scoring face of each of n tables that reaches min_score."""
        best: list[Face | None] = [None] * n
        boxes, points, tables = boxes.cpu().numpy(), points.cpu().numpy(), tables.cpu().numpy()
        for k in range(len(boxes)):
            i, score = int(tables[k]), float(boxes[k, 4])
            if score >= self.min_score and (best[i] is None or score > best[i].score):
                best[i] = Face(
                    box=(float(boxes[k, 0]), float(boxes[k, 1]), float(boxes[k, 2]), float(boxes[k, 3])),
                    score=score,
                    landmarks=tuple((float(px), float(py)) for px, py in points[k]),
                    source=source,
                )
        return best

    def _propose(
        self, levels: list[_Level], sums: _Sums, keep_best: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: PNet over each level, NMS per level (0.5) then across levels (0.7), regression, squaring.

        Args:
            levels: the PNet inputs.
            sums: the tables the levels were resampled from.
            keep_best: keep only this many best boxes per table (None: all, as the full cascade).
        """
        import torch

        found, found_tables = [], []
        for lv in levels:
            level = _normalise(lv.images).contiguous(memory_format=torch.channels_last)  # pooling ~2x faster
            reg, probs = self.pnet(level)
            # Each output cell is a 12x12 window at stride 2 in the scaled image.
            mask = probs[:, 1] >= self.thresholds[0]
            if lv.rows is not None:  # a part of a level: only cells whose whole 12x12 window is inside the part
                oy = torch.arange(mask.shape[1], device=mask.device)[None, :, None]
                ox = torch.arange(mask.shape[2], device=mask.device)[None, None, :]
                mask &= (2 * oy + 12 <= lv.rows[:, None, None]) & (2 * ox + 12 <= lv.cols[:, None, None])
            cells = mask.nonzero()  # (image, row, col)
            k = cells[:, 0]
            xy = cells[:, 1:].flip(1)
            if lv.row0 is not None:  # cell coordinates in the whole level (the parts start at even level pixels)
                xy = xy + torch.stack([lv.col0[k], lv.row0[k]], dim=1) // 2
            xy = xy.to(lv.images.dtype)
            corners = torch.cat([((2 * xy + 1) / lv.scale).floor(), ((2 * xy + 12) / lv.scale).floor()], dim=1)
            boxes = torch.cat([corners, probs[:, 1][mask].unsqueeze(1), reg.permute(0, 2, 3, 1)[mask]], dim=1)
            tables = k if lv.tables is None else lv.tables[k]
            keep = nms(boxes[:, :4], boxes[:, 4], tables, 0.5)
            found.append(boxes[keep])
            found_tables.append(tables[keep])
        if not found:
            return torch.zeros((0, 5), device=self.device), torch.zeros(0, dtype=torch.long, device=self.device)
        boxes, tables = torch.cat(found), torch.cat(found_tables)
        keep = nms(boxes[:, :4], boxes[:, 4], tables, 0.7)
        keep = keep[_first_of_each(tables[keep], keep_best)]
        boxes, tables = boxes[keep], tables[keep]
        boxes = _regress(boxes[:, :5], boxes[:, 5:9], plus_one=False)
        log.debug("PNet: %d candidate boxes in %d frames", len(boxes), len(sums))
        return _square(boxes), tables

    def _refine(
        self, sums: _Sums, boxes: torch.Tensor, tables: torch.Tensor, keep_best: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: RNet on 24x24 crops, threshold, NMS (0.7), regression, squaring; `keep_best` as in _propose."""
        import torch

        crops, valid = _crops(sums, boxes, tables, 24)
        if len(crops) == 0:
            return boxes[:0], tables[:0]
        boxes, tables = boxes[valid], tables[valid]
        reg, probs = _batched(self.rnet, crops)
        score = probs[:, 1]
        passed = score > self.thresholds[1]
        boxes = torch.cat([boxes[passed, :4], score[passed].unsqueeze(1)], dim=1)
        tables, reg = tables[passed], reg[passed]
        keep = nms(boxes[:, :4], boxes[:, 4], tables, 0.7)
        keep = keep[_first_of_each(tables[keep], keep_best)]
        boxes, tables, reg = boxes[keep], tables[keep], reg[keep]
        log.debug("RNet: %d boxes", len(boxes))
        return _square(_regress(boxes, reg)), tables

    def _output(
        self, sums: _Sums, boxes: torch.Tensor, tables: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 3: ONet on 48x48 crops, threshold, landmarks, regression, "Min" NMS (0.7) within each frame."""
        import torch

        crops, valid = _crops(sums, boxes, tables, 48)
        if len(crops) == 0:
            return boxes[:0], boxes.new_zeros((0, 5, 2)), tables[:0]
        boxes, tables = boxes[valid], tables[valid]
        reg, marks, probs = _batched(self.onet, crops)
        score = probs[:, 1]
        passed = score > self.thresholds[2]
        boxes = torch.cat([boxes[passed, :4], score[passed].unsqueeze(1)], dim=1)
        tables, reg, marks = tables[passed], reg[passed], marks[passed]
        # Landmarks are fractions of the (pixel-inclusive) box before its final regression.
        w = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        xs = w * marks[:, :5] + boxes[:, 0:1] - 1
        ys = h * marks[:, 5:10] + boxes[:, 1:2] - 1
        points = torch.stack([xs, ys], dim=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes[:, :4], boxes[:, 4], tables, 0.7, mode="min", plus_one=True)
        log.debug("ONet: %d faces", len(keep))
        return boxes[keep], points[keep], tables[keep]


def _runs(settled: list[bool]) -> list[tuple[int, int]]:
    """(start, stop) of each run of consecutive unsettled frames."""
    runs, start = [], None
    for i, done in enumerate([*settled, True]):
        if not done and start is None:
            start = i
        elif done and start is not None:
            runs.append((start, i))
            start = None
    return runs


class TrackingMTCNN(MTCNNDetector):
    """MTCNN that detects on some frames and follows the face through the others (see the module docstring).

    `detect(frames)` treats the frames as consecutive samples of one clip. The full cascade runs on frames 0,
    redetect_every, 2 x redetect_every, ... (one batch), after frames without a face, and on every frame where
    following the face fails or scores below track_min_score. Every other frame is searched only in a window around
    an earlier frame's face, at the pyramid levels near its size (`_track`), many frames per batch (`detect`).

    Args:
        weights_dir: as MTCNNDetector.
        min_face_size: as MTCNNDetector (the full cascade's pyramid).
        thresholds: as MTCNNDetector.
        min_score: as MTCNNDetector.
        device: as MTCNNDetector.
        min_face_fraction: as MTCNNDetector.
        redetect_every: run the full cascade every this many frames even when the face is followed; 0 only on the
            first frame and where following fails.
        track_min_score: a followed face scoring below this sends its frame to the full cascade.
    """

    name = "mtcnn"

    def __init__(
        self,
        weights_dir: str | pathlib.Path | None = None,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        device: str = "cpu",
        *,
        min_face_fraction: float = 0.0,
        redetect_every: int = 0,
        track_min_score: float = 0.95,
    ) -> None:
        if redetect_every < 0:
            raise ValueError(f"redetect_every must be >= 0 (0: only where following fails), got {redetect_every}")
        if not min_score <= track_min_score <= 1:
            raise ValueError(f"track_min_score must be in [min_score, 1] = [{min_score}, 1], got {track_min_score}")
        super().__init__(
            weights_dir, min_face_size, thresholds, min_score, device, min_face_fraction=min_face_fraction
        )
        self.redetect_every = int(redetect_every)
        self.track_min_score = float(track_min_score)
        self.track_candidates = TRACK_CANDIDATES

    def detect(self, frames: np.ndarray) -> list[Face | None]:
        """The face of each frame (detected or followed), or None where the full cascade finds none.

        Works in rounds, each one batch: the frames not yet settled form runs that each follow a settled frame (the
        anchor). A run whose anchor has a face is followed from it, every frame at once; a frame where that fails
        waits for a closer anchor, and the first frame of a run that has been followed from its own predecessor and
        failed goes to the full cascade. After a frame without a face, the next NO_FACE_LOOKAHEAD frames go to the
        full cascade together. Without cuts a clip takes two batches: the first frame, then all the others.

        Args:
            frames: uint8 array [N, H, W, 3], RGB: consecutive sampled frames of one clip, all the same size.
        """
        import torch

        _check_frames(frames)
        n = len(frames)
        out: list[Face | None] = [None] * n
        settled = [False] * n
        if n == 0:
            return out
        tried: set[tuple[int, int]] = set()  # (frame, anchor) pairs already followed
        with torch.inference_mode():
            self._fill(frames, list(range(0, n, self.redetect_every or n)), out, settled)
            while not all(settled):
                follow: list[tuple[int, int]] = []
                full: list[int] = []
                for start, stop in _runs(settled):
                    anchor = start - 1  # frame 0 is always detected, so every run has one
                    if out[anchor] is None:
                        full += range(start, min(stop, start + NO_FACE_LOOKAHEAD))
                    elif (start, anchor) in tried:
                        full.append(start)
                    else:
                        follow += [(t, anchor) for t in range(start, stop) if (t, anchor) not in tried]
                if follow:
                    found = self._track(frames, [t for t, _ in follow], [out[a] for _, a in follow])
                    for (t, anchor), face in zip(follow, found, strict=True):
                        tried.add((t, anchor))
                        if face is not None and face.score >= self.track_min_score:
                            out[t], settled[t] = face, True
                if full:
                    self._fill(frames, full, out, settled)
        return out

    def _fill(self, frames: np.ndarray, inds: list[int], out: list[Face | None], settled: list[bool]) -> None:
        for i, face in zip(inds, self._detect(frames, inds), strict=True):
            out[i], settled[i] = face, True

    def _track(self, frames: np.ndarray, inds: list[int], anchors: list[Face]) -> list[Face | None]:
        """The best face near each anchor (a face in an earlier frame) in frames[inds], source "tracked".

        The full cascade restricted to a window of TRACK_WINDOW x the anchor's size around it and to the pyramid
        levels whose face size is within TRACK_SIZES of the anchor's: PNet sees exactly the full pyramid's pixels
        there (`_Sums.grid`), so a face inside the window is found as the full cascade finds it. The summed-area
        tables cover the window and half a face around it, not the whole frame.
        """
        import torch

        self.counts["tracked"] += len(inds)
        h, w = frames.shape[1:3]
        boxes = np.array([a.box for a in anchors], dtype=np.float64)
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).clip(min=1.0)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        half, pad = TRACK_WINDOW * side / 2, side / 2 + 2
        top, bottom, left, right = cy - half, cy + half, cx - half, cx + half
        regions = [
            (int(np.floor(t - p)), int(np.floor(lf - p)), int(np.ceil(b + p)), int(np.ceil(r + p)))
            for t, lf, b, r, p in zip(top, left, bottom, right, pad, strict=True)
        ]
        sums = _Sums(frames, inds, self.device, regions)
        levels = []
        for scale in pyramid_scales(h, w, self.min_face(h, w)):
            face = 12 / scale
            oh, ow = int(h * scale + 1), int(w * scale + 1)
            # the window's cells in this level, from an even cell so that PNet's 2x2 pooling pairs the full level's
            r0 = (np.floor(top * oh / h).clip(0, oh) // 2 * 2).astype(np.int64)
            c0 = (np.floor(left * ow / w).clip(0, ow) // 2 * 2).astype(np.int64)
            rows = np.ceil(bottom * oh / h).clip(0, oh).astype(np.int64) - r0
            cols = np.ceil(right * ow / w).clip(0, ow).astype(np.int64) - c0
            near = (face <= TRACK_SIZES[0] * side) & (face >= TRACK_SIZES[1] * side) & (rows >= 12) & (cols >= 12)
            members = np.nonzero(near)[0]
            if not len(members):
                continue
            t = {k: torch.from_numpy(v[members]).to(self.device) for k, v in (("r0", r0), ("c0", c0))}
            t.update({k: torch.from_numpy(v[members]).to(self.device) for k, v in (("rows", rows), ("cols", cols))})
            tables = torch.from_numpy(members).to(self.device)
            size = {"rows": int(rows[members].max()), "cols": int(cols[members].max())}
            images = sums.grid(tables, (oh, ow), t["r0"], t["c0"], **size)
            levels.append(_Level(images, scale, tables, t["r0"], t["c0"], t["rows"], t["cols"]))
        boxes_t, tables = self._propose(levels, sums, keep_best=self.track_candidates[0])
        boxes_t, tables = self._refine(sums, boxes_t, tables, keep_best=self.track_candidates[1])
        return self._best(*self._output(sums, boxes_t, tables), len(inds), "tracked")


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
    name: str = "mtcnn",
    weights: str | None = None,
    device: str = "cpu",
    min_face_size: int = 20,
    *,
    min_face_fraction: float = 0.0,
    redetect_every: int = 0,
    track_min_score: float = 0.95,
) -> MTCNNDetector | HaarDetector:
    """A face detector by name.

    Args:
        name: "mtcnn" (default: detect on some frames, follow the face through the others), "mtcnn_full" (the full
            cascade on every frame) or "haar".
        weights: for mtcnn, a folder with pnet.pt/rnet.pt/onet.pt; None uses the packaged facenet-pytorch weights.
            The Haar cascade ships with OpenCV and takes none.
        device: torch device for mtcnn.
        min_face_size: smallest face side to look for, in pixels.
        min_face_fraction: mtcnn: smallest face side as a share of the frame's shorter side (the larger wins).
        redetect_every: mtcnn: the full cascade every this many frames (0: only where following fails).
        track_min_score: mtcnn: a followed face below this score is detected again on its frame.

    Raises:
        ValueError: unknown name, or weights given for haar.
    """
    if name == "mtcnn":
        return TrackingMTCNN(
            weights_dir=weights,
            min_face_size=min_face_size,
            device=device,
            min_face_fraction=min_face_fraction,
            redetect_every=redetect_every,
            track_min_score=track_min_score,
        )
    if name == "mtcnn_full":
        return MTCNNDetector(
            weights_dir=weights, min_face_size=min_face_size, device=device, min_face_fraction=min_face_fraction
        )
    if name == "haar":
        if weights is not None:
            raise ValueError("the haar detector uses OpenCV's bundled cascade and takes no weights")
        return HaarDetector(min_face_size=min_face_size)
    raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    scikit-image's `SimilarityTransform` (Umeyama 1991, no reflections).

    Args:
        src: [K, 2] points.
        dst: [K, 2] corresponding points.

    Returns:
        The 2x3 affine matrix, as cv2.warpAffine takes it.

    Raises:
        ValueError: the points do not determine a transform (fewer than two distinct points).
    """
    from skimage.transform import SimilarityTransform

    found = SimilarityTransform.from_estimate(np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64))
    if not found:
        raise ValueError(f"no similarity transform between these points: {found}")
    return found.params[:2]


def align_crop(frame: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    """A size x size uint8 RGB crop of the face.

    With landmarks, the five points are mapped onto the ArcFace 112x112 template (scaled to `size`) by a similarity
    transform and the frame is warped with cv2.warpAffine (black outside the frame). Without landmarks (or with
    landmarks that determine no transform), a square of side 1.2 x max(box width, height) around the box centre is
    cut out, padded with black where it leaves the frame, and resized with INTER_AREA.

    Args:
        frame: uint8 [H, W, 3] RGB frame.
        face: the detection in that frame.
        size: side of the output crop in pixels.
    """
    import cv2

    if face.landmarks is not None:
        template = ARCFACE_TEMPLATE * (size / 112.0)
        try:
            matrix = similarity_transform(np.array(face.landmarks), template)
        except ValueError:
            return align_crop(frame, replace(face, landmarks=None), size)
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
