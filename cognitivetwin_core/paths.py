"""Where the app keeps its files: per-user folders (platformdirs) and the bundled resources.

Each folder can be redirected with an environment variable, so tests and scripts never
touch a user's real data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "CognitiveTwin"
APP_AUTHOR = "CognitiveTwin"


def _dirs():
    import platformdirs

    return platformdirs.PlatformDirs(APP_NAME, APP_AUTHOR)


def user_cache_dir() -> Path:
    """Converted models and other re-creatable files (COGNITIVETWIN_CACHE_DIR overrides)."""
    return Path(os.environ.get("COGNITIVETWIN_CACHE_DIR") or _dirs().user_cache_dir)


def user_data_dir() -> Path:
    """The default workspace lives here (COGNITIVETWIN_DATA_DIR overrides)."""
    return Path(os.environ.get("COGNITIVETWIN_DATA_DIR") or _dirs().user_data_dir)


def user_log_dir() -> Path:
    return Path(os.environ.get("COGNITIVETWIN_LOG_DIR") or _dirs().user_log_dir)


def user_config_dir() -> Path:
    return Path(os.environ.get("COGNITIVETWIN_CONFIG_DIR") or _dirs().user_config_dir)


def default_workspace_dir() -> Path:
    return user_data_dir() / "workspace"


def resources_dir() -> Path:
    """The bundled `resources/` folder: beside the package in a checkout, or in a PyInstaller bundle."""
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root:
        return Path(bundle_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
