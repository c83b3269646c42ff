"""Tiny transformers classifiers built from a config, with weights set by hand so their answer is known, saved to a
folder and loaded back by the real estimator code (no mocks of transformers).

- `brightness_face`: a one-stage ResNet image classifier that says "female" when a face crop's mean brightness is
  above a threshold and "male" below it: it is right or wrong for a group exactly as the clips' faces are lit.
- `constant_voice`: a one-layer wav2vec2 audio classifier whose head ignores the audio and says one class with a
  fixed probability: right for one group, wrong for the other.
"""

from __future__ import annotations

import math
import pathlib


def brightness_face(
    folder: pathlib.Path, threshold: float = 0.45, classes: tuple[str, str] = ("Male", "Female"), sharpness: float = 60
) -> pathlib.Path:
    """A ResNet classifier whose second class wins when the mean brightness (0..1) of the image exceeds `threshold`.

    The stem convolution averages the 7x7 neighbourhood of every pixel over the three channels into channel 0 (the
    other channels stay 0; batch norm is the identity with its initial statistics, ReLU keeps positive values), the
    residual block adds nothing (its last convolution is zero), global average pooling gives the image's brightness
    (a little above it: the stem's max-pool), and the head turns it into logits [0, sharpness * (b - threshold)].
    """
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    names = dict(enumerate(classes))
    config = ResNetConfig(num_channels=3, embedding_size=4, hidden_sizes=[4], depths=[1], layer_type="basic",
                          num_labels=2, id2label=names, label2id={v: k for k, v in names.items()})  # fmt: skip
    model = ResNetForImageClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        model.resnet.embedder.embedder.convolution.weight[0].fill_(1.0 / (3 * 7 * 7))
        head = model.classifier[1]
        head.weight[1, 0] = sharpness
        head.bias[1] = -sharpness * threshold
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.0] * 3, image_std=[1.0] * 3).save_pretrained(
        folder
    )
    return folder


def constant_voice(
    folder: pathlib.Path, says: int = 0, probability: float = 0.9, classes: tuple[str, ...] = ("male", "female")
) -> pathlib.Path:
    """A wav2vec2 audio classifier that gives class `says` probability `probability` whatever it hears."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    names = dict(enumerate(classes))
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, num_labels=len(classes), id2label=names,
                            label2id={v: k for k, v in names.items()})  # fmt: skip
    model = Wav2Vec2ForSequenceClassification(config).eval()
    rest = (1 - probability) / (len(classes) - 1)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([math.log(probability if i == says else rest) for i in names]))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder
