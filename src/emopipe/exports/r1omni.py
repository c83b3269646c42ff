"""The `r1omni` export: the JSON files R1-Omni's and HumanOmni's training and evaluation code read.

As in HumanMLLM/R1-Omni (README "Cold Start" and "RLVR"; src/r1-v/src/open_r1/grpo.py `load_video_dataset`;
humanomni/eval/eval_mafw_dfew.py), every file is a list of

    {"video": PATH, "conversations": [{"from": "human", "value": "<video>\\n<audio>\\n" + PROMPT},
                                      {"from": "gpt", "value": ANSWER}]}

- `rlvr_train.json`: the fold's train clips; ANSWER is the bare label word. grpo.py wraps it as
  `<answer> {word} </answer>` and its accuracy reward compares the text inside `<answer>…</answer>` of the
  completion with it, stripped, for exact equality; so the words must be R1-Omni's own.
- `sft_cold_start.json`: train clips where a video-LLM labeler gave a rationale and agreed with the human label;
  ANSWER is `<think>{rationale}</think>\\n<answer>{word}</answer>` and the prompt asks for that format (R1-Omni's
  cold-start example). Empty when no video-LLM labeled the version.
- `eval_test.json`: the fold's test clips with a human label, each with `clip_meta_path` (a JSON file of the
  clip's sampled frames, face boxes and labels under meta/), as eval_mafw_dfew.py reads them; that script tells
  MAFW from DFEW by "MAFW" in the video path, which copied media keeps (media/MAFW/...).
- `rlvr.yaml`, `sft.yaml`: HumanOmni dataset lists (`datasets: [{json_path, sampling_strategy: all}]`).

Label words: happy, sad, neutral, angry, surprise, disgust, fear; MAFW adds contemptuous, disappointed, helpless,
anxious; RAVDESS adds calm (eval_ravedess.py maps fearful/surprised to fear/surprise and keeps calm). R1-Omni reads
video (with its audio track): audio-only clips are left out and reported. Paths are absolute (HumanOmni joins
them with its data folder, which leaves an absolute path as it is; grpo.py opens them as they are).
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from emopipe import io
from emopipe.exports.base import Writer, metadata
from emopipe.exports.plan import SPLIT_NAMES, Item

# canonical class -> R1-Omni's answer word
WORDS = {
    "neutral": "neutral", "calm": "calm", "happiness": "happy", "sadness": "sad", "anger": "angry", "fear": "fear",
    "surprise": "surprise", "disgust": "disgust", "contempt": "contemptuous", "anxiety": "anxious",
    "helplessness": "helpless", "disappointment": "disappointed",
}  # fmt: skip
BASIC = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
VOCABULARY = {
    "dfew": BASIC,
    "mafw": (*BASIC, "contemptuous", "disappointed", "helpless", "anxious"),
    "ravdess": (*BASIC, "calm"),
}
PREFIX = "<video>\n<audio>\n"
QUESTION = "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is the most obvious to you?"  # noqa: E501 - R1-Omni's prompt, verbatim
THINK = " Output the thinking process in <think> </think> and final emotion in <answer> </answer> tags."
EVAL_QUESTION = "As an emotional recognition expert, in the video, when the characters display their emotions, which predominant feeling is most clearly expressed?\n"  # noqa: E501 - eval_mafw_dfew.py's base prompt, verbatim
FILES = {"rlvr": "rlvr_train.json", "sft": "sft_cold_start.json", "eval": "eval_test.json"}
BATCH = 64  # clips per unit (their meta files and copied media)


def vocabulary(corpus: str) -> tuple[str, ...]:
    """R1-Omni's label words for a corpus (any corpus it was not trained on: every word emopipe maps to)."""
    return VOCABULARY.get(corpus, tuple(WORDS.values()))


def answer_of(text: str) -> str:
    """The answer R1-Omni's accuracy reward compares: the text inside <answer>…</answer>, stripped, else all of it."""
    match = re.search(r"<answer>(.*?)</answer>", text)
    return match.group(1).strip() if match else text.strip()


