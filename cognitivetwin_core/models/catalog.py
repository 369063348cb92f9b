"""The base-model catalog: short names mapped to what training and the app need.

Any local Hugging Face model folder is also a valid base; `resolve_base` tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.errors import InputError

DEFAULT_BASE_MODEL = "smollm2-135m"
DEFAULT_TOGETHER_BASE_MODEL = "llama-3.2-3b"


@dataclass(frozen=True)
class BaseModelSpec:
    short_name: str
    display_name: str
    hf_repo: str
    together_id: str | None  # None: not fine-tunable on Together (local only)
    hidden_size: int
    num_layers: int
    context_length: int
    chat_template_notes: str
    embedded: bool = False

    @property
    def together_available(self) -> bool:
        return self.together_id is not None

    @property
    def local_available(self) -> bool:
        """True where weights can be had offline: the embedded model, or a finished download."""
        if self.embedded:
            return True
        from cognitivetwin_core.models.hub import local_snapshot

        return local_snapshot(self.hf_repo) is not None


CATALOG: dict[str, BaseModelSpec] = {
    spec.short_name: spec
    for spec in (
        BaseModelSpec(
            "smollm2-135m",
            "SmolLM2 135M Instruct (embedded)",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            None,
            576,
            30,
            8192,
            "ChatML (<|im_start|>role ... <|im_end|>); inserts a default system prompt when the conversation has none.",
            embedded=True,
        ),
        BaseModelSpec(
            "llama-3.2-3b",
            "Llama 3.2 3B Instruct",
            "meta-llama/Llama-3.2-3B-Instruct",
            "meta-llama/Llama-3.2-3B-Instruct",
            3072,
            28,
            131072,
            "Llama 3 header tokens (<|start_header_id|>role<|end_header_id|>, <|eot_id|>); "
            "adds a dated system preamble.",
        ),
        BaseModelSpec(
            "llama-3.2-1b",
            "Llama 3.2 1B Instruct",
            "meta-llama/Llama-3.2-1B-Instruct",
            "meta-llama/Llama-3.2-1B-Instruct",
            2048,
            16,
            131072,
            "Llama 3 header tokens, as llama-3.2-3b.",
        ),
        BaseModelSpec(
            "llama-3.1-8b",
            "Llama 3.1 8B Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            # Together serves LoRA on the -Reference variant; its adapter_config names this id.
            "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
            4096,
            32,
            131072,
            "Llama 3 header tokens; adapters name the Together -Reference id, rewritten to "
            "the public repo before loading.",
        ),
        BaseModelSpec(
            "gemma-3-4b",
            "Gemma 3 4B IT",
            "google/gemma-3-4b-it",
            "google/gemma-3-4b-it",
            2560,
            34,
            131072,
            "Gemma turns (<start_of_turn>user / model); no system role: the template folds "
            "a system message into the first user turn. Role 'assistant' is 'model'.",
        ),
        BaseModelSpec(
            "qwen3-4b",
            "Qwen3 4B",
            "Qwen/Qwen3-4B",
            "Qwen/Qwen3-4B",
            2560,
            36,
            40960,
            "ChatML; thinking blocks (<think>) unless enable_thinking=False is passed to the template.",
        ),
    )
}


class UnknownBaseModelError(InputError, ValueError):
    """A base model name or folder that is neither in the catalog nor a model folder."""


def get_spec(short_name: str) -> BaseModelSpec:
    try:
        return CATALOG[short_name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise UnknownBaseModelError(
            f"Unknown base model {short_name!r}. Use one of: {known}, or the path of a local Hugging Face model folder."
        ) from None


def spec_for_together_id(together_id: str) -> BaseModelSpec | None:
    for spec in CATALOG.values():
        if spec.together_id == together_id:
            return spec
    return None


def is_local_model_dir(value: str | Path) -> bool:
    path = Path(value).expanduser()
    return path.is_dir() and (path / "config.json").is_file()


def resolve_base(value: str | Path) -> BaseModelSpec | Path:
    """A catalog spec for a short name, or the folder of a local HF model."""
    if isinstance(value, str) and value in CATALOG:
        return CATALOG[value]
    if is_local_model_dir(value):
        return Path(value).expanduser().resolve()
    if isinstance(value, Path) or "/" in str(value) or Path(str(value)).exists():
        raise UnknownBaseModelError(
            f"{value} is not a Hugging Face model folder (it has no config.json). Point to a "
            "folder written by save_pretrained, or use a catalog name: " + ", ".join(CATALOG)
        )
    return get_spec(str(value))


def short_label(base_model: str | None) -> str:
    """The base's short display name ("SmolLM2 135M"), or its folder's name: how runs and
    jobs are named for a person (`phase1/job_names.py`, `phase2/run_names.py`)."""
    import re

    if not base_model:
        return "unknown base"
    spec = CATALOG.get(str(base_model))
    if spec is None:
        return Path(str(base_model)).name or str(base_model)
    label = re.sub(r"\s*\(.*?\)", "", spec.display_name)
    return re.sub(r"\s+Instruct\b", "", label).strip()
