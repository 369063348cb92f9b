"""Talk to the twin and evaluate it: streaming, stop, compare with the base, scores, the
Phase 1 evaluation (twin perplexity below the base's on held-out replies) and the export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.cli import main
from cognitivetwin_core.models.generation import SamplingSettings, generate_reply

PROMPT = "alembic migration hangs on a big table. why"


@pytest.fixture(scope="module")
def demo_twin(tmp_path_factory, embedded_model_dir, demo_conversations) -> Path:
    """A short local LoRA run on the demo (its validation share held out), seeded: the adapter folder."""
    import torch

    from cognitivetwin_core.data.exports import export_together
    from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    folder = tmp_path_factory.mktemp("demo-twin")
    summary = export_together(
        demo_conversations, folder / "all.jsonl", base_model="smollm2-135m", validation_fraction=0.25, seed=0
    )
    assert summary.validation_examples >= 5
    # Twelve of the training conversations, cut to 64 tokens: six steps, a few minutes on two
    # busy cores, and the held-out perplexity falls clearly (about 76 to 63 with this seed).
    train = read_chat_jsonl(folder / "all.jsonl")[:12]
    (folder / "train.jsonl").write_text("".join(json.dumps({"messages": c}) + "\n" for c in train), encoding="utf-8")
    settings = Phase1Settings(
        base_model="smollm2-135m",
        epochs=2,
        learning_rate=2e-3,
        lora_r=8,
        lora_alpha=16,
        max_seq_length=64,
        validation_file=str(summary.validation_path),
    )
    threads = torch.get_num_threads()
    try:
        result = train_local_lora(
            folder / "train.jsonl", "smollm2-135m", folder / "adapter", settings, max_batch_tokens=256, seed=0
        )
    finally:
        torch.set_num_threads(threads)
    return result.adapter_dir


def test_generate_reply_streams_in_pieces_and_stops(embedded_model):
    model, tokenizer = embedded_model
    messages = [{"role": "user", "content": "Name three colours and say why you like each one."}]
    pieces = []
    reply = generate_reply(
        model, tokenizer, messages, SamplingSettings(temperature=0, max_new_tokens=24), on_text=pieces.append
    )
    assert len(pieces) >= 3 and "".join(pieces).strip() == reply.text and reply.tokens == 24
    assert not reply.stopped

    stop = Cancellation()
    seen = []

    def stop_after_first(piece: str) -> None:
        seen.append(piece)
        stop.cancel()

    stopped = generate_reply(
        model,
        tokenizer,
        messages,
        SamplingSettings(temperature=0, max_new_tokens=24),
        on_text=stop_after_first,
        cancellation=stop,
    )
    assert stopped.stopped and stopped.tokens < 24 and reply.text.startswith(stopped.text)


def test_sampling_is_repeatable_with_a_seed(embedded_model):
    model, tokenizer = embedded_model
    messages = [{"role": "user", "content": "Tell me about your day."}]
    settings = SamplingSettings(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=5)
    first = generate_reply(model, tokenizer, messages, settings).text
    assert generate_reply(model, tokenizer, messages, settings).text == first
    with pytest.raises(Exception, match="top-p"):
        SamplingSettings(top_p=0)


def test_chat_cli_prints_the_twin_and_the_base(tiny_adapter, isolated_user_dirs, capsys):
    code = main(
        ["chat", "--adapter", str(tiny_adapter), "--prompt", PROMPT, "--compare-base"]
        + ["--max-new-tokens", "12", "--seed", "3"]
    )
    out = capsys.readouterr().out
    assert code == 0
    twin_line = next(line for line in out.splitlines() if line.startswith("twin> "))
    base_line = next(line for line in out.splitlines() if line.startswith("base> "))
    assert len(twin_line) > len("twin> ") and len(base_line) > len("base> ")


def test_chat_cli_reads_a_pipe_until_quit_and_saves(tiny_adapter, isolated_user_dirs, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO("hi there\n\nhow are you?\n/quit\nnever read\n"))
    saved = tmp_path / "chat.json"
    code = main(
        ["chat", "--adapter", str(tiny_adapter), "--max-new-tokens", "8", "--temperature", "0"]
        + ["--system", "Answer briefly.", "--save", str(saved)]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.count("twin> ") == 2
    record = json.loads(saved.read_text())
    assert [t["user"] for t in record["turns"]] == ["hi there", "how are you?"]
    assert record["system_prompt"] == "Answer briefly." and record["settings"]["temperature"] == 0


def test_missing_base_weights_say_how_to_get_them(tiny_adapter, tmp_path):
    import shutil

    from cognitivetwin_core.playground.chat import BaseWeightsMissingError, load_twin

    other = tmp_path / "adapter"
    shutil.copytree(tiny_adapter, other)
    lineage = json.loads((other / "lineage.json").read_text())
    lineage["base_model"] = "llama-3.2-1b"
    (other / "lineage.json").write_text(json.dumps(lineage))
    with pytest.raises(BaseWeightsMissingError, match="cognitivetwin model download llama-3.2-1b"):
        load_twin(other)


@pytest.mark.parametrize("command", ["chat", "evaluate"])
def test_chat_and_evaluate_run_where_device_says(demo_twin, isolated_user_dirs, capsys, monkeypatch, command):
    """Both honour --device (auto by default): asking for a GPU this machine lacks is refused
    in one sentence, before any model loads; auto picks what is here."""
    from cognitivetwin_core.models import frozen_base

    args = {
        "chat": ["chat", "--adapter", str(demo_twin), "--prompt", PROMPT, "--max-new-tokens", "2"],
        "evaluate": ["phase1", "--evaluate", str(demo_twin), "--samples", "0"],
    }[command]
    if not torch.cuda.is_available():
        assert main([*args, "--device", "cuda"]) != 0
        err = capsys.readouterr().err
        assert "--device cuda was asked for" in err and "Traceback" not in err
    devices = []

    real = frozen_base.load_frozen_base

    def recording(base, adapter_dir, *, device, **kwargs):
        devices.append(device)
        return real(base, adapter_dir, device=device, **kwargs)

    monkeypatch.setattr(frozen_base, "load_frozen_base", recording)
    assert main(args) == 0
    from cognitivetwin_core.models.devices import select_device

    assert devices == [select_device("auto")], "auto: the machine's best device, resolved before loading"


def test_evaluate_refuses_what_is_not_an_adapter_before_reading_data(isolated_user_dirs, tmp_path, capsys):
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    a_file = tmp_path / "adapter.safetensors"
    a_file.write_bytes(b"")
    for given in (tmp_path / "missing", empty, a_file):
        assert main(["phase1", "--evaluate", str(given)]) != 0
        err = capsys.readouterr().err
        assert f"{given} is not a LoRA adapter folder" in err and "Traceback" not in err, err


def test_chat_session_scores_both_replies(demo_twin, phase2_demo_run):
    from cognitivetwin_core.playground.chat import ChatSession, ReplyScorer, load_twin

    scorer = ReplyScorer.for_run(phase2_demo_run)
    assert scorer.person_style is not None, scorer.unavailable
    session = ChatSession(
        load_twin(demo_twin), scorer=scorer, settings=SamplingSettings(temperature=0, max_new_tokens=10)
    )
    streamed = {"twin": [], "base": []}
    turn = session.send(PROMPT, compare_base=True, on_text=lambda who, piece: streamed[who].append(piece))
    assert "".join(streamed["twin"]).strip() == turn.twin.text and "".join(streamed["base"]).strip() == turn.base.text
    for reply in (turn.twin, turn.base):
        assert -1.0 <= reply.score.sounds_like <= 1.0
        assert len(reply.score.patterns) == 12 and all(0 <= p <= 1 for p in reply.score.patterns.values())
    # The twin's reply goes into the history; a second turn sees it.
    assert session.history()[-1] == {"role": "assistant", "content": turn.twin.text}


def test_evaluate_prints_lower_twin_perplexity_and_style_scores(demo_twin, phase2_demo_run, isolated_user_dirs, capsys):
    from cognitivetwin_core.playground.evaluation import headline, load_evaluation

    code = main(
        ["phase1", "--evaluate", str(demo_twin), "--model-dir", str(phase2_demo_run)]
        + ["--samples", "2", "--max-new-tokens", "12"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "perplexity" in out and "sounds like you" in out and "Best example" in out and "Worst example" in out
    report = load_evaluation(demo_twin)
    assert report["perplexity"]["twin"] < report["perplexity"]["base"], report["perplexity"]
    assert report["held_out"]["source"].startswith("the validation split")
    assert len(report["examples"]) == 2
    for row in report["examples"]:
        assert row["twin"] and row["base"] and row["real"]
        assert -1 <= row["twin_sounds_like"] <= 1 and -1 <= row["twin_to_real"] <= 1
        assert set(row["stylometrics"]["twin"]) >= {"length", "punctuation_rate", "question_rate", "emoji"}
    assert headline(report).startswith("perplexity ") and "lower" in headline(report)


def test_export_twin_loads_with_from_pretrained(demo_twin, tmp_path, isolated_user_dirs, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from cognitivetwin_core.playground.chat import load_twin

    out = tmp_path / "export"
    assert main(["phase1", "--export-twin", str(demo_twin), "--output-dir", str(out)]) == 0
    merged = AutoModelForCausalLM.from_pretrained(out / "merged", local_files_only=True)
    twin = load_twin(demo_twin)
    ids = twin.tokenizer("hello there, how is the migration going?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = twin.model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        with twin.model.disable_adapter():
            base = twin.model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-3) and not torch.allclose(got, base, atol=1e-3)
    modelfile = (out / "Modelfile").read_text()
    assert "FROM smollm2:135m" in modelfile and "ADAPTER ./adapter" in modelfile
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert "GGUF" in (out / "README.txt").read_text()
    # A folder that is not empty is refused and left as it was.
    assert main(["phase1", "--export-twin", str(demo_twin), "--output-dir", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_a_cancelled_evaluation_stops_and_saves_nothing(demo_twin):
    from cognitivetwin_core.errors import CancelledError
    from cognitivetwin_core.playground.evaluation import evaluate_adapter

    report = demo_twin / "evaluation.json"
    before = report.read_bytes() if report.exists() else None
    stopped = Cancellation()
    stopped.cancel()
    with pytest.raises(CancelledError, match="nothing was saved"):
        evaluate_adapter(demo_twin, samples=0, device="cpu", cancellation=stopped)
    assert (report.read_bytes() if report.exists() else None) == before
