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


# --- Tiny Qwen-family video(+audio) chat models for the video_llm labeler -----------------------------------------
# Each is a real transformers checkpoint folder (config + random weights + a byte-level BPE tokenizer trained on a
# few sentences + a chat template + video/audio preprocessor configs), small enough to generate on CPU in
# milliseconds. Their output is random text unless `steer` writes a generation setting that favours a known reply.

# the multimodal placeholder tokens of each family, as their tokenizers name them
_OMNI25_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}
_OMNI3_TOKENS = {
    "audio_token": "<|audio_pad|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
}
_VL_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}

# A Qwen-style chat template: ChatML turns, one placeholder block per video/audio content item.
_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}VIDEO_BLOCK"
    "{% elif part['type'] == 'audio' %}AUDIO_BLOCK"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = [
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is the most "
    "obvious to you? Output the thinking process in <think> </think> and final emotion in <answer> </answer> tags.",
    "happy sad angry neutral surprise disgust fear contemptuous disappointed helpless anxious calm fearful surprised",
    "You are a helpful assistant. system user assistant The woman smiles and her voice is bright.",
    "<think>The man frowns.</think><answer>angry</answer> <think> </think> <answer> </answer>",
]


def _tokenizer(folder: pathlib.Path, tokens: dict[str, str]):
    """A byte-level BPE tokenizer (Qwen2-style) with ChatML and the family's multimodal tokens, saved to folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *dict.fromkeys(tokens.values())]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens=tokens
    )
    tok.save_pretrained(folder)
    return tok


def _template(video_block: str, audio_block: str | None) -> str:
    return _TEMPLATE.replace("VIDEO_BLOCK", video_block).replace("AUDIO_BLOCK", audio_block or "")


def _media_configs(folder: pathlib.Path, patch: int, audio: bool) -> None:
    """Preprocessor settings of a tiny checkpoint: few pixels per frame (few vision tokens), Whisper features."""
    merge = 2
    video = {
        "patch_size": patch,
        "temporal_patch_size": 2,
        "merge_size": merge,
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
        "size": {"shortest_edge": 4 * (patch * merge) ** 2, "longest_edge": 6 * (patch * merge) ** 2},
    }
    (folder / "video_preprocessor_config.json").write_text(json.dumps(video))
    if audio:
        from transformers import WhisperFeatureExtractor

        WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)


def _ids(tok, tokens: dict[str, str]) -> dict[str, int]:
    return {name: tok.convert_tokens_to_ids(t) for name, t in tokens.items()}


def _finish(model, tok, folder: pathlib.Path, template: str) -> pathlib.Path:
    model.generation_config.bos_token_id = None
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.pad_token_id]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(template)
    return folder


# 1 block of width 16 for vision, 1 layer of width 32 for text, 1 layer of width 16 for audio
_VISION = {
    "depth": 1,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_heads": 2,
    "out_hidden_size": 32,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
}
_VISION_QWEN2 = {**_VISION, "patch_size": 14, "fullatt_block_indexes": [0]}
_VISION_QWEN3 = {**_VISION, "patch_size": 16, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}
_AUDIO = {
    "num_mel_bins": 128,
    "encoder_layers": 1,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "d_model": 16,
    "output_dim": 32,
}
_ROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}


def _text(tok, **extra) -> dict:
    return {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "bos_token_id": None,
        "rope_parameters": _ROPE,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        **extra,
    }


_QWEN3_TEXT = {"head_dim": 16, "rope_parameters": {**_ROPE, "mrope_interleaved": True}}


def qwen2_5_omni_thinker(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Qwen2.5-Omni thinker (1 text layer, 1 vision block, 1 audio layer) that hears the audio track."""
    import torch
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    tok = _tokenizer(folder, _OMNI25_TOKENS)
    ids = _ids(tok, _OMNI25_TOKENS)
    config = Qwen2_5OmniThinkerConfig(
        audio_config={**_AUDIO, "n_window": 100},
        vision_config=_VISION_QWEN2,
        text_config=_text(tok),
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
    )
    torch.manual_seed(seed)
    _media_configs(folder, 14, audio=True)
    template = _template("<|vision_bos|><|VIDEO|><|vision_eos|>", "<|audio_bos|><|AUDIO|><|audio_eos|>")
    return _finish(Qwen2_5OmniThinkerForConditionalGeneration(config), tok, folder, template)


