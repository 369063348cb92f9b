"""The weak pattern labeler: each pattern on real-looking text, texts that must not match,
explicit labels winning, vectors, and the demo dataset covering all 12."""

import json

import pytest

from cognitivetwin_core.annotation.patterns import (
    PATTERN_NAMES,
    label_patterns,
    names_from_mask,
    pattern_mask,
    pattern_vector,
    patterns_for,
)
from cognitivetwin_core.conversation import Message
from cognitivetwin_core.data.importers import demo_dataset_path


def test_names_are_the_twelve_in_design_order():
    assert PATTERN_NAMES == (
        "question",
        "instruction",
        "clarification",
        "code",
        "debugging",
        "explanation",
        "brainstorming",
        "planning",
        "comparison",
        "correction",
        "acknowledgement",
        "reflection",
    )


EXAMPLES = {
    "question": ["How do I reset my password?", "why does the build take so long", "Is this thread-safe?"],
    "instruction": [
        "Write a function that parses ISO dates.",
        "Please summarise this article in three bullets.",
        "Could you draft a letter to the parents",
    ],
    "clarification": [
        "What do you mean by idempotent?",
        "Just to be clear, you want the totals per month?",
        "When you say 'batch', is that per request?",
    ],
    "code": ["Try this:\n\n```python\nprint('hi')\n```", "def area(r):\n    return 3.14 * r * r\nx = area(2)\n"],
    "debugging": [
        "I get a TypeError when I call it",
        "The app crashes on start since the upgrade",
        "the test is failing in CI",
    ],
    "explanation": [
        "It hangs because the lock is never released.",
        "In other words, the cache is per process.",
        "For example, a list of three items gives three rows.",
    ],
    "brainstorming": [
        "Some ideas for the party: a quiz, a treasure hunt.",
        "What if we cached the result?",
        "Let's brainstorm names for the project",
    ],
    "planning": [
        "Here's the plan: migrate first, then backfill.",
        "Next steps: write the tests, then deploy.",
        "We need a roadmap for Q3",
    ],
    "comparison": [
        "Postgres vs SQLite for a desktop app",
        "Which is better, tabs or spaces?",
        "The difference between weather and climate",
    ],
    "correction": ["No, that's wrong: the port is 5433.", "Actually, it was 1066, not 1067.", "My mistake, it is v2."],
    "acknowledgement": ["Thanks, that worked!", "got it", "Perfect, thank you so much."],
    "reflection": [
        "Looking back, I should have checked the logs first.",
        "In hindsight the design was too clever.",
        "I realize I never asked what they needed.",
    ],
}


@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_each_pattern_is_found_in_its_examples(name):
    for text in EXAMPLES[name]:
        assert name in label_patterns(text), (name, text, label_patterns(text))


@pytest.mark.parametrize(
    "text",
    [
        "The weather was lovely on Saturday.",
        "I went to the market and bought apples and pears.",
        "The meeting is on the third floor.",
        "",
        "   ",
    ],
)
def test_neutral_text_matches_nothing(text):
    assert label_patterns(text) == []


@pytest.mark.parametrize(
    "name,text",
    [
        ("question", "The answer is forty-two."),
        ("code", "The function returns a list of names."),
        ("debugging", "Everything works and the tests pass."),
        ("acknowledgement", "The thanksgiving menu has turkey and pie, and many other dishes besides."),
        ("correction", "Nobody expected the parade to be so long."),
        ("reflection", "The mirror reflects the light onto the wall."),
        ("comparison", "We drove to the coast and swam."),
        ("clarification", "The water was clear and cold."),
    ],
)
def test_near_misses_do_not_match(name, text):
    assert name not in label_patterns(text)


def test_a_long_answer_opening_with_great_is_not_an_acknowledgement():
    text = "Great question! " + "The scheduler assigns each task to a worker. " * 20
    assert "acknowledgement" not in label_patterns(text, "assistant")


def test_tool_output_is_never_a_question_or_instruction():
    assert label_patterns("What is 2+2? Please answer.", "tool") == []


def test_labels_are_in_constant_order_and_deterministic():
    text = "Thanks! Why does this crash? Here's the plan: first, fix the bug."
    labels = label_patterns(text)
    assert labels == [name for name in PATTERN_NAMES if name in labels]
    assert labels == label_patterns(text)
    assert {"question", "debugging", "planning", "acknowledgement"} <= set(labels)


def test_explicit_labels_win_over_the_rules():
    message = Message("user", "How do I fix this crash?", patterns=["reflection", "planning"])
    assert patterns_for(message) == ["planning", "reflection"]
    assert patterns_for(Message("user", "How do I fix this crash?", patterns=[])) == []
    assert "question" in patterns_for(Message("user", "How do I fix this crash?"))


def test_vector_and_mask():
    assert pattern_vector(["code", "question", "nonsense"]) == [1.0, 0, 0, 1.0] + [0.0] * 8
    assert len(pattern_vector([])) == 12
    mask = pattern_mask(["reflection", "question"])
    assert mask == 1 | 1 << 11
    assert names_from_mask(mask) == ["question", "reflection"]


def test_the_demo_dataset_shows_every_pattern():
    found = set()
    for line in demo_dataset_path().read_text(encoding="utf-8").splitlines():
        for message in json.loads(line)["messages"]:
            found.update(label_patterns(message["content"], message["role"]))
    assert found == set(PATTERN_NAMES)
