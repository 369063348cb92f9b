"""Local LoRA training step cost on the embedded model, variants measured side by side.

    .venv/bin/python benchmarks/local_lora_step.py [--steps 3] [--tokens 2048]
    .venv/bin/python benchmarks/local_lora_step.py --epoch     # one real epoch of the demo data

Both wall-clock and CPU time (process_time) are reported, with one torch thread by default:
on a shared, loaded machine wall time says little, and with several threads OpenMP's
spin-waiting inflates CPU time; tokens per CPU-second x cores approximates an idle machine.

Variants, each timed over the same batches of the demo data in one run (ratios are what
count: the machine's load changes absolute numbers):
  hf_loss        the usual `model(input_ids, labels=...)`: logits for every position
  labelled_only  `assistant_tokens.assistant_loss`: vocabulary projection only where a label is
  top_layers     labelled_only, LoRA on the top third of the layers only (shorter backward)
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=2048, help="padded tokens per batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: clean CPU accounting)")
    parser.add_argument("--epoch", action="store_true", help="time train_local_lora over one epoch of the demo")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.epoch:
        return epoch()

    import torch
    from peft import LoraConfig, get_peft_model

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.assistant_tokens import (
        assistant_loss,
        collate,
        length_batches,
        tokenize_conversation,
    )
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl

    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")
    _, tokenizer = load_base_model("smollm2-135m")
    examples = [e for e in (tokenize_conversation(tokenizer, c, 512) for c in conversations) if e]
    batches = length_batches(examples, args.tokens, seed=0)[: args.steps + 1]
    tensors = [collate([examples[i] for i in b], tokenizer.pad_token_id) for b in batches]
    tokens = sum(int(mask.sum()) for _, _, mask in tensors[1:])

    def build(top_only: bool):
        torch.manual_seed(0)
        model, _ = load_base_model("smollm2-135m")
        layers = model.config.num_hidden_layers
        config = LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj"],
            task_type="CAUSAL_LM",
            layers_to_transform=list(range(layers - layers // 3, layers)) if top_only else None,
        )
        model = get_peft_model(model, config)
        model.train()
        return model

    def hf_loss(model, ids, labels, mask):
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    def ours(model, ids, labels, mask):
        return assistant_loss(model, ids, labels, mask)[0]

    results = {}
    for name, top_only, loss_fn in (
        ("hf_loss", False, hf_loss),
        ("labelled_only", False, ours),
        ("top_layers", True, ours),
    ):
        model = build(top_only)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        for index, (ids, labels, mask) in enumerate(tensors):
            if index == 1:  # the first step warms up allocators and kernels
                start, cpu_start = time.perf_counter(), time.process_time()
            loss = loss_fn(model, ids, labels, mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        results[name] = tokens / cpu
        print(f"{name:<14} {tokens / wall:8.1f} tokens/s wall, {tokens / cpu:8.1f} tokens per CPU-second", flush=True)
    base = results["hf_loss"]
    print("ratios vs hf_loss (CPU time): " + ", ".join(f"{k} {v / base:.2f}x" for k, v in results.items()))


def epoch() -> None:
    import tempfile

    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import Phase1Settings
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    data = resources_dir() / "demo" / "conversations.jsonl"
    settings = Phase1Settings(base_model="smollm2-135m", epochs=1, lora_r=8, lora_alpha=16)
    start, cpu_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        result = train_local_lora(data, "smollm2-135m", f"{folder}/adapter", settings)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        f"1 epoch of the demo: {result.examples} conversations, {result.steps} steps, {result.trained_tokens} "
        f"tokens, loss {result.first_loss:.3f} -> {result.last_loss:.3f}; {wall:.0f} s wall, {cpu:.0f} CPU-seconds"
    )


if __name__ == "__main__":
    main()
