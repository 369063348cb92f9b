"""The Data tab's speakers: who speaks in the workspace with their message counts, which of them is
the person (the twin's speaker, docs/twin-speaker.md), and names linked as one person (see
data_tab.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from cognitivetwin_core.errors import CognitiveTwinError


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


class DataSpeakers:
    """Which of these is you?: the workspace's speakers, the twin's speaker, and names linked into
    one person."""

    def refresh_speakers(self) -> None:
        """List the workspace's speakers with their counts and select the current choice."""
        from cognitivetwin_core.data.person_identity import canonical, linked_speakers, speaker_links
        from cognitivetwin_core.data.twin_speaker import ROLE_SPEAKERS, SIDE_NAMES

        self.speaker_combo.clear()
        if self.workspace is None:
            return
        # One person across sources: linked names show as one speaker (docs/importers.md).
        speakers = linked_speakers(self.workspace)
        current = canonical(speaker_links(self.workspace), self.workspace.twin_speaker())
        names = [item.name for item in speakers]
        for item in speakers:
            text = item.name if item.named else _capitalised(SIDE_NAMES[item.name])
            self.speaker_combo.addItem(f"{text} — {item.messages:,} messages", item.name)
            if not item.named:  # the exact term for who wants it
                tip = f"The “{item.name}” role of the imported chats."
                self.speaker_combo.setItemData(self.speaker_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        if current not in names:
            self.speaker_combo.addItem(f"{_capitalised(SIDE_NAMES.get(current, current))} — no messages", current)
        self.speaker_combo.setCurrentIndex(self.speaker_combo.findData(current))
        count = next((item.messages for item in speakers if item.name == current), 0)
        named = [item for item in speakers if item.named]
        if named and current in ROLE_SPEAKERS:
            owner = getattr(self.last_report, "owner", None)
            hint = f" The last import looks like {owner}'s export." if owner in names else ""
            self.speaker_status.setText(
                f"Not chosen yet: these chats have {len(named)} participants. Choose yourself, so the twin "
                f"learns your messages.{hint}"
            )
        elif count and not self._speaker_was_chosen():
            self.speaker_status.setText(
                "Not chosen yet: say which side is you, so the twin learns your messages "
                "(the others are what it answers)."
            )
        elif count:
            self.speaker_status.setText(
                f"You: {SIDE_NAMES.get(current, current)} ({count:,} messages). The twin learns to write "
                "like that; everyone else's messages are what it answers."
            )
        else:
            self.speaker_status.setText(
                f"No messages from {SIDE_NAMES.get(current, current)} yet: import some or choose another."
            )
        self.speaker_question.setVisible(bool(speakers))
        self.speaker_combo.setVisible(bool(speakers))
        self.link_speakers_button.setVisible(len(named) > 1)

    def open_link_speakers(self):
        """The "These are all me" dialog, opened without blocking; linking happens on OK."""
        from app.dialogs.link_speakers import LinkSpeakersDialog
        from cognitivetwin_core.data.person_identity import linked_speakers

        if self.workspace is None:
            return None
        named = [(item.name, item.messages) for item in linked_speakers(self.workspace) if item.named]
        dialog = LinkSpeakersDialog(named, self.workspace.twin_speaker(), self)
        dialog.accepted.connect(lambda: self.link_speakers(*dialog.chosen()))
        dialog.open()
        return dialog

    def link_speakers(self, name: str, aliases: list[str]) -> None:
        from cognitivetwin_core.data.person_identity import link_speakers

        try:
            link_speakers(self.workspace, name, aliases)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
        else:
            self.message.show_ok(f"{name} is now one speaker: " + ", ".join(aliases) + ".")
        self.refresh_speakers()

    def _speaker_was_chosen(self) -> bool:
        """Whether the person said which side is theirs (a setting of the workspace)."""
        from cognitivetwin_core.data.twin_speaker import SETTING_KEY

        try:
            return bool(self.workspace.get_setting(SETTING_KEY))
        except Exception:  # an older workspace without settings: nothing chosen
            return False

    def _speaker_chosen(self, index: int) -> None:
        speaker = self.speaker_combo.itemData(index)
        if self.workspace is None or speaker is None:
            return
        from cognitivetwin_core.data.person_identity import choose_twin_speaker

        try:
            choose_twin_speaker(self.workspace, speaker)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
        self.refresh_speakers()
