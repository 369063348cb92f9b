"""A messenger export where the person writes unlike the others, built in code, for the judges'
tests: Maya types lowercase, drops punctuation, says "lol" and "u"; Tom and Ana write full,
capitalised sentences. Seeded, so every run sees the same chats."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from cognitivetwin_core.conversation import Conversation, Message

PERSON = "Maya"
OTHERS = ("Tom", "Ana")
TOPICS = ("the concert", "dinner", "the trip", "work", "the movie", "the game", "lunch", "the party", "the bus")
_MAYA = (
    "omg yes {t} lol",
    "idk about {t} tbh",
    "sooo tired but {t} sounds fun",
    "u going to {t}? 😂",
    "lol ok see u at {t}",
    "ya ya {t} is fine w me",
    "nah {t} was meh lol",
    "wait {t} is today?? 😂😂",
    "haha ur right about {t}",
    "k ill be there for {t} prob late lol",
)
_OTHER = (
    "Are you coming to {t} this evening?",
    "I think {t} starts at seven, so we should leave early.",
    "Could you let me know about {t} by tomorrow?",
    "Unfortunately, {t} has been moved to Thursday.",
    "Thank you for organising {t}. It was lovely.",
    "Please remember that {t} requires a reservation.",
    "I have already booked everything for {t}.",
    "Would you prefer to meet before {t}, or after it?",
    "That is a good point about {t}; I agree.",
    "Certainly. I will bring the tickets for {t}.",
)


def maya_says(rng: random.Random) -> str:
    return rng.choice(_MAYA).format(t=rng.choice(TOPICS))


def others_say(rng: random.Random) -> str:
    return rng.choice(_OTHER).format(t=rng.choice(TOPICS))


def messenger_chats(count: int = 40, *, seed: int = 0) -> list[Conversation]:
    """`count` chats between Maya and Tom or Ana, alternating, each a few exchanges long."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, 9, 0)
    chats = []
    for number in range(count):
        other = OTHERS[number % len(OTHERS)]
        when = start + timedelta(days=number)
        messages = []
        for _exchange in range(rng.randint(3, 5)):
            when += timedelta(minutes=30)
            messages.append(Message("user", others_say(rng), created_at=when, speaker=other))
            when += timedelta(minutes=2)
            messages.append(Message("user", maya_says(rng), created_at=when, speaker=PERSON))
        chats.append(Conversation(f"chat-{number:03d}", "whatsapp", messages, f"Chat with {other}"))
    return chats


def maya_workspace_and_twin(folder, tiny_model_dir):
    """A messenger workspace in `folder` where Maya is the person, and a tiny adapter trained on
    30 of its 40 chats (no validation file): (open workspace, adapter folder, the trained file)."""
    from cognitivetwin_core.data.exports import export_together
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase1.jobs import Phase1Settings
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    workspace = Workspace.open(folder / "ws")
    chats = messenger_chats(40)
    workspace.add_conversations(chats)
    workspace.set_twin_speaker(PERSON)
    train = folder / "train.jsonl"
    export_together(workspace, train, base_model=tiny_model_dir, ids=[c.id for c in chats[:30]])
    settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=1, max_seq_length=64, max_steps=2)
    adapter = folder / "adapter"
    train_local_lora(train, tiny_model_dir, adapter, settings, max_batch_tokens=200)
    return workspace, adapter, train
