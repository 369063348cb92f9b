"""The blind test's answers, kept in the workspace (docs/judging.md): for each pair the person
saw (their real reply and the twin's, in random order), which one they picked, or a skip.

    save_answer(workspace, BlindAnswer(adapter, "mine", session, example=3, context="…",
                                       real_position=2, choice=1))
    blind_tally(workspace, adapter, "mine")   # BlindTally(correct=7, answered=20, skipped=2)

Modes: "mine" (pick the reply you wrote: correct = the real one) and "twin" (pick the twin's:
correct = the twin's). A skip is stored with no choice and counts in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MODES = ("mine", "twin")


@dataclass(frozen=True)
class BlindAnswer:
    adapter: str
    mode: str
    session: str
    example: int
    context: str
    real_position: int  # 1 or 2: where the real reply was shown
    choice: int | None  # 1, 2, or None for a skip

    @property
    def correct(self) -> bool | None:
        if self.choice is None:
            return None
        picked_real = self.choice == self.real_position
        return picked_real if self.mode == "mine" else not picked_real


@dataclass(frozen=True)
class BlindTally:
    correct: int
    answered: int
    skipped: int

    @property
    def fooled(self) -> int:
        """Answers where the twin passed for the person: the wrong pick in either mode."""
        return self.answered - self.correct


def _key(adapter: str | Path) -> str:
    return str(Path(adapter).expanduser().resolve())


def save_answer(workspace, answer: BlindAnswer) -> None:
    if answer.mode not in MODES:
        raise ValueError(f"unknown blind-test mode {answer.mode!r}")
    correct = answer.correct
    with workspace._transaction() as db:
        db.execute(
            "INSERT INTO blind_answers(adapter, mode, session, example, context, real_position, choice, correct, "
            "answered_at) VALUES(?,?,?,?,?,?,?,?,?)",
            (
                _key(answer.adapter),
                answer.mode,
                answer.session,
                answer.example,
                answer.context,
                answer.real_position,
                answer.choice,
                None if correct is None else int(correct),
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )


def blind_tally(workspace, adapter: str | Path, mode: str, *, session: str | None = None) -> BlindTally:
    """The answers for one twin and mode (all sessions, or one)."""
    sql = "SELECT COUNT(correct), COALESCE(SUM(correct), 0), SUM(choice IS NULL) FROM blind_answers "
    sql += "WHERE adapter=? AND mode=?"
    params: list = [_key(adapter), mode]
    if session is not None:
        sql += " AND session=?"
        params.append(session)
    answered, correct, skipped = workspace._query(sql, params)[0]
    return BlindTally(int(correct or 0), int(answered or 0), int(skipped or 0))
