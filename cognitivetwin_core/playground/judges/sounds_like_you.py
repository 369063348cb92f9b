""" "Sounds like you" a person can read, for the chat (docs/judging.md): the independent
authorship judge, fitted on the person's held-out messages (never the twin's training data),
says how sure it is that the person wrote a reply.

    judge = PersonJudge.for_adapter(adapter_dir, workspace)
    judge.yours("lol ok see u there")       # 0.91: 0 = surely someone else, 1 = surely you
    turn_verdict(0.91, 0.12)                # "closer to you than the base: yes"

Its ceiling (how often it recognises the person's own held-out replies) is measured by
cross-fitting first; when it is low, `note` says there is too little data and the chat shows
no verdict. One reply pair has no interval: the verdict says "yes" only when the judge takes
the twin's reply for the person's and the base's for someone else's (either side of its
even-odds threshold), and "no clear difference" otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.playground.judges.authorship import (
    THRESHOLD,
    AuthorshipJudge,
    JudgedConversation,
    judge_authorship,
)

SCALE = "how sure an independent judge is that you wrote it: 0% = surely someone else, 100% = surely you"


@dataclass
class PersonJudge:
    judge: AuthorshipJudge | None
    reliable: bool
    note: str  # the judge's ceiling and floor in words, or why it cannot judge

    @classmethod
    def for_adapter(cls, adapter_dir, workspace, *, seed: int = 0) -> PersonJudge:
        from cognitivetwin_core.errors import InputError
        from cognitivetwin_core.playground.held_out import held_out_set

        try:
            held = held_out_set(adapter_dir, workspace=workspace, seed=seed)
        except InputError as exc:
            return cls(None, False, f"no judge: {exc}")
        person = [[m["content"] for m in c if m["role"] == "assistant"] for c in held.conversations]
        calibration = judge_authorship([JudgedConversation(p, list(o)) for p, o in zip(person, held.others)], seed=seed)
        if not calibration["reliable"]:
            return cls(None, False, calibration["verdict"])
        judge = AuthorshipJudge.for_texts(
            [t for texts in person for t in texts], [t for others in held.others for t in others], seed=seed
        )
        note = (
            f"the judge recognises your own held-out replies {calibration['real']['share']:.0%} of the time "
            f"and other people's {calibration['others']['share']:.0%}"
        )
        return cls(judge, True, note)

    def yours(self, text: str) -> float | None:
        if self.judge is None or not (text or "").strip():
            return None
        return self.judge.probability([text])[0]


def turn_verdict(twin: float | None, base: float | None) -> str | None:
    """The twin's reply against the base's for one turn (see the module text)."""
    if twin is None or base is None:
        return None
    if twin >= THRESHOLD > base:
        return "closer to you than the base: yes"
    if base >= THRESHOLD > twin:
        return "closer to you than the base: no, the base is closer"
    return "closer to you than the base: no clear difference"
