"""The `r1omni` export, read the way R1-Omni's code reads it (HumanMLLM/R1-Omni: src/r1-v/src/open_r1/grpo.py,
humanomni/eval/eval_mafw_dfew.py): answers in its label words, matched exactly inside <answer>…</answer>."""

from __future__ import annotations

import hashlib
import json
import pathlib
import re

import pyarrow as pa

from emopipe import splits
from emopipe.dataset import DatasetWriter
from emopipe.exports import api as exports
from emopipe.exports.r1omni import WORDS, vocabulary


def accuracy_reward(content: str, sol: str) -> float:
    """R1-Omni's accuracy reward (grpo.py), its string-matching branch: the text inside <answer>…</answer>, stripped,
    of the completion and of the solution must be equal."""
    sol_match = re.search(r"<answer>(.*?)</answer>", sol)
    ground_truth = sol_match.group(1).strip() if sol_match else sol.strip()
    content_match = re.search(r"<answer>(.*?)</answer>", content)
    student_answer = content_match.group(1).strip() if content_match else content.strip()
    return 1.0 if student_answer == ground_truth else 0.0


def format_reward(content: str) -> float:
    """R1-Omni's format reward (grpo.py)."""
    return 1.0 if re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", content, re.DOTALL) else 0.0


def load_video_dataset(path: pathlib.Path) -> list[dict]:
    """grpo.py's load_video_dataset: video, problem and the solution `<answer> {gpt value} </answer>`."""
    out = []
    for entry in json.loads(path.read_text()):
        problem = None
        for conversation in entry["conversations"]:
            if conversation["from"] == "human":
                problem = conversation["value"]
            elif conversation["from"] == "gpt" and problem is not None:
                out.append(
                    {
                        "video": entry["video"],
                        "problem": problem,
                        "solution": f"<answer> {conversation['value']} </answer>",
                    }
                )
    return out


def test_rlvr_and_eval_files_follow_r1omnis_code(published, tmp_path):
    ds = published.dataset
    out = tmp_path / "r1"
    exports.export(ds, exports.Options(format="r1omni", out=out, protocol=splits.LOAO, fold=1, progress=False),
                   version=published.tag)  # fmt: skip
    clips = {r["clip_id"]: r for r in ds.clips.to_pylist()}
    labels = dict(zip(ds.fused_labels["clip_id"].to_pylist(), ds.fused_labels["train_label"].to_pylist(),
                      strict=True))  # fmt: skip
    train = json.loads((out / "rlvr_train.json").read_text())
    assert train and len(load_video_dataset(out / "rlvr_train.json")) == len(train)
    for entry, sample in zip(train, load_video_dataset(out / "rlvr_train.json"), strict=True):
        human, gpt = entry["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<video>\n<audio>\n")
        word = gpt["value"]
        assert word in vocabulary("ravdess") and word == WORDS[labels[entry["clip_id"]]]
        assert accuracy_reward(f"<think>the brows are drawn</think>\n<answer>{word}</answer>", sample["solution"]) == 1
        wrong = next(w for w in vocabulary("ravdess") if w != word)
        assert accuracy_reward(f"<think>hm</think><answer>{wrong}</answer>", sample["solution"]) == 0
        assert clips[entry["clip_id"]]["media_form"] == "video" and pathlib.Path(entry["video"]).is_file()
        assert clips[entry["clip_id"]]["subject_id"] == "ravdess:actor_02"  # fold 1 trains on actor 2
    evaluation = json.loads((out / "eval_test.json").read_text())
    assert evaluation
    for entry in evaluation:
        meta = json.loads(pathlib.Path(entry["clip_meta_path"]).read_text())
        assert meta["clip_id"] == entry["clip_id"] and meta["frame_indices"]
        assert entry["conversations"][1]["value"] == WORDS[clips[entry["clip_id"]]["label"]]  # the human label
    report = json.loads((out / "export_report.json").read_text())["rows"]
    audio_only = {c for c, r in clips.items() if r["media_form"] == "audio" and r["subject_id"] in
                  {"ravdess:actor_01", "ravdess:actor_02"}}  # fmt: skip
    assert {r["clip_id"] for r in report if r["reason"] == "no_video"} == audio_only  # reported, not dropped
    assert json.loads((out / "sft_cold_start.json").read_text()) == []  # no video-LLM labelled this version
    assert "json_path" in (out / "rlvr.yaml").read_text()


def test_vocabularies_are_r1omnis():
    assert set(vocabulary("dfew")) == {"happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"}
    assert set(vocabulary("mafw")) - set(vocabulary("dfew")) == {"contemptuous", "disappointed", "helpless", "anxious"}
    assert set(WORDS.values()) == set(vocabulary("mafw")) | {"calm"}


def test_cold_start_sft_from_video_llm_rationales_that_agree(published, tmp_path):
    """A version with a video-LLM's rationales: the SFT file holds the train clips where it agreed with the human."""
    ds = published.dataset
    clips = [r for r in ds.clips.to_pylist() if r["media_form"] == "video"]
    rows = []
    for n, clip in enumerate(clips):
        agree = n % 2 == 0
        label = clip["label"] if agree else next(c for c in WORDS if c != clip["label"])
        rationale = f"the face looks {label} (clip {n})"
        rows.append({"clip_id": clip["clip_id"], "corpus": "ravdess", "sha256": clip["sha256"], "labeler": "r1@abc",
                     "label": label, "rationale": rationale, "raw_output": "..."})  # fmt: skip
    from emopipe import schemas

    extra = schemas.from_rows(rows, schemas.load_schema("labels"))
    with DatasetWriter(tmp_path / "ds", corpora=ds.corpora, synthetic=ds.synthetic, stages=ds.stages) as writer:
        writer.pass_through(ds, [t for t in ds.manifest["tables"] if t != "labels"])
        writer.write_table("labels", pa.concat_tables([ds.labels, extra]))
        llm = writer.commit()
    out = tmp_path / "r1"
    exports.export(llm, exports.Options(format="r1omni", out=out, protocol=splits.LOAO, fold=1, copy_media=True,
                                        progress=False), version="v1+llm")  # fmt: skip
    sft = json.loads((out / "sft_cold_start.json").read_text())
    agreeing = {r["clip_id"] for n, r in enumerate(rows) if n % 2 == 0}
    train = {c for c, s in splits.assignment(ds.splits, {"ravdess": splits.LOAO}, 1).items() if s == "train"}
    assert {e["clip_id"] for e in sft} == agreeing & train
    for entry in sft:
        human, gpt = entry["conversations"]
        assert human["value"].endswith("final emotion in <answer> </answer> tags.")
        assert format_reward(gpt["value"]) == 1.0
        assert accuracy_reward(gpt["value"], f"<answer> {WORDS[ds_label(ds, entry['clip_id'])]} </answer>") == 1.0
        copied = pathlib.Path(entry["video"])  # copy_media: under media/RAVDESS/, the same bytes
        assert copied.is_relative_to(out.resolve() / "media" / "RAVDESS")
        assert hashlib.sha256(copied.read_bytes()).hexdigest() == next(
            r["sha256"] for r in rows if r["clip_id"] == entry["clip_id"]
        )


def ds_label(ds, clip_id: str) -> str:
    return next(r["label"] for r in ds.clips.to_pylist() if r["clip_id"] == clip_id)
