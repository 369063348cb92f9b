"""Apply a LoRA adapter to a loaded base, whichever layout of the language model it was
trained on.

An image-text base such as Gemma 3 4B is always loaded as its text model alone
(models/loader.py), where the decoder layers are `model.layers.N`. An adapter trained on the
full `Gemma3ForConditionalGeneration` names the same layers `model.language_model.layers.N`
(transformers 5) or `language_model.model.layers.N` (transformers 4, and most adapters on the
Hub), and its `target_modules` may be a pattern anchored on those names. Such an adapter is
rewritten for the loaded model (weight names and target modules) in a temporary folder, and
PEFT loads that; its weights for the vision tower or the projector, if any, are left out:
they only change how images are read, and no image is. An adapter whose names already fit
loads unchanged.

    apply_adapter(model, adapter_dir) -> PeftModel (frozen, as PeftModel.from_pretrained gives it)
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
# Where an image-text model keeps its language model's decoder, as an adapter names it.
_LANGUAGE_MODEL = re.compile(r"^(?:model\.)?language_model\.(?:model\.)?")
_OTHER_TOWERS = ("vision_tower", "vision_model", "multi_modal_projector", "audio_tower")


def decoder_path(model) -> str:
    """The dotted path of the model's decoder (`model` for a causal LM, "" for a bare one)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    return next((name for name, module in model.named_modules() if module is decoder), "")


def renamed_adapter_keys(keys, decoder: str) -> dict[str, str | None]:
    """Old name -> new name for the adapter weights whose names must change to fit a model
    whose decoder sits at `decoder`; None for weights of another tower (left out)."""
    target = PEFT_PREFIX + (decoder + "." if decoder else "")
    renames: dict[str, str | None] = {}
    for key in keys:
        if not key.startswith(PEFT_PREFIX):
            continue
        rest = key[len(PEFT_PREFIX) :]
        if any(part in _OTHER_TOWERS for part in rest.split(".")):
            renames[key] = None
            continue
        match = _LANGUAGE_MODEL.match(rest)
        if not match:
            continue
        inner = rest[match.end() :]
        new = PEFT_PREFIX + inner if inner.startswith("lm_head.") else target + inner
        if new != key:
            renames[key] = new
    return renames


def _module_name(key: str) -> str | None:
    """The wrapped module's path of a LoRA weight name (None for other weights)."""
    head, found, _ = key.partition(".lora_")
    return head[len(PEFT_PREFIX) :] if found and head.startswith(PEFT_PREFIX) else None


def _weight_names(weights_path: Path) -> list[str]:
    """The tensor names of an adapter's weights file; a damaged or truncated file is one sentence."""
    from safetensors import SafetensorError, safe_open

    from cognitivetwin_core.errors import InputError

    try:
        with safe_open(str(weights_path), "pt") as handle:
            return list(handle.keys())
    except SafetensorError as exc:
        raise InputError(
            f"{weights_path} is damaged or not a safetensors file ({exc}); train or copy the adapter again."
        ) from None


def apply_adapter(model, adapter_dir: str | Path):
    """`model` with the LoRA adapter of `adapter_dir` applied (a PeftModel, not trainable).

    PEFT's own errors (an adapter for another base) pass through for the caller to word.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    weights_path = adapter_dir / WEIGHTS_NAME
    if not weights_path.is_file():
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    keys = _weight_names(weights_path)
    renames = renamed_adapter_keys(keys, decoder_path(model))
    if not renames:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)

    from safetensors.torch import load_file, save_file

    weights = load_file(str(weights_path))
    renamed = {}
    for key, tensor in weights.items():
        new = renames.get(key, key)
        if new is not None:
            renamed[new] = tensor
    left_out = sum(1 for new in renames.values() if new is None)
    if left_out:
        log.info("adapter %s: %d weights of the vision tower left out (no image is read)", adapter_dir, left_out)
    config = json.loads((adapter_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    # Exactly the modules the adapter has weights for, named as the loaded model names them.
    config["target_modules"] = sorted({m for m in map(_module_name, renamed) if m})
    with tempfile.TemporaryDirectory(prefix="cognitivetwin-adapter-") as folder:
        (Path(folder) / CONFIG_NAME).write_text(json.dumps(config), encoding="utf-8")
        save_file(renamed, str(Path(folder) / WEIGHTS_NAME))
        return PeftModel.from_pretrained(model, folder, is_trainable=False)
