"""The blind test (docs/judging.md): for held-out contexts the person sees their real reply and
the twin's in random order and picks the one they wrote ("mine"), or the twin's ("twin").

    test = BlindTest.for_adapter(adapter_dir, mode="mine", seed=0)
    for pair in test.pairs: ... pair.first, pair.second ... test.answer(pair, 1)   # or None to skip
    score_text(tally, mode)   # "You picked your own reply 13 of 20 (interval 42%–81%); the twin fooled you 7 times"

The pairs come from the adapter's evaluation.json (held-out contexts the adapter never
trained on); the order of each pair is a seeded coin, saved with the answer.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.playground.judges.intervals import wilson

KEYS = "1 or 2 to choose, s to skip, q to stop"


@dataclass(frozen=True)
class BlindPair:
    example: int
    context: str
    real: str
    twin: str
    real_position: int

    @property
    def first(self) -> str:
        return self.real if self.real_position == 1 else self.twin

    @property
    def second(self) -> str:
        return self.twin if self.real_position == 1 else self.real


def question(mode: str) -> str:
    return "Which one did you write?" if mode == "mine" else "Which one is the twin's?"


class BlindTest:
    def __init__(self, adapter_dir, pairs: list[BlindPair], mode: str, workspace=None):
        self.adapter_dir = str(adapter_dir)
        self.pairs = pairs
        self.mode = mode
        self.workspace = workspace
        self.session = uuid.uuid4().hex[:12]
        self.answers: list[tuple[BlindPair, int | None]] = []

    @classmethod
    def for_adapter(cls, adapter_dir, *, mode: str = "mine", workspace=None, seed: int = 0) -> BlindTest:
        from cognitivetwin_core.playground.evaluation_file import load_evaluation

        if mode not in ("mine", "twin"):
            raise InputError(f"--mode must be mine or twin, got {mode!r}.")
        report = load_evaluation(adapter_dir)
        examples = (report or {}).get("examples") or []
        usable = [(i, e) for i, e in enumerate(examples) if e.get("real", "").strip() and e.get("twin", "").strip()]
        if not usable:
            raise InputError(
                f"The adapter in {adapter_dir} has no evaluated examples to test blind: evaluate it first "
                f"(`cognitivetwin phase1 --evaluate {adapter_dir} --workspace DIR`)."
            )
        rng = random.Random(seed)
        rng.shuffle(usable)
        pairs = [BlindPair(i, e.get("context", ""), e["real"], e["twin"], rng.choice((1, 2))) for i, e in usable]
        return cls(adapter_dir, pairs, mode, workspace)

    def answer(self, pair: BlindPair, choice: int | None) -> None:
        """Record a pick (1 or 2) or a skip (None); saved in the workspace at once when there is one."""
        if choice not in (1, 2, None):
            raise InputError(f"Answer {KEYS}; got {choice!r}.")
        self.answers.append((pair, choice))
        if self.workspace is not None:
            from cognitivetwin_core.data.blind_answers import BlindAnswer, save_answer

            save_answer(
                self.workspace,
                BlindAnswer(
                    self.adapter_dir, self.mode, self.session, pair.example, pair.context, pair.real_position, choice
                ),
            )

    def tally(self):
        from cognitivetwin_core.data.blind_answers import BlindAnswer, BlindTally

        judged = [
            BlindAnswer(self.adapter_dir, self.mode, self.session, p.example, p.context, p.real_position, c).correct
            for p, c in self.answers
        ]
        answered = [x for x in judged if x is not None]
        return BlindTally(sum(answered), len(answered), len(judged) - len(answered))


def score_text(tally, mode: str) -> str:
    """The score in words: "N of M" with its 95% interval, and how often the twin passed."""
    if tally.answered == 0:
        return "No answers yet" + (f" ({tally.skipped} skipped)." if tally.skipped else ".")
    low, high = wilson(tally.correct, tally.answered)
    what = "You picked your own reply" if mode == "mine" else "You spotted the twin"
    text = f"{what} {tally.correct} of {tally.answered} (95% interval {low:.0%}–{high:.0%})"
    text += f"; the twin fooled you {tally.fooled} {'time' if tally.fooled == 1 else 'times'} in {tally.answered}"
    if low > 0.5:
        text += ". You can tell the twin from yourself."
    elif high < 0.5:
        text += ". The twin passes for you more often than not."
    else:
        text += ". No clear difference from guessing (50%)."
    if tally.skipped:
        text += f" ({tally.skipped} skipped)"
    return text
