"""Parsing R1-Omni-style video-LLM outputs: the last <answer> counts, reasoning never does, no guessing."""

import pytest

from emopipe.labelers.llm_output import R1_OMNI_PROMPT, ParsedAnswer, parse_llm_output

R1_OMNI_FULL = (
    "<think>In the video, the man's furrowed brows, narrowed eyes and tightly pressed lips, together with his raised "
    "voice and sharp tone when he says 'I told you not to touch it', suggest anger.</think>\n<answer>angry</answer>"
)
MIXED_REASONING = (
    "The subject shows confusion, anger, and excitement: his eyebrows are raised, his voice rises sharply and he "
    "gestures quickly while speaking."
)


def test_prompt_is_r1_omnis():
    assert R1_OMNI_PROMPT == (
        "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is the "
        "most obvious to you? Output the thinking process in <think> </think> and final emotion in <answer> "
        "</answer> tags."
    )


def test_full_r1_omni_answer():
    parsed = parse_llm_output(R1_OMNI_FULL)
    assert parsed.label == "anger"
    assert parsed.answer == "angry"
    assert parsed.abstain_reason is None
    assert parsed.rationale.startswith("In the video, the man's furrowed brows")
    assert parsed.rationale.endswith("suggest anger.")


def test_answer_wins_over_emotions_named_in_the_reasoning():
    parsed = parse_llm_output(f"<think>{MIXED_REASONING}</think>\n<answer>anger</answer>")
    assert parsed == ParsedAnswer("anger", MIXED_REASONING, "anger", None)


def test_reasoning_without_answer_abstains():
    assert parse_llm_output(f"<think>{MIXED_REASONING}</think>") == ParsedAnswer(
        None, MIXED_REASONING, None, "no_answer"
    )
    assert parse_llm_output(MIXED_REASONING) == ParsedAnswer(None, None, None, "no_answer")
    # an unclosed <think> is all reasoning, even when it ends on an emotion word
    assert parse_llm_output("<think>He looks angry").abstain_reason == "no_answer"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("fear", "fear"),
        ("Happy.", "happiness"),
        ("  Sad\n", "sadness"),
        ("**Anger**.", "anger"),
        ("<think>Wide eyes, a gasp.</think>\nsurprised", "surprise"),
        ("The most obvious emotion conveyed by the characters is disgust.", "disgust"),
    ],
)
def test_bare_answer_of_baseline_models(text, label):
    parsed = parse_llm_output(text)
    assert parsed.label == label
    assert parsed.abstain_reason is None
    assert parsed.answer == text.split("</think>")[-1].strip()


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("angry", "anger"),
        ("**Anger**.", "anger"),
        ("Emotion: happy", "happiness"),
        ("The emotion is sadness.", "sadness"),
        ("Final answer: fearful", "fear"),
        ("very happy", "happiness"),
        ("anger (angry)", "anger"),
        ("angry, angry", "anger"),
        ("Helpless", "helplessness"),
        ("calm", "calm"),
        ("contempt", "contempt"),
    ],
)
def test_answer_normalisation(answer, label):
    parsed = parse_llm_output(f"<think>...</think><answer>{answer}</answer>")
    assert (parsed.label, parsed.answer, parsed.abstain_reason) == (label, answer, None)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("confused", "unknown_emotion"),
        ("excitement", "unknown_emotion"),
        ("not angry", "unknown_emotion"),
        ("happy but confused", "unknown_emotion"),
        ("sad, angry", "multiple_emotions"),
        ("surprise and fear", "multiple_emotions"),
        ("happy/sad", "multiple_emotions"),
        ("", "no_answer"),
    ],
)
def test_answers_that_abstain(answer, reason):
    parsed = parse_llm_output(f"<think>The woman frowns.</think>\n<answer>{answer}</answer>")
    assert parsed == ParsedAnswer(None, "The woman frowns.", answer, reason)


def test_bare_word_that_maps_nowhere_is_no_answer():
    assert parse_llm_output("confused").abstain_reason == "no_answer"
    assert parse_llm_output("sad, angry").abstain_reason == "no_answer"


def test_last_answer_block_counts():
    text = "<think>First sad, then he shouts.</think><answer>sad</answer>\nOn reflection:\n<answer>angry</answer>"
    parsed = parse_llm_output(text)
    assert (parsed.label, parsed.answer) == ("anger", "angry")


def test_unclosed_answer_at_the_end():
    parsed = parse_llm_output("<think>Clenched jaw, shouting.</think>\n<answer>angry")
    assert parsed == ParsedAnswer("anger", "Clenched jaw, shouting.", "angry", None)


def test_uppercase_tags_and_inner_whitespace():
    parsed = parse_llm_output("<THINK>\n  Tears, a trembling voice.\n</THINK>\n< Answer >\n  Sad \n</ANSWER>")
    assert parsed == ParsedAnswer("sadness", "Tears, a trembling voice.", "Sad", None)


def test_output_that_starts_inside_the_think_block():
    """Chat templates that open <think> in the prompt leave only the closing tag in the output."""
    parsed = parse_llm_output("Wide eyes and a scream.</think>\n<answer>fear</answer>")
    assert parsed == ParsedAnswer("fear", "Wide eyes and a scream.", "fear", None)


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_empty_output(text):
    assert parse_llm_output(text) == ParsedAnswer(None, None, None, "empty_output")
