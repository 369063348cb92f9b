"""The studio's settings: one INI file in the user config dir, behind a few functions.

Never secrets: keys live in the OS keyring (`cognitivetwin_core.connections.secrets`). `write` refuses
any value that looks like a key (or is one the app has read from the keyring), so a
mistake cannot put one on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from cognitivetwin_core.connections.checks import DEFAULT_SUPABASE_TABLE
from cognitivetwin_core.logging_setup import redact
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL
from cognitivetwin_core.paths import user_config_dir

SETTINGS_FILE_NAME = "studio.ini"

# Keys other parts of the app share.
LAST_WORKSPACE = "workspace/last"
DEMO_OFFER_DISMISSED = "workspace/demo_offer_dismissed"
BASE_MODEL = "model/base"
WINDOW_GEOMETRY = "window/geometry"
WINDOW_STATE = "window/state"
CURRENT_TAB = "window/current_tab"
SUPABASE_TABLE = "supabase/table"
SUPABASE_MAPPING_PREFIX = "supabase/mapping/"

# The import mapping: field of a turn -> column of the Supabase table (docs/data-and-model.md), with the
# field names and defaults of `cognitivetwin_core.data.importers.supabase_table.ColumnMapping`.
DEFAULT_SUPABASE_MAPPING = {
    "conversation_id": "conversation_id",
    "role": "role",
    "content": "content",
    "timestamp": "created_at",
    "turn_order": "turn_index",
    "row_id": "id",
}
REQUIRED_MAPPING_FIELDS = ("conversation_id", "role", "content")


def settings_path() -> Path:
    return user_config_dir() / SETTINGS_FILE_NAME


def _store() -> QSettings:
    # An explicit file (not the platform registry) so COGNITIVETWIN_CONFIG_DIR isolates tests.
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def read(key: str, default: Any = None) -> Any:
    value = _store().value(key)
    return default if value is None else value


def write(key: str, value: Any) -> None:
    if isinstance(value, str) and redact(value) != value:
        raise ValueError(f"refusing to write a key-like value to the settings file ({key})")
    store = _store()
    store.setValue(key, value)
    store.sync()


def remove(key: str) -> None:
    store = _store()
    store.remove(key)
    store.sync()


def read_bool(key: str, default: bool = False) -> bool:
    value = read(key, default)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def base_model() -> str:
    return str(read(BASE_MODEL, DEFAULT_BASE_MODEL))


def supabase_table() -> str:
    return str(read(SUPABASE_TABLE, DEFAULT_SUPABASE_TABLE))


def supabase_mapping() -> dict[str, str]:
    return {
        field: str(read(SUPABASE_MAPPING_PREFIX + field, default))
        for field, default in DEFAULT_SUPABASE_MAPPING.items()
    }


def set_supabase_mapping(mapping: dict[str, str]) -> None:
    """Save the mapping; an empty optional column means "the table has none"."""
    for field in DEFAULT_SUPABASE_MAPPING:
        if field in mapping:
            column = mapping[field].strip()
            if column or field not in REQUIRED_MAPPING_FIELDS:
                write(SUPABASE_MAPPING_PREFIX + field, column)


def supabase_mapping_overrides() -> dict[str, str]:
    """Only the fields the user changed from the defaults: the importer requires those
    columns to exist, while default optional columns may be absent from the table."""
    defaults = DEFAULT_SUPABASE_MAPPING
    return {field: column for field, column in supabase_mapping().items() if column != defaults[field]}
