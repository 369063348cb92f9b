"""Hostile input to the chat (a family of tests_hostile_inputs.py): a message far longer than
the model can read, a history that outgrows it, a damaged adapter, standard input closed or
not UTF-8, and --save onto a folder. Each is a sentence (or, for the history, a note) within
seconds, never a traceback or minutes of generating."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cognitivetwin_core.errors import InputError
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = WORK_TIMEOUT_S


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_model_dir) -> Path:
    """A LoRA adapter (random, rank 2) on the tiny Llama, saved as Phase 1 saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = get_peft_model(
        LlamaForCausalLM.from_pretrained(tiny_model_dir), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    model.peft_config["default"].base_model_name_or_path = str(tiny_model_dir)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return folder


def chat(adapter: Path, base: Path, *args: str, stdin=subprocess.DEVNULL, tmp_path: Path):
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", "chat", "--adapter", str(adapter), "--base-model", str(base)]
        + ["--max-new-tokens", "4", "--temperature", "0", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_LOG_DIR": str(tmp_path / "logs")},
        capture_output=True,
        timeout=TIMEOUT_S,
        stdin=stdin,
    )


def sentence(result: subprocess.CompletedProcess, *names: str) -> str:
    """The one error line, checked: non-zero exit, no traceback (a progress bar may precede it)."""
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, (result.stdout, err)
    assert "Traceback" not in err and "Error:" not in err, err
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


@pytest.mark.slow
def test_a_message_far_longer_than_the_context_is_refused_before_generating(tiny_adapter, tiny_model_dir, tmp_path):
    prompt = "word " * 20_000  # 100,000 characters: about 20k tokens, ten times the tiny base's 2,048
    result = chat(tiny_adapter, tiny_model_dir, "--prompt", prompt, tmp_path=tmp_path)
    sentence(result, "tokens long", "shorten it")
    assert "twin>" not in result.stdout.decode()


def test_a_history_that_outgrows_the_context_loses_its_oldest_messages_and_says_so(tiny_model_dir):
    from transformers import AutoTokenizer

    from cognitivetwin_core.models.generation import chat_inputs

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "system", "content": "be brief"}]
    for number in range(6):
        messages += [
            {"role": "user", "content": f"question {number} " + "lorem " * 50},
            {"role": "assistant", "content": f"answer {number} " + "ipsum " * 50},
        ]
    messages.append({"role": "user", "content": "the last question"})
    whole, left_out = chat_inputs(tokenizer, messages, "cpu")
    assert left_out == 0
    limit = whole["input_ids"].shape[1] // 2
    inputs, left_out = chat_inputs(tokenizer, messages, "cpu", max_context_tokens=limit)
    assert inputs["input_ids"].shape[1] <= limit and 0 < left_out < len(messages) - 2
    kept = tokenizer.decode(inputs["input_ids"][0])
    assert "be brief" in kept and "the last question" in kept  # the system prompt and the new message stay
    assert "question 0 " not in kept and "answer 5 " in kept  # the oldest go first
    with pytest.raises(InputError, match="tokens long with the system prompt"):
        chat_inputs(
            tokenizer, messages[:1] + [{"role": "user", "content": "word " * 500}], "cpu", max_context_tokens=50
        )


def test_the_chat_session_notes_what_it_left_out(tiny_adapter, tiny_model_dir):
    from cognitivetwin_core.models.generation import SamplingSettings
    from cognitivetwin_core.playground.chat import ChatSession, load_twin

    twin = load_twin(tiny_adapter, tiny_model_dir, device="cpu")
    session = ChatSession(twin, settings=SamplingSettings(temperature=0, max_new_tokens=4))
    first = session.send("tell me " + "word " * 1200)
    assert first.twin.left_out == 0 and first.twin.left_out_note() == ""
    # The tiny base reads 2,048 positions, less 4 for the reply: the first exchange no longer fits.
    second = session.send("and now " + "word " * 1000)
    assert second.twin.left_out >= 1 and "oldest" in second.twin.left_out_note()
    with pytest.raises(InputError, match="tokens long"):
        session.send("word " * 2100)
    assert len(session.turns) == 2  # the refused message is not part of the conversation


@pytest.mark.slow
def test_a_damaged_adapter_weights_file_is_a_sentence(tiny_adapter, tiny_model_dir, tmp_path):
    import shutil

    damaged = tmp_path / "adapter"
    shutil.copytree(tiny_adapter, damaged)
    weights = damaged / "adapter_model.safetensors"
    for content in (weights.read_bytes()[:300], weights.read_bytes()[:-100]):  # garbage header, cut short
        weights.write_bytes(content)
        sentence(chat(damaged, tiny_model_dir, "--prompt", "hi", tmp_path=tmp_path), str(weights), "damaged")


def test_closed_standard_input_is_a_sentence(tiny_adapter, tiny_model_dir, tmp_path):
    script = (
        "import os, sys; os.close(0); sys.stdin = None; from cognitivetwin_core.cli import main; "
        f"sys.exit(main(['chat', '--adapter', {str(tiny_adapter)!r}, '--base-model', {str(tiny_model_dir)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_LOG_DIR": str(tmp_path / "logs")},
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    sentence(result, "standard input is closed", "--prompt")


@pytest.mark.slow
def test_standard_input_that_is_not_utf8_names_its_line(tiny_adapter, tiny_model_dir, tmp_path):
    piped = tmp_path / "messages.txt"
    piped.write_bytes(b"hello\n" + "café au lait\n".encode("latin-1"))
    with open(piped, "rb") as stdin:
        result = chat(tiny_adapter, tiny_model_dir, stdin=stdin, tmp_path=tmp_path)
    sentence(result, "Line 2", "not UTF-8")
    assert "twin>" in result.stdout.decode()  # the first line was answered


def test_save_onto_a_folder_is_refused_before_loading(tiny_adapter, tiny_model_dir, tmp_path):
    folder = tmp_path / "chats"
    (folder / "kept.json").parent.mkdir()
    (folder / "kept.json").write_text("{}", encoding="utf-8")
    result = chat(tiny_adapter, tiny_model_dir, "--prompt", "hi", "--save", str(folder), tmp_path=tmp_path)
    sentence(result, str(folder), "folder")
    assert "Loading" not in result.stderr.decode() and (folder / "kept.json").read_text(encoding="utf-8") == "{}"


# ----- the twin exported --------------------------------------------------------------------------


@pytest.mark.slow
def test_export_twin_onto_a_full_disk_is_a_sentence_and_leaves_no_half_folder(tiny_adapter, tiny_model_dir, tmp_path):
    """A real full disk: a 256 KiB tmpfs (root may mount one; elsewhere the test is skipped)."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = disk / "twin"
        result = subprocess.run(
            [sys.executable, "-m", "cognitivetwin_core", "phase1", "--export-twin", str(tiny_adapter)]
            + ["--base-model", str(tiny_model_dir), "--output-dir", str(out)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_LOG_DIR": str(tmp_path / "logs")},
            capture_output=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        sentence(result, str(out), "disk is full")
        assert not out.exists() and list(disk.iterdir()) == []  # nothing half-written stays
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_disk_failure_a_library_reports_in_words_is_recognised():
    from safetensors import SafetensorError

    from cognitivetwin_core.errors import is_disk_failure, reported_os_error

    full = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert is_disk_failure(reported_os_error(full))
    assert reported_os_error(SafetensorError("Error while deserializing header: invalid header length")) is None