def qwen2_5_omni(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A full Qwen2.5-Omni checkpoint (model_type qwen2_5_omni, weights under `thinker.`) whose thinker is
    `qwen2_5_omni_thinker(seed)`'s: the same replies when only the thinker is loaded. No talker is saved (it speaks,
    and the labeler never loads it)."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoConfig, Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration as Thinker

    with tempfile.TemporaryDirectory() as tmp:
        thinker = qwen2_5_omni_thinker(pathlib.Path(tmp), seed)
        config = Qwen2_5OmniConfig(
            thinker_config=AutoConfig.from_pretrained(thinker).to_dict(), enable_audio_output=False
        )
        torch.manual_seed(seed)
        full = Qwen2_5OmniForConditionalGeneration(config)
        full.thinker.load_state_dict(Thinker.from_pretrained(thinker).state_dict())
        full.save_pretrained(folder)
        for f in thinker.iterdir():
            if f.name not in {"config.json", "model.safetensors"}:
                shutil.copy(f, folder / f.name)
    return folder


def qwen2_5_vl(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Qwen2.5-VL (1 text layer, 1 vision block): frames only, no audio."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = _tokenizer(folder, _VL_TOKENS)
    ids = _ids(tok, _VL_TOKENS)
    config = Qwen2_5_VLConfig(
        vision_config=_VISION_QWEN2,
        text_config=_text(tok),
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        vision_start_token_id=ids["vision_start_token"],
        vision_end_token_id=ids["vision_end_token"],
    )
    torch.manual_seed(seed)
    _media_configs(folder, 14, audio=False)
    template = _template("<|vision_start|><|video_pad|><|vision_end|>", None)
    return _finish(Qwen2_5_VLForConditionalGeneration(config), tok, folder, template)


def qwen3_vl(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Qwen3-VL (1 text layer, 1 vision block with one deepstack level): frames only, with frame timestamps."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tok = _tokenizer(folder, _VL_TOKENS)
    ids = _ids(tok, _VL_TOKENS)
    config = Qwen3VLConfig(
        vision_config=_VISION_QWEN3,
        text_config=_text(tok, **_QWEN3_TEXT),
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        vision_start_token_id=ids["vision_start_token"],
        vision_end_token_id=ids["vision_end_token"],
    )
    torch.manual_seed(seed)
    _media_configs(folder, 16, audio=False)
    template = _template("<|vision_start|><|video_pad|><|vision_end|>", None)
    return _finish(Qwen3VLForConditionalGeneration(config), tok, folder, template)


def qwen3_omni_moe_thinker(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Qwen3-Omni thinker (1 MoE text layer of 4 experts, 1 vision block, 1 audio layer) that hears the audio."""
    import torch
    from transformers import Qwen3OmniMoeThinkerConfig, Qwen3OmniMoeThinkerForConditionalGeneration

    tok = _tokenizer(folder, _OMNI3_TOKENS)
    ids = _ids(tok, _OMNI3_TOKENS)
    moe = {"moe_intermediate_size": 16, "num_experts": 4, "num_experts_per_tok": 2}
    config = Qwen3OmniMoeThinkerConfig(
        audio_config={**_AUDIO, "n_window": 50, "downsample_hidden_size": 8},
        vision_config=_VISION_QWEN3,
        text_config=_text(tok, **_QWEN3_TEXT, **moe),
        audio_token_id=ids["audio_token"],
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        vision_start_token_id=ids["vision_bos_token"],
    )
    torch.manual_seed(seed)
    _media_configs(folder, 16, audio=True)
    template = _template("<|vision_start|><|video_pad|><|vision_end|>", "<|audio_start|><|audio_pad|><|audio_end|>")
    return _finish(Qwen3OmniMoeThinkerForConditionalGeneration(config), tok, folder, template)


def steer(folder: pathlib.Path, reply: str, bias: float = 50.0) -> pathlib.Path:
    """Make a tiny checkpoint's greedy reply `reply` (then end of turn), through its own generation_config.json.

    A `sequence_bias` entry per prefix of the reply adds `bias` to the reply's next token once the tokens before it
    (from the generation prompt's last token on) were generated: a real generation setting the labeler passes through
    untouched, not a stand-in for the model. The random weights still compute every step.
    """
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(folder)
    start = tok.encode("assistant\n")[-1]  # the generation prompt ends "<|im_start|>assistant\n"
    target = [start, *tok.encode(reply), tok.eos_token_id]
    config = GenerationConfig.from_pretrained(folder)
    config.sequence_bias = [[target[: i + 1], bias] for i in range(1, len(target))]
    config.save_pretrained(folder)
    return folder
