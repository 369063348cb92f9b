"""Load a base model and its tokenizer: the embedded default, a catalog name or a local folder.

Nothing here downloads: a catalog name other than the embedded model must already be in
the local Hugging Face cache (`cognitivetwin model download NAME`, see models/hub.py), or
be given as a folder.
"""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.models.catalog import BaseModelSpec, resolve_base


class BaseModelUnavailableError(CognitiveTwinError):
    """A catalog model whose weights are not on this computer."""


def base_model_dir(name_or_dir: str | Path) -> Path | str:
    """A folder (or a repo id present in the local HF cache) that from_pretrained can open offline."""
    resolved = resolve_base(name_or_dir)
    if isinstance(resolved, Path):
        return resolved
    if resolved.embedded:
        from cognitivetwin_core.models.embedded import ensure_converted

        return ensure_converted()
    return _cached_repo(resolved)


def _cached_repo(spec: BaseModelSpec) -> Path:
    from cognitivetwin_core.models.hub import local_snapshot

    folder = local_snapshot(spec.hf_repo)
    if folder is None:
        raise BaseModelUnavailableError(
            f"{spec.display_name} is not on this computer (or its download did not finish), and weights "
            f"are never downloaded at run time: download it with `cognitivetwin model download "
            f"{spec.short_name}` (or the app's Download button), or use the embedded smollm2-135m."
        )
    return folder


def load_tokenizer(name_or_dir: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_dir(name_or_dir), local_files_only=True)


def load_config(name_or_dir: str | Path):
    """The model's config (no weights read)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(base_model_dir(name_or_dir), local_files_only=True)


def text_config(config):
    """The language model's config: itself for a text model, `text_config` for Gemma 3 4B and
    other image-text models (whose top level has no hidden_size)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if getter else config


def text_config_dict(data: dict) -> dict:
    """The language model's part of a parsed config.json (`text_config` for image-text models)."""
    if "hidden_size" not in data and isinstance(data.get("text_config"), dict):
        return data["text_config"]
    return data


def is_multimodal(config) -> bool:
    return text_config(config) is not config


# Checkpoint prefixes of an image-text model's language model, as published on the Hub
# (`language_model.model.`, `language_model.lm_head.`) and as transformers 5 lays it out
# (`model.language_model.`, `lm_head.`), renamed to the text model's own names: the decoder
# alone (`AutoModel`), or the causal LM (`model.` + decoder, `lm_head.`).
_LANGUAGE_MODEL_PREFIX = {r"^(?:model\.)?language_model\.(?:model\.)?": ""}
_CAUSAL_LM_PREFIX = {
    r"^(?:model\.)?language_model\.(?:model\.)?(?!lm_head\.)": "model.",
    r"^(?:model\.)?language_model\.lm_head\.": "lm_head.",
}


def _save_under_own_names(model, mapping: dict) -> None:
    """transformers saves a model under the names it was loaded from (it reverses
    `key_mapping`), which for a text model cut out of an image-text checkpoint gives names
    nothing can load: forget our renaming, so that it saves (the twin export) as itself."""
    conversions = getattr(model, "_weight_conversions", None)
    if conversions:
        model._weight_conversions = [
            c for c in conversions if not set(getattr(c, "source_patterns", None) or ()) & set(mapping)
        ]


def weights_bytes(name_or_dir: str | Path) -> int:
    """Bytes of the weight files on disk (an estimate of the model's size as stored)."""
    folder = Path(base_model_dir(name_or_dir))
    return sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in folder.glob(pattern))


def _quiet_unexpected_keys():
    """The language model alone leaves the vision tower's weights unread: a long load report
    that says nothing wrong. Keep transformers to errors while loading."""
    import contextlib

    from transformers.utils import logging as hf_logging

    @contextlib.contextmanager
    def quiet():
        previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            yield
        finally:
            hf_logging.set_verbosity(previous)

    return quiet()


def load_base_model(
    name_or_dir: str | Path,
    *,
    dtype=None,
    device: str | None = None,
    backbone_only: bool = False,
    device_map: str | dict | None = None,
    tokenizer=None,
):
    """Return (model, tokenizer), the model in eval mode; `tokenizer`, when the caller has
    already loaded it, is returned as is (loading it again costs about a second).

    `backbone_only`: only the language model's decoder (no LM head): all that pooled hidden
    states need. Otherwise the causal LM. Either way an image-text model such as Gemma 3 4B
    loads as its text model alone (`Gemma3ForCausalLM`, no vision tower): nothing here reads
    images. A LoRA adapter trained on the full model applies to it through models/adapters.py.
    The weights go straight onto `device` in `dtype` (no float32 copy on the CPU first);
    `device_map="auto"` spreads a base larger than one GPU over all of them.
    """
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    folder = base_model_dir(name_or_dir)
    config = load_config(name_or_dir)
    kwargs = {"dtype": dtype or torch.float32, "local_files_only": True}
    placement = device_map or (device if device and device != "cpu" else None)
    if placement is not None:
        kwargs["device_map"] = placement
    with _quiet_unexpected_keys():
        if backbone_only and is_multimodal(config):
            model = AutoModel.from_pretrained(
                folder, config=text_config(config), key_mapping=_LANGUAGE_MODEL_PREFIX, **kwargs
            )
            _save_under_own_names(model, _LANGUAGE_MODEL_PREFIX)
        elif backbone_only:
            model = AutoModel.from_pretrained(folder, **kwargs)
        elif is_multimodal(config):
            model = AutoModelForCausalLM.from_pretrained(
                folder, config=text_config(config), key_mapping=_CAUSAL_LM_PREFIX, **kwargs
            )
            _save_under_own_names(model, _CAUSAL_LM_PREFIX)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    model.eval()
    if device and placement is None:
        model.to(device)
    return model, tokenizer if tokenizer is not None else load_tokenizer(name_or_dir)
