"""The Phase 2 components' folder (`config.json` + `model.safetensors`) read without torch,
so the app can list and check trained models on its GUI thread. `twin_model` writes them."""

from __future__ import annotations

import json
from pathlib import Path

from cognitivetwin_core.errors import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_NAME = "cognitivetwin-v2-components"
# 2: the planning head reads the turn's position features. Format 1 folders still load
# (their planning head has none: TwinConfig.planning_position False).
FORMAT_VERSION = 2


def holds_components(folder: str | Path) -> bool:
    """Whether `folder` has both a components config and weights (without reading them)."""
    folder = Path(folder)
    return (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def read_components_config(folder: str | Path) -> dict:
    """The components config of a Phase 2 output folder; InputError, saying what to do, if it is not one."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if not holds_components(folder):
        raise InputError(
            f"{folder} holds no Phase 2 model (it needs {CONFIG_NAME} and {WEIGHTS_NAME}): "
            "choose the output folder of a finished Phase 2 run."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{config_path} cannot be read ({exc}): choose another run folder.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise InputError(
            f"{config_path} is not a CognitiveTwin Phase 2 model config: choose a Phase 2 run's output folder."
        )
    return config
