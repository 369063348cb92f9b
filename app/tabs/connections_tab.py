"""The Connections tab: Supabase and Together keys and the Hugging Face token in the OS
keyring, and a Test for the first two.

Keys are typed into password fields, saved only through `cognitivetwin_core.connections.secrets`
(service "CognitiveTwin Studio"), shown again masked, and can be replaced or removed.
Keyring calls run on a worker thread (an unlock prompt can block) and the checks are
coroutines on the qasync loop, so the window never freezes. Where no keyring works the
tab says why and what to install, and the Save buttons stay off: nothing is stored
anywhere else. The Supabase table and column mapping for imports are settings (not
secrets) and are kept in the settings file.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app import settings
from app.qt.tasks import start_task
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.connections import secrets
from cognitivetwin_core.connections.checks import (
    DEFAULT_SUPABASE_TABLE,
    CheckResult,
    CheckStatus,
    check_supabase,
    check_together,
)
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.logging_setup import register_secret

log = logging.getLogger(__name__)

MAPPING_LABELS = {
    "conversation_id": "Conversation id column",
    "role": "Role column",
    "content": "Text column",
    "timestamp": "Timestamp column (optional)",
    "turn_order": "Turn order column (optional)",
    "row_id": "Row id column (optional)",
}
STATUS_TITLES = {
    CheckStatus.OK: "OK",
    CheckStatus.WRONG_KEY: "Wrong key",
    CheckStatus.WRONG_URL: "Wrong URL",
    CheckStatus.NO_NETWORK: "No network",
    CheckStatus.TABLE_MISSING: "Table missing",
    CheckStatus.FAILED: "Failed",
}


def _password_field(placeholder: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    field.setClearButtonEnabled(True)
    return field


class ConnectionsTab(QWidget):
    """Emits `secretsChanged` after a key was saved or removed (other tabs may re-read it)."""

    secretsChanged = Signal()
    # After each refresh / check, for tests and other observers.
    refreshed = Signal()
    checkFinished = Signal(str, object)  # "supabase" | "together", CheckResult

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.keyring_available = False
        self._stored: dict[str, str | None] = {name: None for name in secrets.KNOWN_SECRETS}
        self._busy = False

        content = QWidget()
        layout = QVBoxLayout(content)
        intro = QLabel(
            "Connect your data (Supabase), your training account (Together AI) and, for gated base "
            "models, Hugging Face. Keys are kept "
            f"only in your system keyring, under the name “{secrets.SERVICE_NAME}”: never in a "
            "file, a log or a settings file."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        keyring_row = QHBoxLayout()
        self.keyring_message = MessageLabel()
        self.keyring_retry = QPushButton("Check the keyring again")
        self.keyring_retry.hide()
        self.keyring_retry.clicked.connect(self.refresh)
        keyring_row.addWidget(self.keyring_message, 1)
        keyring_row.addWidget(self.keyring_retry)
        layout.addLayout(keyring_row)

        layout.addWidget(self._build_supabase_group())
        layout.addWidget(self._build_together_group())
        layout.addWidget(self._build_huggingface_group())
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._set_save_enabled(False)

    # --- layout -------------------------------------------------------------------------

    def _build_supabase_group(self) -> QGroupBox:
        group = QGroupBox("Supabase: where your conversations are stored")
        form = QFormLayout()
        self.supabase_url = _password_field("https://<project>.supabase.co")
        self.supabase_key = _password_field("the project's API key (Project Settings → API)")
        self.supabase_table = QLineEdit(settings.supabase_table())
        self.supabase_table.setPlaceholderText(DEFAULT_SUPABASE_TABLE)
        self.supabase_table.editingFinished.connect(self._save_table)
        form.addRow("Project URL", self.supabase_url)
        form.addRow("API key", self.supabase_key)
        form.addRow("Table of turns", self.supabase_table)
        self.supabase_stored = QLabel()
        self.supabase_stored.setProperty("role", "hint")
        form.addRow("", self.supabase_stored)

        mapping_box = QGroupBox("Column mapping for imports")
        mapping_form = QFormLayout(mapping_box)
        self.mapping_fields: dict[str, QLineEdit] = {}
        current = settings.supabase_mapping()
        for field, label in MAPPING_LABELS.items():
            edit = QLineEdit(current[field])
            edit.setPlaceholderText(settings.DEFAULT_SUPABASE_MAPPING[field])
            edit.editingFinished.connect(self._save_mapping)
            mapping_form.addRow(label, edit)
            self.mapping_fields[field] = edit

        buttons = QHBoxLayout()
        self.supabase_save = QPushButton("Save to keyring")
        self.supabase_test = QPushButton("Test connection")
        self.supabase_remove = QPushButton("Remove")
        self.supabase_save.clicked.connect(lambda: start_task(self.save_supabase(), name="save supabase"))
        self.supabase_test.clicked.connect(lambda: start_task(self.test_supabase(), name="test supabase"))
        self.supabase_remove.clicked.connect(lambda: start_task(self.remove_supabase(), name="remove supabase"))
        for button in (self.supabase_save, self.supabase_test, self.supabase_remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.supabase_result = MessageLabel()

        box = QVBoxLayout(group)
        box.addLayout(form)
        box.addWidget(mapping_box)
        box.addLayout(buttons)
        box.addWidget(self.supabase_result)
        return group

    def _build_together_group(self) -> QGroupBox:
        group = QGroupBox("Together AI: where Phase 1 fine-tuning runs")
        form = QFormLayout()
        self.together_key = _password_field("your API key (api.together.ai → Settings → API keys)")
        form.addRow("API key", self.together_key)
        self.together_stored = QLabel()
        self.together_stored.setProperty("role", "hint")
        form.addRow("", self.together_stored)
        buttons = QHBoxLayout()
        self.together_save = QPushButton("Save to keyring")
        self.together_test = QPushButton("Test connection")
        self.together_remove = QPushButton("Remove")
        self.together_save.clicked.connect(lambda: start_task(self.save_together(), name="save together"))
        self.together_test.clicked.connect(lambda: start_task(self.test_together(), name="test together"))
        self.together_remove.clicked.connect(lambda: start_task(self.remove_together(), name="remove together"))
        for button in (self.together_save, self.together_test, self.together_remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.together_result = MessageLabel()
        box = QVBoxLayout(group)
        box.addLayout(form)
        box.addLayout(buttons)
        box.addWidget(self.together_result)
        return group

    def _build_huggingface_group(self) -> QGroupBox:
        group = QGroupBox("Hugging Face: where base models are downloaded from")
        form = QFormLayout()
        self.huggingface_token = _password_field("a read token (huggingface.co → Settings → Access Tokens)")
        form.addRow("Token", self.huggingface_token)
        self.huggingface_stored = QLabel()
        self.huggingface_stored.setProperty("role", "hint")
        form.addRow("", self.huggingface_stored)
        hint = QLabel(
            "Needed only for gated bases (Llama, Gemma): accept the model's licence on its Hugging Face page "
            "first, while signed in. The HF_TOKEN environment variable, when set, is used instead."
        )
        hint.setWordWrap(True)
        hint.setProperty("role", "hint")
        form.addRow("", hint)
        buttons = QHBoxLayout()
        self.huggingface_save = QPushButton("Save to keyring")
        self.huggingface_remove = QPushButton("Remove")
        self.huggingface_save.clicked.connect(lambda: start_task(self.save_huggingface(), name="save hf token"))
        self.huggingface_remove.clicked.connect(lambda: start_task(self.remove_huggingface(), name="remove hf token"))
        for button in (self.huggingface_save, self.huggingface_remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.huggingface_result = MessageLabel()
        box = QVBoxLayout(group)
        box.addLayout(form)
        box.addLayout(buttons)
        box.addWidget(self.huggingface_result)
        return group

    # --- keyring state ------------------------------------------------------------------

    def _set_save_enabled(self, enabled: bool) -> None:
        for button in (
            self.supabase_save,
            self.supabase_remove,
            self.together_save,
            self.together_remove,
            self.huggingface_save,
            self.huggingface_remove,
        ):
            button.setEnabled(enabled)

    def refresh(self) -> None:
        start_task(self.refresh_async(), name="read keyring")

    async def refresh_async(self) -> None:
        """Ask the keyring whether it works and what is stored (on a worker thread)."""
        status = await asyncio.to_thread(secrets.keyring_status)
        self.keyring_available = status.available
        if not status.available:
            self.keyring_message.show_error(status.message)
            self.keyring_retry.show()
            self._stored = {name: None for name in secrets.KNOWN_SECRETS}
        else:
            self.keyring_message.clear_message()
            self.keyring_retry.hide()
            try:
                self._stored = await asyncio.to_thread(
                    lambda: {name: secrets.get_secret(name) for name in secrets.KNOWN_SECRETS}
                )
            except CognitiveTwinError as exc:
                self.keyring_available = False
                self.keyring_message.show_error(str(exc))
                self.keyring_retry.show()
        self._set_save_enabled(self.keyring_available)
        self._show_stored()
        self.refreshed.emit()

    def _show_stored(self) -> None:
        url, key = self._stored[secrets.SUPABASE_URL], self._stored[secrets.SUPABASE_KEY]
        token = self._stored[secrets.HUGGINGFACE_TOKEN]
        if not self.keyring_available:
            self.supabase_stored.setText("Nothing can be stored until a keyring is available.")
            self.together_stored.setText("Nothing can be stored until a keyring is available.")
            self.huggingface_stored.setText("Nothing can be stored until a keyring is available.")
        else:
            self.huggingface_stored.setText(
                f"In the keyring: {secrets.mask(token)}. Type a new token to replace it."
                if token
                else "Nothing stored yet."
            )
            if url or key:
                self.supabase_stored.setText(
                    f"In the keyring: URL {secrets.mask(url) or '(none)'}, key {secrets.mask(key) or '(none)'}. "
                    "Type a new value to replace it."
                )
            else:
                self.supabase_stored.setText("Nothing stored yet.")
            together = self._stored[secrets.TOGETHER_API_KEY]
            self.together_stored.setText(
                f"In the keyring: {secrets.mask(together)}. Type a new key to replace it."
                if together
                else "Nothing stored yet."
            )
        for field, stored in (
            (self.supabase_url, url),
            (self.supabase_key, key),
            (self.together_key, self._stored[secrets.TOGETHER_API_KEY]),
            (self.huggingface_token, token),
        ):
            if not hasattr(field, "empty_placeholder"):
                field.empty_placeholder = field.placeholderText()
            field.setPlaceholderText("stored in the keyring (hidden)" if stored else field.empty_placeholder)

    def stored_mask(self, name: str) -> str:
        return secrets.mask(self._stored.get(name))

    # --- settings (not secrets) -----------------------------------------------------------

    def _save_table(self) -> None:
        table = self.supabase_table.text().strip()
        if table:
            settings.write(settings.SUPABASE_TABLE, table)

    def _save_mapping(self) -> None:
        settings.set_supabase_mapping({field: edit.text() for field, edit in self.mapping_fields.items()})

    # --- actions ----------------------------------------------------------------------------

    async def _store(self, values: dict[str, str], result: MessageLabel) -> bool:
        if not self.keyring_available:
            result.show_error(self.keyring_message.text() or secrets.NO_BACKEND_MESSAGE)
            return False
        try:
            await asyncio.to_thread(lambda: [secrets.set_secret(name, value) for name, value in values.items()])
        except CognitiveTwinError as exc:
            result.show_error(str(exc))
            return False
        self._stored.update({name: value.strip() for name, value in values.items()})
        self._show_stored()
        self.secretsChanged.emit()
        return True

    async def save_supabase(self) -> None:
        values = {}
        if self.supabase_url.text().strip():
            url = self.supabase_url.text().strip()
            if not url.startswith(("https://", "http://")):
                self.supabase_result.show_error(
                    "The project URL must start with https:// (it looks like https://<project>.supabase.co)."
                )
                return
            values[secrets.SUPABASE_URL] = url
        if self.supabase_key.text().strip():
            values[secrets.SUPABASE_KEY] = self.supabase_key.text()
        if not values:
            self.supabase_result.show_error("Type the project URL and the API key first, then save.")
            return
        self._save_table()
        if await self._store(values, self.supabase_result):
            self.supabase_url.clear()
            self.supabase_key.clear()
            self.supabase_result.show_ok("Saved in the system keyring. Press Test connection to check it.")

    async def save_together(self) -> None:
        key = self.together_key.text().strip()
        if not key:
            self.together_result.show_error("Type or paste the API key first, then save.")
            return
        if await self._store({secrets.TOGETHER_API_KEY: key}, self.together_result):
            self.together_key.clear()
            self.together_result.show_ok("Saved in the system keyring. Press Test connection to check it.")

    async def save_huggingface(self) -> None:
        token = self.huggingface_token.text().strip()
        if not token:
            self.huggingface_result.show_error("Type or paste the token first, then save.")
            return
        if await self._store({secrets.HUGGINGFACE_TOKEN: token}, self.huggingface_result):
            self.huggingface_token.clear()
            self.huggingface_result.show_ok("Saved in the system keyring; base model downloads use it.")

    async def remove_huggingface(self) -> None:
        await self._remove((secrets.HUGGINGFACE_TOKEN,), self.huggingface_result, "Hugging Face token")

    async def _remove(self, names: tuple[str, ...], result: MessageLabel, what: str) -> None:
        try:
            removed = await asyncio.to_thread(lambda: [secrets.delete_secret(name) for name in names])
        except CognitiveTwinError as exc:
            result.show_error(str(exc))
            return
        for name in names:
            self._stored[name] = None
        self._show_stored()
        self.secretsChanged.emit()
        result.show_ok(f"Removed the {what} from the keyring." if any(removed) else f"No {what} was stored.")

    async def remove_supabase(self) -> None:
        await self._remove((secrets.SUPABASE_URL, secrets.SUPABASE_KEY), self.supabase_result, "Supabase URL and key")

    async def remove_together(self) -> None:
        await self._remove((secrets.TOGETHER_API_KEY,), self.together_result, "Together key")

    def _show_result(self, label: MessageLabel, result: CheckResult) -> None:
        text = f"{STATUS_TITLES[result.status]}: {result.message}"
        label.show_ok(text) if result.ok else label.show_error(text)

    async def test_supabase(self) -> CheckResult:
        url = self.supabase_url.text().strip() or self._stored[secrets.SUPABASE_URL] or ""
        key = self.supabase_key.text().strip() or self._stored[secrets.SUPABASE_KEY] or ""
        table = self.supabase_table.text().strip() or settings.supabase_table()
        register_secret(url)
        register_secret(key)
        self.supabase_test.setEnabled(False)
        self.supabase_result.show_info(f"Testing: reading one row of “{table}”…")
        try:
            result = await check_supabase(url, key, table)
        finally:
            self.supabase_test.setEnabled(True)
        self._show_result(self.supabase_result, result)
        self.checkFinished.emit("supabase", result)
        return result

    async def test_together(self) -> CheckResult:
        key = self.together_key.text().strip() or self._stored[secrets.TOGETHER_API_KEY] or ""
        register_secret(key)
        self.together_test.setEnabled(False)
        self.together_result.show_info("Testing: listing your files on Together…")
        try:
            result = await check_together(key)
        finally:
            self.together_test.setEnabled(True)
        self._show_result(self.together_result, result)
        self.checkFinished.emit("together", result)
        return result
