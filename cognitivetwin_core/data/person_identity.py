"""One person across sources: linked speaker names, and the owner an export names.

The same person is "Ana Lima" in Messenger, "+15551234567" in iMessage and "ana@example.org"
in mail. `link_speakers` stores each alias under one NAME (table `speaker_links`); the
speaker list, the twin's speaker and the training export then see one speaker (docs/importers.md).

An export that marks its owner (iMessage's is_from_me, Signal's outgoing, a profile or account
file, the user side of an AI chat) reports it (`ImportReport.owner`); `adopt_owner` makes the
owner the twin's speaker unless the person chose one themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.twin_speaker import ROLE_SPEAKERS, SETTING_KEY, SpeakerCount
from cognitivetwin_core.errors import InputError

# The twin speaker an import set on its own (not the person's choice), so the next import's
# owner may replace it; once the person picks someone else, imports leave the choice alone.
FROM_IMPORT_KEY = "twin_speaker_from_import"


def speaker_links(workspace) -> dict[str, str]:
    """alias → the one name it stands for."""
    return dict(workspace._query("SELECT alias, name FROM speaker_links"))


def canonical(links: dict[str, str], speaker: str | None) -> str | None:
    return links.get(speaker, speaker) if speaker is not None else None


def link_speakers(workspace, name: str, aliases: Iterable[str]) -> list[str]:
    """Make `aliases` (speakers of the workspace, case aside) one speaker called `name`; the
    aliases as stored. The twin's speaker follows when it was one of them."""
    name = (name or "").strip()
    if not name:
        raise InputError("Give the person's name first, then the names to link to it.")
    if name in ROLE_SPEAKERS:
        raise InputError(f"{name!r} is a role, not a person's name: choose another name.")
    resolved = []
    for alias in aliases:
        stored = workspace.resolve_speaker(alias)
        if stored in ROLE_SPEAKERS:
            raise InputError(f"{alias!r} is a role, not a participant's name: it cannot be linked.")
        resolved.append(stored)
    if not resolved:
        raise InputError("Name at least one speaker to link (`cognitivetwin data speakers` lists them).")
    current = workspace.get_setting(SETTING_KEY)
    with workspace._transaction() as db:
        for alias in resolved:
            if alias != name:
                db.execute(
                    "INSERT INTO speaker_links(alias, name) VALUES(?,?) "
                    "ON CONFLICT(alias) DO UPDATE SET name=excluded.name",
                    (alias, name),
                )
        # Aliases of the old name follow it to the new one.
        for alias in resolved:
            db.execute("UPDATE speaker_links SET name=? WHERE name=?", (name, alias))
        db.execute("DELETE FROM speaker_links WHERE alias=name")
        if current in resolved:
            db.execute("UPDATE settings SET value=? WHERE key=?", (name, SETTING_KEY))
            db.execute("UPDATE settings SET value=? WHERE key=?", (name, FROM_IMPORT_KEY))
    return resolved


def linked_speakers(workspace) -> list[SpeakerCount]:
    """`Workspace.speakers()` with linked names merged into one speaker each."""
    rows = workspace._query(
        "SELECT COALESCE(l.name, m.speaker, m.role), m.speaker IS NOT NULL, COUNT(*), "
        "COUNT(DISTINCT m.conversation_pk) FROM messages m LEFT JOIN speaker_links l ON l.alias = m.speaker "
        "WHERE m.speaker IS NOT NULL OR m.role IN ('user', 'assistant') GROUP BY 1, 2 ORDER BY 3 DESC, 1"
    )
    return [SpeakerCount(name, bool(named), messages, conversations) for name, named, messages, conversations in rows]


def resolve_speaker(workspace, speaker: str) -> str:
    """A linked name, or what `Workspace.resolve_speaker` accepts (a role, a participant), with
    an alias given as its one name."""
    speaker = (speaker or "").strip()
    links = speaker_links(workspace)
    if speaker in set(links.values()):
        return speaker
    return canonical(links, workspace.resolve_speaker(speaker))


def choose_twin_speaker(workspace, speaker: str) -> str:
    """The person's own choice: a linked name, a participant or a role."""
    speaker = resolve_speaker(workspace, speaker)
    workspace.set_setting(SETTING_KEY, speaker)
    return speaker


def adopt_owner(workspace, owner: str | None) -> bool:
    """Make the export's owner (one the export marks) the twin's speaker unless the person
    chose one; True if it did."""
    if not owner:
        return False
    current = workspace.get_setting(SETTING_KEY)
    if current is not None and current != workspace.get_setting(FROM_IMPORT_KEY):
        return False  # the person's own choice
    owner = canonical(speaker_links(workspace), owner)
    workspace.set_setting(SETTING_KEY, owner)
    workspace.set_setting(FROM_IMPORT_KEY, owner)
    return True


def linked_conversations(workspace, conversations: Iterable[Conversation]) -> Iterator[Conversation]:
    """The conversations with every linked alias replaced by its one name."""
    links = speaker_links(workspace)
    if not links:
        yield from conversations
        return
    for conversation in conversations:
        if any(message.speaker in links for message in conversation.messages):
            conversation.messages = [
                replace(message, speaker=canonical(links, message.speaker)) if message.speaker in links else message
                for message in conversation.messages
            ]
        yield conversation
