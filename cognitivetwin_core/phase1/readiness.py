"""Can a Phase 1 job start with these choices? One plain reason and one fix when it cannot.

The app keeps Launch (and the dry run) disabled while `launch_check` says no, shows the reason
beside the button and offers the fix; the CLI can print the same sentence. Nothing here loads a
model, touches the network or imports torch: it looks at files only.

    check = launch_check("local", "llama-3.2-3b", has_key=False, conversations=40)
    check.ok       -> False
    check.reason   -> "Llama 3.2 3B Instruct is not on this computer ..."
    check.fix      -> FIX_USE_BUILTIN (the app's button: "Use the built-in model")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL, resolve_base

FIX_USE_BUILTIN = "use_builtin"  # switch to the embedded model (always on disk)
FIX_ADD_KEY = "add_key"  # Connections: store a Together key
FIX_IMPORT_DATA = "import_data"  # Data: import conversations (or load the demo)
FIX_CHOOSE_FILE = "choose_file"  # the data file named does not exist


@dataclass(frozen=True)
class LaunchCheck:
    ok: bool
    reason: str = ""
    fix: str | None = None
    fix_label: str = ""


def _hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface" / "hub"


def base_on_disk(base_model: str) -> bool:
    """Whether local training can open `base_model` without downloading: the embedded model, a
    model folder with config.json, or a catalog model with a complete snapshot in the Hugging
    Face cache (a snapshot folder holding config.json and weights)."""
    try:
        resolved = resolve_base(base_model)
    except ValueError:
        return False
    if isinstance(resolved, Path):
        return (resolved / "config.json").is_file()
    if resolved.embedded:
        return True
    snapshots = _hub_cache_dir() / ("models--" + resolved.hf_repo.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return False
    for snapshot in snapshots.iterdir():
        has_weights = any(snapshot.glob("*.safetensors")) or any(snapshot.glob("*.safetensors.index.json"))
        if (snapshot / "config.json").is_file() and has_weights:
            return True
    return False


def default_choice(has_key: bool) -> tuple[str, str]:
    """(backend, base) that will work here: Together's default only with a key, else this
    computer with the built-in model."""
    from cognitivetwin_core.models.catalog import DEFAULT_TOGETHER_BASE_MODEL

    return ("together", DEFAULT_TOGETHER_BASE_MODEL) if has_key else ("local", DEFAULT_BASE_MODEL)


def launch_check(
    backend: str,
    base_model: str,
    *,
    has_key: bool | None,
    conversations: int,
    data_path: str | Path | None = None,
) -> LaunchCheck:
    """Whether a job with these choices can start. `has_key` None: not known yet (not blocking);
    `data_path` empty: the workspace's `conversations` are exported at the dry run."""
    if data_path:
        if not Path(data_path).expanduser().is_file():
            return LaunchCheck(
                False, f"The data file {data_path} does not exist.", FIX_CHOOSE_FILE, "Use my conversations"
            )
    elif conversations <= 0:
        return LaunchCheck(
            False,
            "There are no conversations to learn from yet: import yours (or the demo) in the Data tab.",
            FIX_IMPORT_DATA,
            "Open Data",
        )
    if backend == "together":
        if has_key is False:
            return LaunchCheck(
                False,
                "Training on Together AI needs your Together key: add it in the Connections tab, "
                "or train on this computer for free.",
                FIX_ADD_KEY,
                "Add a key",
            )
        spec = CATALOG.get(base_model)
        if spec is None or not spec.together_available:
            return LaunchCheck(False, f"{base_model} cannot be trained on Together AI: choose a Together model.")
        return LaunchCheck(True)
    if not base_on_disk(base_model):
        spec = CATALOG.get(base_model)
        name = spec.display_name if spec else str(base_model)
        where = f" (download {spec.hf_repo} first)" if spec else ""
        return LaunchCheck(
            False,
            f"{name} is not on this computer{where}, so it cannot train here. "
            "The built-in SmolLM2 model is, and trains in minutes.",
            FIX_USE_BUILTIN,
            "Use the built-in model",
        )
    return LaunchCheck(True)
