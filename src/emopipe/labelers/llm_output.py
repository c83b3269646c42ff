"""Parse the free-text answers of R1-Omni-style video LLMs into one canonical class, or an abstention.

R1-Omni (HumanMLLM/R1-Omni) is asked `R1_OMNI_PROMPT` and writes its reasoning in `<think>...</think>` and the
emotion in `<answer>...</answer>`. The parser never guesses:

- only the LAST `<answer>` block counts; emotions named only in the reasoning never do;
- the answer must consist of emotion words that all map (through the taxonomy's synonyms) onto ONE canonical
  class: two different classes abstain with `multiple_emotions`, a word that maps nowhere (or a negation such as
  "not angry") with `unknown_emotion`;
- without an `<answer>` tag, the output counts only if, once the `<think>` block is removed, it is a bare word or a
  short phrase mapping to one class (HumanOmni-style baselines answer `fear` or `Happy.`); anything else is
  `no_answer`;
- a generation cut off by its token budget counts only if its answer was closed (`</answer>`) before the cut: an
  open answer may have been about to say "happy and sad", so it is the abstention `truncated`.

R1-Omni itself scores a reply by exact match of the `<answer>` text with the label word (its `grpo.py` accuracy
reward; `humanomni/eval/eval_mafw_dfew.py` compares the whole reply of the baselines); the words it answers with
(happy, angry, sad, neutral, surprise, disgust, fear, contemptuous, disappointed, helpless, anxious) are all in the
taxonomy's synonyms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emopipe import schemas
from emopipe.schemas import Taxonomy

R1_OMNI_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is the "
    "most obvious to you? Output the thinking process in <think> </think> and final emotion in <answer> </answer> "
    "tags."
)

ABSTAIN_REASONS = ("empty_output", "no_answer", "unknown_emotion", "multiple_emotions", "truncated")
# Longest untagged output (in words, reasoning removed) read as a bare answer: "The most obvious emotion is fear."
MAX_BARE_WORDS = 12

_FLAGS = re.IGNORECASE | re.DOTALL
# <answer> ... </answer>, or <answer> ... to the end of the text when the closing tag is missing
_ANSWER = re.compile(r"<\s*answer\s*>(.*?)(?:<\s*/\s*answer\s*>|$)", _FLAGS)
# <think> ... </think>; an unclosed block runs to the next <answer> tag or to the end of the text
_THINK = re.compile(r"<\s*think\s*>(.*?)(?:<\s*/\s*think\s*>|(?=<\s*answer\s*>)|$)", _FLAGS)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_MARKDOWN = re.compile(r"[*_`#~]")
# Phrases that may introduce the emotion word; stripped from the front, repeatedly ("Final answer: emotion: anger").
_LEADING = re.compile(
    r"^(?:"
    r"(?:final\s+)?answer\b\s*(?:is\b\s*)?[:=-]?"
    r"|(?:the\s+)?(?:final\s+|main\s+|dominant\s+|primary\s+|predicted\s+|most\s+obvious\s+)*emotions?"
    r"(?:\s+(?:conveyed|expressed|shown|displayed|detected|recognized|recognised))?"
    r"(?:\s+by\s+the\s+characters?)?(?:\s+in\s+the\s+video)?\s*(?:is|are|[:=-])"
    r"|(?:the\s+)?(?:man|woman|person|character|characters|subject|speaker|he|she|they|it)"
    r"\s+(?:is|are|seems|seem|looks|look|appears|appear|feels|feel)(?:\s+to\s+be)?"
    r"|it\s*'?\s*s\b"
    r")\s*",
    re.IGNORECASE,
)
# Words that only grade an emotion word and can be dropped without changing the class.
_INTENSIFIERS = frozenset(
    "very extremely slightly mildly somewhat quite really deeply highly strongly mostly mainly clearly "
    "predominantly primarily overall".split()
)
_TRAILING = frozenset({"emotion", "emotions", "feeling", "feelings", "mood", "expression"})
# Separators between several emotion words: punctuation, brackets ("anger (angry)") and conjunctions.
_SPLIT = re.compile(r"[,;/&+|()\[\]\n]|\b(?:and|or|but|with|plus|as\s+well\s+as|mixed\s+with)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedAnswer:
    """One model output, parsed.

    Args:
        label: the canonical class; None when the parser abstains.
        rationale: the `<think>` text, stripped; None when there is none (or it is empty).
        answer: the raw `<answer>` text (or the bare word of an untagged output), stripped; None without an answer.
        abstain_reason: None when `label` is set, else one of `ABSTAIN_REASONS`.
    """

    label: str | None
    rationale: str | None
    answer: str | None
    abstain_reason: str | None


def _rationale(text: str) -> str | None:
    blocks = [m.group(1).strip() for m in _THINK.finditer(text)]
    if not blocks and (match := _THINK_CLOSE.search(text)):
        # a chat template that opens <think> in the prompt: the output starts inside the block
        blocks = [text[: match.start()].strip()]
    blocks = [b for b in blocks if b]
    return blocks[-1] if blocks else None


def _closed_answer(text: str) -> bool:
    """Whether the last `<answer>` block of text is closed (False without any)."""
    opens = list(_ANSWER_OPEN.finditer(text))
    return bool(opens) and _ANSWER_CLOSE.search(text, opens[-1].end()) is not None


def _without_reasoning(text: str) -> str:
    text = _THINK.sub(" ", text)
    if match := _THINK_CLOSE.search(text):  # the reasoning before a stray </think>
        text = text[match.end() :]
    return text.strip()


def _strip_leading(text: str) -> str:
    while True:
        stripped = _LEADING.sub("", text, count=1).strip()
        if stripped == text or not stripped:
            return text
        text = stripped


def _words(part: str) -> str:
    words = re.sub(r"[^a-z'\- ]", " ", part).replace("-", " ").split()
    while words and words[0] in _INTENSIFIERS | {"a", "an"}:
        words = words[1:]
    while words and words[-1] in _TRAILING:
        words = words[:-1]
    return " ".join(words).strip("' ")


def _lookup(word: str, taxonomy: Taxonomy) -> str | None:
    return taxonomy.from_word(word) or (word if word in taxonomy.canonical else None)


def classify(answer: str, taxonomy: Taxonomy) -> tuple[str | None, str | None]:
    """Map an answer text onto (label, None), or (None, abstain_reason).

    Args:
        answer: the text of an `<answer>` block (or an untagged output).
        taxonomy: supplies `from_word` and the canonical classes.
    """
    text = _MARKDOWN.sub("", _TAG.sub(" ", answer)).strip().lower()
    text = _strip_leading(text.strip(" \t\n\"'.:;!?-"))
    parts = [w for p in _SPLIT.split(text) if p and (w := _words(p))]
    if not parts:
        return None, "no_answer"
    mapped = []
    for part in parts:
        if (one := _lookup(part, taxonomy)) is not None:
            mapped.append(one)
        else:  # "angry angry", "sad angry": every word must map on its own, so "not angry" stays unknown
            mapped.extend(_lookup(word, taxonomy) for word in part.split())
    known = {m for m in mapped if m is not None}
    if len(known) > 1:
        return None, "multiple_emotions"
    if None in mapped or not known:
        return None, "unknown_emotion"
    return known.pop(), None


def parse_llm_output(text: str | None, taxonomy: Taxonomy | None = None, *, truncated: bool = False) -> ParsedAnswer:
    """Parse one video-LLM output (R1-Omni `<think>`/`<answer>` format, or a bare emotion word).

    Args:
        text: the model's decoded output; None or blank abstains with `empty_output`.
        taxonomy: the taxonomy whose synonyms map answer words; default `schemas.taxonomy()`.
        truncated: the generation stopped at its token budget, not at an end-of-turn token. The output then
            counts only when an `<answer>` block was closed; otherwise it abstains with `truncated`.
    """
    if text is None or not text.strip():
        return ParsedAnswer(None, None, None, "truncated" if truncated else "empty_output")
    tax = taxonomy or schemas.taxonomy()
    rationale = _rationale(text)
    if truncated and not _closed_answer(text):
        answers = [m.group(1).strip() for m in _ANSWER.finditer(text)]
        return ParsedAnswer(None, rationale, answers[-1] if answers else None, "truncated")
    answers = [m.group(1) for m in _ANSWER.finditer(text)]
    if answers:
        answer = answers[-1].strip()
        label, reason = classify(answer, tax)
        return ParsedAnswer(label, rationale, answer, reason)
    bare = _without_reasoning(text)
    if bare and len(bare.split()) <= MAX_BARE_WORDS:
        label, reason = classify(bare, tax)
        if label is not None:
            return ParsedAnswer(label, rationale, bare, None)
    return ParsedAnswer(None, rationale, None, "no_answer")
