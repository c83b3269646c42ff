"""GPU throughput of the video-LLM labeler: a Qwen2.5-Omni-3B-sized thinker, batch 1 vs 8 vs 32. PREPARED, NOT RUN.

What it measures: `VideoLLMLabeler.label_batch` (the class label_clips' actors run) on 64 generated clips (16
frames at 224x398 as JPEG, as extract_features stores them, plus 3 s of 16 kHz audio), each reply exactly 64 tokens
(`min_new_tokens` = `max_new_tokens` = 64 in the checkpoint's generation_config.json), with `batch_size` 1, 8 and
32: clips/s, generated tokens/s, peak GPU memory, and the speed-up of batching over batch 1 (the issue's goal: at
least 5x). The model is built from the published Qwen2.5-Omni-3B thinker sizes below (text, vision and audio
towers) with random bf16 weights and a small byte-level tokenizer (the embedding keeps the full 151,936 rows), saved
to a temporary folder and loaded back by the labeler; nothing is downloaded. Random weights compute exactly as
trained ones do per token, so the timing holds; the replies are garbage (every clip is the abstention `truncated`).

Runs on torch + transformers (>= 5.23) + the emopipe package only: no Ray, no decord. The lent GPU machine had
torch 2.11, transformers 5.17 and no pyarrow; carry the wheels it lacks in the working tree (64 MiB per call) and
install them without dependencies first, e.g.:

    pip download --no-deps -d wheels transformers==5.23.0 pyarrow==26.0.1 --python-version 3.12 \\
        --only-binary=:all: --platform manylinux2014_x86_64          # here, before the device call
    # device call (run tool), about 6 minutes of device time:
    pip install -q --no-deps --target /tmp/pylib wheels/*.whl && \\
        PYTHONPATH=/tmp/pylib:src:. python benchmarks/gpu_llm.py --out $OUT/gpu_llm.json

The preflight prints, in one line, what is missing (CUDA, modules, transformers version) and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
import tempfile
import time

# Qwen2.5-Omni-3B thinker (Qwen/Qwen2.5-Omni-3B config.json, thinker_config), as published.
TEXT_3B = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
}
VISION_3B = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "out_hidden_size": 2048,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
AUDIO_3B = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
    "n_window": 100,
    "output_dim": 2048,
}
# Qwen2.5-Omni's video pixel bounds per frame (its processor's defaults)
VIDEO_SIZE = {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28}
TOKENS = 64
CLIPS = 64
BATCHES = (1, 8, 32)


def preflight(device: str) -> str | None:
    """What is missing to run this benchmark, in one line; None when everything is there."""
    missing = []
    for module in ("torch", "transformers", "numpy", "yaml", "pyarrow", "cv2", "PIL", "tokenizers"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        return f"missing modules: {', '.join(missing)} (carry their wheels, see the docstring)"
    import torch
    import transformers

    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    try:
        importlib.import_module("transformers.video_processing_utils").VideoProcessorMixin  # noqa: B018
        importlib.import_module("transformers").Qwen2_5OmniThinkerForConditionalGeneration  # noqa: B018
    except (ImportError, AttributeError):
        return f"transformers {transformers.__version__} lacks the 5.23 API emopipe uses: carry transformers 5.23.0"
    return None


# --smoke: the same code path at toy sizes on CPU, to check the script itself where no GPU is lent
SMOKE = {
    "text": {**TEXT_3B, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "rope_parameters": {**TEXT_3B["rope_parameters"], "mrope_section": [2, 3, 3]}},
    "vision": {**VISION_3B, "depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2,
               "out_hidden_size": 32, "fullatt_block_indexes": [0]},
    "audio": {**AUDIO_3B, "d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
              "output_dim": 32},
}  # fmt: skip


def build_checkpoint(folder: pathlib.Path, device: str, smoke: bool = False) -> pathlib.Path:
    """The 3B-sized thinker with random bf16 weights, a small tokenizer, chat template, media configs."""
    import torch
    from tests import tiny_models
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    tok = tiny_models._tokenizer(folder, tiny_models._OMNI25_TOKENS)
    ids = tiny_models._ids(tok, tiny_models._OMNI25_TOKENS)
    text, vision, audio = (SMOKE["text"], SMOKE["vision"], SMOKE["audio"]) if smoke else (TEXT_3B, VISION_3B, AUDIO_3B)
    config = Qwen2_5OmniThinkerConfig(
        audio_config=audio,
        vision_config=vision,
        text_config={**text, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        # the placeholder ids are the small tokenizer's (they only have to agree with it)
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
    )
    torch.manual_seed(0)
    with torch.device(device):  # random init where the model will run: seconds on a GPU, not minutes on a CPU
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.pad_token_id]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.min_new_tokens = TOKENS  # every reply exactly TOKENS long: no early end of turn
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    (folder / "chat_template.jinja").write_text(
        tiny_models._template("<|vision_bos|><|VIDEO|><|vision_eos|>", "<|audio_bos|><|AUDIO|><|audio_eos|>")
    )
    video = {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "size": VIDEO_SIZE}
    (folder / "video_preprocessor_config.json").write_text(json.dumps(video))
    from transformers import WhisperFeatureExtractor

    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    (folder / "params.json").write_text(json.dumps({"parameters": n_params}))
    return folder


def clips(n: int) -> list[dict]:
    """n features rows: 16 JPEG frames of 224x398 (a moving gradient with noise) and 3 s of audio."""
    import numpy as np

    from emopipe.stages.audio import to_pcm16
    from emopipe.stages.extract import encode_jpeg

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:398]
    rows = []
    for i in range(n):
        frames = []
        for t in range(16):
            base = (xx + 7 * t + 13 * i) % 256
            img = np.stack([base, (yy + 3 * t) % 256, (base + yy) % 256], axis=-1) + rng.integers(0, 24, (224, 398, 3))
            frames.append(encode_jpeg(np.clip(img, 0, 255).astype(np.uint8), 90))
        time_s = np.arange(3 * 16000) / 16000
        audio = 0.2 * np.sin(2 * np.pi * (180 + 10 * i) * time_s) + 0.02 * rng.standard_normal(time_s.size)
        rows.append({
            "clip_id": f"gpu:{i:03d}",
            "frames_jpeg": frames,
            "frame_times_s": [3.0 * (k + 0.5) / 16 for k in range(16)],
            "audio_pcm16": to_pcm16(audio.astype(np.float32)),
        })  # fmt: skip
    return rows


def run(labeler, rows: list[dict], batch: int, device: str) -> dict:
    """Label every row in batches of `batch`; wall time, rates, token counts, peak memory."""
    import torch

    cuda = device == "cuda"
    labeler.spec = labeler.spec.model_copy(update=dict(batch_size=batch))  # not part of the version: same labeler
    labeler.label_batch(rows[:batch])  # warm-up: kernels, allocator
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    results = labeler.label_batch(rows)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - began
    tokens = [r.generated_tokens for r in results]
    return {
        "batch_size": batch,
        "clips": len(rows),
        "wall_s": round(wall, 2),
        "clips_per_s": round(len(rows) / wall, 3),
        "generated_tokens_per_s": round(sum(tokens) / wall, 1),
        "tokens_per_clip": sorted(set(tokens)),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "errors": sum(1 for r in results if r.error),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_llm.json", help="where the JSON results go")
    parser.add_argument("--clips", type=int, default=CLIPS)
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--smoke", action="store_true", help="toy sizes on CPU: checks the script, measures nothing")
    args = parser.parse_args(argv)
    device = "cpu" if args.smoke else "cuda"
    if problem := preflight(device):
        print(f"gpu_llm: {problem}", file=sys.stderr)
        return 2
    import torch
    import transformers

    from emopipe.config import LabelerSpec
    from emopipe.labelers.video_llm import VideoLLMLabeler

    result: dict = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (--smoke: toy sizes, not a figure)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": "Qwen2.5-Omni-3B-sized thinker, random bf16 weights",
        "tokens_per_clip": TOKENS,
        "inputs_per_clip": "16 frames 224x398 (JPEG) + 3 s audio at 16 kHz",
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="emopipe-gpu-llm-") as tmp:
        began = time.perf_counter()
        folder = build_checkpoint(pathlib.Path(tmp), device, smoke=args.smoke)
        result["build_s"] = round(time.perf_counter() - began, 1)
        result["parameters"] = json.loads((folder / "params.json").read_text())["parameters"]
        began = time.perf_counter()
        spec = LabelerSpec(name="omni3b", kind="video_llm", path=str(folder), max_new_tokens=TOKENS, dtype="bfloat16")
        labeler = VideoLLMLabeler(spec, device=device)
        result["load_s"] = round(time.perf_counter() - began, 1)
        rows = clips(args.clips)
        for batch in args.batches:
            result["runs"].append(run(labeler, rows, batch, device))
            print(json.dumps(result["runs"][-1]), flush=True)
    base = next((r for r in result["runs"] if r["batch_size"] == 1), None)
    if base:
        for r in result["runs"]:
            r["speedup_vs_batch_1"] = round(r["clips_per_s"] / base["clips_per_s"], 2)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