class R1OmniWriter(Writer):
    """Writes the JSON files, meta/<key>.json per clip, and with copy_media media/<CORPUS>/<path>."""

    columns = ("clip_id", "frame_indices", "frame_times_s", "face_boxes", "face_share")
    on_missing = "left out"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batch: dict[str, list[tuple[Item, dict[str, Any] | None]]] = {s: [] for s in SPLIT_NAMES}
        self.rationales = self._rationales()

    def _rationales(self) -> dict[str, str]:
        """clip_id -> the rationale of a video-LLM labeler that agreed with the clip's human label."""
        if not self.ds.has("labels"):
            return {}
        labels = self.ds.column_table("labels", ["clip_id", "labeler", "label", "rationale"])
        human = {i.clip.clip_id: i.human_label for i in self.plan.all_items() if i.human_label}
        out: dict[str, str] = {}
        rows = sorted(zip(*(labels[c].to_pylist() for c in ("clip_id", "labeler", "label", "rationale")), strict=True))
        for cid, _, label, rationale in rows:
            if rationale and rationale.strip() and label is not None and human.get(cid) == label:
                out.setdefault(cid, rationale.strip())
        return out

    def add(self, item: Item, feat: dict[str, Any] | None) -> None:
        self.batch[item.split].append((item, feat))
        if len(self.batch[item.split]) >= BATCH:
            self._commit(item.split)

    def _video(self, item: Item, tmp: pathlib.Path) -> tuple[str | None, str | None]:
        """(the path the JSON names, the file or folder to commit under media/) for a clip with video."""
        rel = f"media/{item.clip.corpus.upper()}/{item.clip.media_path}"
        if not self.options.copy_media:
            return self.media_path(item), None
        if item.media_problem:
            return None, None
        from emopipe.exports import media

        dest = tmp / rel
        if problem := media.copy_verified(item.clip, self.roots[item.clip.corpus], dest):
            self.problem(item, problem)
            return None, None
        return str((self.stage.out / rel).resolve()), rel

    def _commit(self, split: str) -> None:
        batch, self.batch[split] = self.batch[split], []
        n = len(self.stage.units(split))
        tmp = self.stage.temp(f"{split}-{n:05d}")
        files: dict[str, pathlib.Path] = {}
        entries: dict[str, Any] = {"rlvr": [], "sft": [], "eval": [], "left_out": {}, "rows": []}
        left = entries["left_out"]
        for item, feat in batch:
            if item.clip.media_form == "audio" or item.meta.get("has_video") is False:
                left["no_video"] = left.get("no_video", 0) + 1
                entries["rows"].append(
                    {"clip_id": item.clip.clip_id, "split": split, "reason": "no_video",
                     "detail": "R1-Omni reads video; this clip has audio only", "action": "left out"}
                )  # fmt: skip
                continue
            word = WORDS.get(item.label or "")
            video, copied = self._video(item, tmp)
            if video is None:
                continue  # missing or changed media: reported by the driver (on_missing: left out)
            if copied:
                files[copied] = tmp / copied
            meta_rel = f"meta/{item.key}.json"
            facts = {k: (feat or {}).get(k) for k in ("frame_indices", "frame_times_s", "face_boxes", "face_share")}
            io.write_json(tmp / meta_rel, metadata(item, self.plan, {"video": video, "answer": word, **facts}))
            files[meta_rel] = tmp / meta_rel
            if split == "train" and word:
                entries["rlvr"].append(_entry(video, PREFIX + QUESTION, word, item))
                if (why := self.rationales.get(item.clip.clip_id)) and item.label == item.human_label:
                    thought = why.replace("<think>", "").replace("</think>", "").strip()
                    entries["sft"].append(
                        _entry(
                            video,
                            PREFIX + QUESTION + THINK,
                            f"<think>{thought}</think>\n<answer>{word}</answer>",
                            item,
                        )
                    )
            if split == "test":
                if (human := WORDS.get(item.human_label or "")) is None:
                    left["eval_no_human_label"] = left.get("eval_no_human_label", 0) + 1
                    entries["rows"].append(
                        {"clip_id": item.clip.clip_id, "split": split, "reason": "no_human_label",
                         "detail": "evaluation needs the human label", "action": "left out of eval_test.json"}
                    )  # fmt: skip
                    continue
                entry = _entry(video, PREFIX + EVAL_QUESTION, human, item)
                entry["clip_meta_path"] = str((self.stage.out / meta_rel).resolve())
                entries["eval"].append(entry)
        io.write_json(self.stage.dir / "entries" / f"{split}-{n:05d}.json", entries)
        self.commit(split, len(batch), files)

    def close(self) -> tuple[dict[str, Any], dict[str, Any]]:
        for split in SPLIT_NAMES:
            if self.batch[split]:
                self._commit(split)
        self.finish_problems()
        lists: dict[str, list[dict[str, Any]]] = {k: [] for k in FILES}
        for split in SPLIT_NAMES:
            for n in range(len(self.stage.units(split))):
                part = io.read_json(self.stage.dir / "entries" / f"{split}-{n:05d}.json")
                for name in FILES:
                    lists[name] += part[name]
                self.plan.left_out.update(part["left_out"])
                self.plan.rows += part["rows"]
        extra: dict[str, Any] = {FILES[k]: v for k, v in lists.items()}
        out = self.stage.out.resolve()
        for name, key in (("rlvr.yaml", "rlvr"), ("sft.yaml", "sft")):
            extra[name] = (
                f"datasets:\n  - json_path: {json.dumps(str(out / FILES[key]))}\n    sampling_strategy: all\n"
            )
        from emopipe.exports import card

        extra["README.md"] = card.export_readme(self.plan, self.options, self.ds, [])
        counts = {FILES[k]: len(v) for k, v in lists.items()}
        vocab = {c: list(vocabulary(c)) for c in sorted(self.plan.protocols)}
        return {"files": counts, "label_words": WORDS, "vocabulary": vocab}, extra


def _entry(video: str, question: str, answer: str, item: Item) -> dict[str, Any]:
    return {
        "video": video,
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}],
        "clip_id": item.clip.clip_id,
        "source": item.clip.corpus,
    }
