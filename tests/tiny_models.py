"""Tiny transformers models built from a config and saved to a folder, loaded back by the real labeler code."""

import json
import pathlib


def videomae(folder: pathlib.Path) -> pathlib.Path:
    """A 1-layer VideoMAE video classifier (4 frames of 32x32) with classes Happy, Sad, Bored."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    names = {0: "Happy", 1: "Sad", 2: "Bored"}
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, num_labels=3,
                            id2label=names, label2id={v: k for k, v in names.items()})  # fmt: skip
    VideoMAEForVideoClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return folder


def wav2vec2(folder: pathlib.Path) -> pathlib.Path:
    """A 1-layer wav2vec2 audio classifier with classes ang, hap, and its feature extractor."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, num_labels=2, id2label={0: "ang", 1: "hap"},
                            label2id={"ang": 0, "hap": 1})  # fmt: skip
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder
