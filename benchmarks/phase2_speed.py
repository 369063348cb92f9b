"""Phase 2 speed: the trainer against its limit and against the seed's per-example loop.

All in one run, on the same base and data (default: the embedded SmolLM2-135M and the demo):

1. the limit: one forward pass of the backbone over the same conversations' tokens (the
   trainer's own windows and batches), nothing else;
2. this trainer, 10 epochs, feature cache built from cold (a fresh cache folder), in a child
   process so its peak RSS is its own: base load, tokenising, encoding, 10 epochs, files;
3. the seed-style loop: every epoch, every training example (each message) re-encoded with
   its conversation prefix through the frozen causal LM, then the heads (forward, losses,
   backward, optimizer step). One full epoch is measured and multiplied by 10 (said so in
   the output).

Prints 2/1 (target <= 1.2), 3/2 (target >= 25) and the peak RSS of 2 (target <= 1.5 GB).

    .venv/bin/python benchmarks/phase2_speed.py [--device cpu|cuda|auto] [--epochs 10]
        [--base-model smollm2-135m] [--data-file demo] [--threads N] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _conversations(data_file: str):
    from cognitivetwin_core.data.importers import read_conversations

    conversations, _ = read_conversations(data_file)
    return [c for c in conversations if c.messages]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_limit(model, tokenizer, conversations, device: str, batch_tokens: int) -> dict:
    """1: only the backbone's forward passes over the trainer's windows (tokenised beforehand)."""
    import torch

    from cognitivetwin_core.models.devices import autocast_dtype
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    encoder = TurnEncoder(model, tokenizer, EncodingSettings(batch_tokens=batch_tokens), device=device)
    jobs = sorted(encoder.plan([c.messages for c in conversations]), key=lambda job: len(job[2]), reverse=True)
    batches = []
    position = 0
    while position < len(jobs):
        longest = len(jobs[position][2])
        batch = jobs[position : position + max(1, batch_tokens // longest)]
        position += len(batch)
        ids = torch.full((len(batch), longest), encoder.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (_, _, token_ids) in enumerate(batch):
            ids[row, : len(token_ids)] = torch.tensor(token_ids)
            mask[row, : len(token_ids)] = 1
        batches.append((ids.to(device), mask.to(device)))
    tokens = sum(len(job[2]) for job in jobs)
    amp = autocast_dtype(device)
    decoder = model.get_decoder()
    _sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    with (
        torch.inference_mode(),
        torch.autocast(device.split(":")[0], dtype=amp or torch.float32, enabled=amp is not None),
    ):
        for ids, mask in batches:
            decoder(input_ids=ids, attention_mask=mask, use_cache=False)
    _sync(device)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_started,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
    }


def measure_seed_epoch(model, tokenizer, conversations, train_ids, device: str, plan_steps: int = 4) -> dict:
    """3: one epoch of the seed's loop; every example's prefix goes through the full causal LM."""
    import torch
    import torch.nn.functional as F

    from cognitivetwin_core.annotation.patterns import pattern_vector, patterns_for
    from cognitivetwin_core.annotation.stylometrics import stylometric_features
    from cognitivetwin_core.annotation.trajectory import annotate
    from cognitivetwin_core.models.devices import autocast_dtype
    from cognitivetwin_core.phase2.turn_encoder import tokenize_conversation
    from cognitivetwin_core.phase2.twin_model import TwinComponents, TwinConfig

    torch.manual_seed(0)
    components = TwinComponents(TwinConfig(hidden_size=model.config.hidden_size, plan_steps=plan_steps)).to(device)
    optimizer = torch.optim.AdamW(components.parameters(), lr=1e-4)
    amp = autocast_dtype(device)
    examples = tokens = 0
    _sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    for conversation_index in train_ids:
        conversation = conversations[conversation_index]
        trajectory = annotate(conversation)
        for t, message in enumerate(conversation.messages):
            prefix = conversation.messages[: t + 1]
            tokenized = tokenize_conversation(tokenizer, prefix)
            ids = torch.tensor([tokenized.input_ids[:8192]], device=device)
            start, end = tokenized.pool_spans[-1]
            with (
                torch.no_grad(),
                torch.autocast(device.split(":")[0], dtype=amp or torch.float32, enabled=amp is not None),
            ):
                hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
            pooled = hidden[0, start:end].float().mean(0, keepdim=True)
            turn = trajectory[t]
            out = components(
                pooled,
                torch.tensor([list(turn.coordinates)], device=device),
                torch.tensor([turn.phase_id], device=device),
                torch.tensor([turn.homogeneity], device=device),
            )
            labels = torch.tensor([pattern_vector(patterns_for(message))], device=device)
            stylo = torch.tensor([stylometric_features(message.content)], device=device)
            loss = F.binary_cross_entropy_with_logits(out.pattern_logits, labels) + F.mse_loss(out.stylometrics, stylo)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            examples += 1
            tokens += ids.shape[1]
    _sync(device)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "examples": examples,
        "tokens": tokens,
    }


def child_trainer(args) -> None:
    """2, in its own process: the Phase 2 trainer from a cold cache."""
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    config = Phase2Config(
        base_model=args.base_model,
        output_dir=args.output_dir,
        epochs=args.epochs,
        device=args.device,
        cache_dir=args.cache_dir,
        encode_batch_tokens=args.batch_tokens,
        num_threads=args.threads,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    encode_done = None
    finished = None
    for event in Phase2Trainer(config, data_file=args.data_file).run():
        if event.kind == "encoding" and event.done == event.total and encode_done is None:
            encode_done = time.perf_counter()
        if event.kind == "finished":
            finished = event
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": total,
                "cpu_seconds": time.process_time() - cpu_started,
                "encode_seconds": (encode_done or started) - started,
                "outcome": finished.outcome if finished else None,
                "metrics": finished.metrics if finished else None,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--base-model", default="smollm2-135m")
    parser.add_argument("--data-file", default="demo")
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for all three (default: torch's)")
    parser.add_argument("--child-trainer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_file == "demo":
        from cognitivetwin_core.data.importers.demo import demo_dataset_path

        args.data_file = str(demo_dataset_path())
    if args.child_trainer:
        child_trainer(args)
        return 0

    import torch

    from cognitivetwin_core.models.devices import select_device
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    device = select_device(args.device)
    args.device = device
    if args.threads:
        torch.set_num_threads(args.threads)
    conversations = _conversations(args.data_file)
    train_ids, _ = Phase2Trainer(Phase2Config(output_dir="unused"), conversations=conversations).split(
        len(conversations)
    )
    print(
        f"device {device} ({torch.cuda.get_device_name() if device.startswith('cuda') else f'{torch.get_num_threads()} CPU threads'}), "
        f"base {args.base_model}, {len(conversations)} conversations, "
        f"{sum(len(c.messages) for c in conversations)} messages ({len(train_ids)} training conversations)",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="phase2-bench-") as scratch:
        child = [
            sys.executable,
            __file__,
            "--child-trainer",
            "--device",
            device,
            "--epochs",
            str(args.epochs),
            "--base-model",
            args.base_model,
            "--data-file",
            args.data_file,
            "--batch-tokens",
            str(args.batch_tokens),
            "--output-dir",
            str(Path(scratch) / "run"),
            "--cache-dir",
            str(Path(scratch) / "cache"),
        ]
        if args.threads:
            child += ["--threads", str(args.threads)]
        process = subprocess.run(child, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if process.returncode != 0:
            print(process.stderr[-3000:], file=sys.stderr)
            return 1
        trainer = json.loads(process.stdout.strip().splitlines()[-1])
        peak_rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    print(
        f"2. trainer, {args.epochs} epochs, cold cache: {trainer['seconds']:.1f} s wall, {trainer['cpu_seconds']:.1f} s CPU "
        f"(load + encode {trainer['encode_seconds']:.1f} s), peak RSS {peak_rss_gb:.2f} GB",
        flush=True,
    )

    model, tokenizer = load_frozen_base(args.base_model, device=device)
    limit = measure_limit(model, tokenizer, conversations, device, args.batch_tokens)
    print(
        f"1. limit: one forward pass over {limit['tokens']:,} tokens: {limit['seconds']:.1f} s wall, "
        f"{limit['cpu_seconds']:.1f} s CPU "
        f"({limit['tokens_per_s']:,.0f} tokens/s)",
        flush=True,
    )
    seed = measure_seed_epoch(model, tokenizer, conversations, train_ids, device)
    seed_total = seed["seconds"] * args.epochs
    print(
        f"3. seed-style loop: 1 epoch measured, {seed['examples']} examples, {seed['tokens']:,} prefix tokens: "
        f"{seed['seconds']:.1f} s wall, {seed['cpu_seconds']:.1f} s CPU; x{args.epochs} epochs = {seed_total:.1f} s "
        "wall (extrapolated)",
        flush=True,
    )

    ratio_limit = trainer["seconds"] / limit["seconds"]
    ratio_seed = seed_total / trainer["seconds"]
    # CPU seconds too: on a shared machine wall time swings with the neighbours' load.
    cpu_ratio_limit = trainer["cpu_seconds"] / limit["cpu_seconds"]
    cpu_ratio_seed = seed["cpu_seconds"] * args.epochs / trainer["cpu_seconds"]
    print()
    print(f"2/1 = {ratio_limit:.2f} wall, {cpu_ratio_limit:.2f} CPU time   (target <= 1.2)")
    print(f"3/2 = {ratio_seed:.1f} wall, {cpu_ratio_seed:.1f} CPU time   (target >= 25)")
    print(f"peak RSS of 2 = {peak_rss_gb:.2f} GB   (target <= 1.5 GB)")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "device": device,
                    "limit": limit,
                    "trainer": trainer,
                    "trainer_peak_rss_gb": peak_rss_gb,
                    "seed_epoch": seed,
                    "seed_total_extrapolated_s": seed_total,
                    "ratio_2_1": ratio_limit,
                    "ratio_3_2": ratio_seed,
                    "cpu_ratio_2_1": cpu_ratio_limit,
                    "cpu_ratio_3_2": cpu_ratio_seed,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
