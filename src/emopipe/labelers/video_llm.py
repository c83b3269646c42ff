"""Video-LLM labeler, prompted as R1-Omni: a local multimodal chat checkpoint through transformers.

The model sees the clip's sampled frames and R1-Omni's prompt; its `<think>` text is kept as the rationale,
its `<answer>` mapped onto the taxonomy by `llm_output.parse_llm_output`. An unparseable or out-of-taxonomy
answer is an abstention with the raw output kept, never a guess. Decoding is greedy, so a rerun gives the
same labels. Meant for a GPU node (`label_clips.num_gpus`); the checkpoint is a local folder
(`AutoProcessor` + `AutoModelForImageTextToText`, e.g. a Qwen2.5-VL-class model fine-tuned as R1-Omni).
The audio track is not passed to the model yet.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emopipe.config import LabelerSpec
from emopipe.labelers.base import Labeler, LabelResult, folder_version
from emopipe.labelers.classifiers import _jpegs
from emopipe.labelers.llm_output import R1_OMNI_PROMPT, parse_llm_output

log = logging.getLogger(__name__)


class VideoLLMLabeler(Labeler):
    """R1-Omni-style labelling with a local transformers chat model that accepts video.

    Args:
        spec: `path` is the checkpoint folder; `max_new_tokens` bounds the reasoning.
        device: torch device.
    """

    def __init__(self, spec: LabelerSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(spec.path, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(spec.path, local_files_only=True, dtype="auto")
        self.model.to(device).eval()
        self.version = folder_version(spec.path)

    def generate(self, frames: list[np.ndarray]) -> str:
        """The model's reply to R1-Omni's prompt about these frames (greedy decoding)."""
        import torch

        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": R1_OMNI_PROMPT}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[prompt], videos=[np.stack(frames)], return_tensors="pt").to(self.device)
        with torch.no_grad():
            ids = self.model.generate(**inputs, max_new_tokens=self.spec.max_new_tokens, do_sample=False)
        new = ids[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)[0]

    def label_batch(self, rows: list[dict[str, Any]]) -> list[LabelResult]:
        out = []
        for row in rows:
            frames = _jpegs(row.get("frames_jpeg"))
            if not frames:
                out.append(LabelResult(abstain_reason="no_frames", n_inputs=0))
                continue
            text = self.generate(frames)
            parsed = parse_llm_output(text, self.taxonomy)
            out.append(
                LabelResult(
                    label=parsed.label,
                    rationale=parsed.rationale,
                    raw_output=text,
                    abstain_reason=parsed.abstain_reason,
                    n_inputs=len(frames),
                )
            )
        return out
