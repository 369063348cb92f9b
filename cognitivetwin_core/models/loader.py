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


def load_base_model(name_or_dir: str | Path, *, dtype=None, device: str | None = None):
    """Return (model, tokenizer), the model in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = base_model_dir(name_or_dir)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32, local_files_only=True)
    model.eval()
    if device:
        model.to(device)
    return model, load_tokenizer(name_or_dir)
