"""Whose twin: which messages are the person's ("the twin speaks as").

A workspace setting names the person: the `assistant` role (the default, the seed's
behaviour for AI-chat data), the `user` role (a person's own ChatGPT export), or a named
participant of a messenger export. Messenger messages keep the participant's name in
`Message.speaker` (their role is only a placeholder), and the mapping to training roles
happens at export time, so choosing someone else never needs a new import.
"""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.conversation import Message

DEFAULT_TWIN_SPEAKER = "assistant"
ROLE_SPEAKERS = ("assistant", "user")
SETTING_KEY = "twin_speaker"
# The two sides of an AI chat in a person's words (the roles stay in tooltips and files).
SIDE_NAMES = {"assistant": "the AI's answers", "user": "the person typing (the questions)"}


@dataclass(frozen=True)
class SpeakerCount:
    """One speaker of the workspace: a participant's name (`named`) or a role, with counts."""

    name: str
    named: bool
    messages: int
    conversations: int

    @property
    def label(self) -> str:
        return self.name if self.named else f"the {self.name} role"


def is_person(message: Message, twin_speaker: str) -> bool:
    """Whether the message is the person's. A role matches only messages without a name: in a
    messenger chat every message has the placeholder role `user`, so `user` would mean everyone."""
    if message.speaker is not None:
        return message.speaker == twin_speaker
    return message.role == twin_speaker


def speaker_key(message: Message) -> str:
    """Who wrote the message: the participant's name, else the role."""
    return message.speaker if message.speaker is not None else message.role


def describe(twin_speaker: str) -> str:
    return f"the {twin_speaker} role" if twin_speaker in ROLE_SPEAKERS else twin_speaker
