"""Phase 2 speed: the trainer against its limit and against the seed's per-example loop.

On the same base and data (default: the embedded SmolLM2-135M and the demo), with the same
torch threads and dtype:

1. the limit, a plain forward pass: load the backbone (the trainer's loader), tokenise the
   conversations into the trainer's windows and batches (the same tokens, the same padding),
   run the backbone over them; nothing else;
2. this trainer, 10 epochs, feature cache built from cold (a fresh cache folder): base load,
   tokenising, encoding, 10 epochs, ablation, files;
3. the seed-style loop: every epoch, every training example (each message) re-encoded with
   its conversation prefix through the frozen causal LM, then the heads (forward, losses,
   backward, optimizer step). One full epoch is measured and multiplied by 10 (said so in
   the output); --no-seed-loop skips it.

1 and 2 each run in a fresh child process, so both pay the same start (Python, torch and
transformers imports, the tokenizer and the weights read from disk) and 2's peak RSS is its
own. They alternate --repeats times (1 2 2 1 1 2 ...): on a shared machine the neighbours'
load falls on both sides alike. Wall time is measured around each child and CPU time from
its rusage (all threads). Each pair gives 2/1; the min and median over the pairs are
printed, and 2/1 counted from each side's base being loaded (forward passes against
encoding, training and files).

Prints 2/1 (target <= 1.05), 3/2 (target >= 25) and the peak RSS of 2 (target <= 1.5 GB).

    .venv/bin/python benchmarks/phase2_speed.py [--device cpu|cuda|auto] [--epochs 10] [--repeats 2]
        [--base-model smollm2-135m] [--data-file demo] [--threads N] [--no-seed-loop] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # the child's clock starts here; its CPU clock at the process start

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


def _since_start() -> dict:
    """Wall seconds since this child's script started, CPU seconds since its process did."""
    return {"seconds": time.perf_counter() - STARTED, "cpu_seconds": time.process_time()}


def child_limit(args) -> dict:
    """1, in its own process: load, tokenise into the trainer's batches, forward passes."""
    import torch

    from cognitivetwin_core.models.devices import autocast_dtype, configure_threads
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder, _collate, plan_batches

    configure_threads(args.threads)
    device = args.device
    model, tokenizer = load_frozen_base(args.base_model, device=device)
    _sync(device)
    loaded = _since_start()
    conversations = _conversations(args.data_file)
    encoder = TurnEncoder(model, tokenizer, EncodingSettings(batch_tokens=args.batch_tokens), device=device)
    jobs = encoder.plan([c.messages for c in conversations])
    batches = [_collate(batch, encoder.pad_id, pin=False) for batch in plan_batches(jobs, encoder.batch_tokens)]
    amp = autocast_dtype(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    with (
        torch.inference_mode(),
        torch.autocast(device.split(":")[0], dtype=amp or torch.float32, enabled=amp is not None),
    ):
        for batch in batches:
            encoder.decoder(input_ids=batch.ids.to(device), attention_mask=batch.mask.to(device), use_cache=False)
    _sync(device)
    return {
        "loaded": loaded,
        "forward_seconds": time.perf_counter() - started,
        "forward_cpu_seconds": time.process_time() - cpu_started,
        "tokens": sum(batch.tokens for batch in batches),
        "padded_tokens": sum(batch.ids.numel() for batch in batches),
        "batches": len(batches),
        "threads": torch.get_num_threads(),
        "end": _since_start(),
    }


def child_trainer(args) -> dict:
    """2, in its own process: the Phase 2 trainer from a cold cache."""
    from cognitivetwin_core.models import frozen_base
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    marks: dict = {}
    real_load = frozen_base.load_frozen_base

    def timed_load(*a, **k):  # the encoder loads the base through this module on a cache miss
        result = real_load(*a, **k)
        _sync(args.device)
        marks["loaded"] = _since_start()
        return result

    frozen_base.load_frozen_base = timed_load
    config = Phase2Config(
        base_model=args.base_model,
        output_dir=args.output_dir,
        epochs=args.epochs,
        device=args.device,
        cache_dir=args.cache_dir,
        encode_batch_tokens=args.batch_tokens,
        num_threads=args.threads,
    )
    finished = None
    for event in Phase2Trainer(config, data_file=args.data_file).run():
        if event.kind == "encoding" and event.done == event.total and "encoded" not in marks:
            marks["encoded"] = _since_start()
        if event.kind == "finished":
            finished = event
    return {
        **marks,
        "end": _since_start(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "outcome": finished.outcome if finished else None,
        "message": finished.message if finished else None,
        "metrics": finished.metrics if finished else None,
    }


def run_child(args, side: str, scratch: Path) -> dict:
    """One side in a fresh process: its own report, with wall and CPU time from the outside."""
    run = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=scratch))
    command = [sys.executable, __file__, "--child", side, "--device", args.device, "--epochs", str(args.epochs)]
    command += [
        "--base-model",
        args.base_model,
        "--data-file",
        args.data_file,
        "--batch-tokens",
        str(args.batch_tokens),
    ]
    command += ["--output-dir", str(run / "run"), "--cache-dir", str(run / "cache")]
    if args.threads:
        command += ["--threads", str(args.threads)]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"The {side} child failed:\n{process.stderr[-3000:]}")
    report = json.loads(process.stdout.strip().splitlines()[-1])
    report["seconds"] = seconds
    report["cpu_seconds"] = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    report["load_average"] = os.getloadavg()[0]
    return report


def after_load(report: dict, side: str) -> tuple[float, float]:
    """(wall, CPU) seconds from the base being loaded: the limit's forward passes (its
    tokenising left out), the trainer's encoding, training and files."""
    if side == "limit":
        return report["forward_seconds"], report["forward_cpu_seconds"]
    end, loaded = report["end"], report["loaded"]
    return end["seconds"] - loaded["seconds"], end["cpu_seconds"] - loaded["cpu_seconds"]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--base-model", default="smollm2-135m")
    parser.add_argument("--data-file", default="demo")
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of limit and trainer runs, alternated")
    parser.add_argument("--no-seed-loop", action="store_true", help="skip 3 (the seed-style loop)")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for all three (default: torch's)")
    parser.add_argument("--child", choices=("limit", "trainer"), help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_file == "demo":
        from cognitivetwin_core.data.importers.demo import demo_dataset_path

        args.data_file = str(demo_dataset_path())
    if args.child:
        print(json.dumps(child_limit(args) if args.child == "limit" else child_trainer(args)))
        return 0

    import torch

    from cognitivetwin_core.models.devices import select_device
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

    pairs = []
    with tempfile.TemporaryDirectory(prefix="phase2-bench-") as scratch:
        for repeat in range(max(1, args.repeats)):
            order = ("limit", "trainer") if repeat % 2 == 0 else ("trainer", "limit")
            pair = {side: run_child(args, side, Path(scratch)) for side in order}
            limit, trainer = pair["limit"], pair["trainer"]
            if trainer["outcome"] != "completed":
                raise SystemExit(f"The trainer did not complete: {trainer['message']}")
            pair["ratio"] = trainer["seconds"] / limit["seconds"]
            pair["cpu_ratio"] = trainer["cpu_seconds"] / limit["cpu_seconds"]
            (trainer_wall, trainer_cpu), (limit_wall, limit_cpu) = (
                after_load(trainer, "trainer"),
                after_load(limit, "limit"),
            )
            pair["ratio_after_load"], pair["cpu_ratio_after_load"] = trainer_wall / limit_wall, trainer_cpu / limit_cpu
            pairs.append(pair)
            print(
                f"pair {repeat + 1} ({' then '.join(order)}; load average {limit['load_average']:.1f}, "
                f"{trainer['load_average']:.1f}):\n"
                f"  1. limit: {limit['seconds']:.1f} s wall, {limit['cpu_seconds']:.1f} s CPU; its forward passes over "
                f"{limit['tokens']:,} tokens ({limit['padded_tokens']:,} with padding, {limit['batches']} batches, "
                f"{limit['threads']} threads) {limit_wall:.1f} s wall, {limit_cpu:.1f} s CPU\n"
                f"  2. trainer, {args.epochs} epochs, cold cache: {trainer['seconds']:.1f} s wall, "
                f"{trainer['cpu_seconds']:.1f} s CPU; from its base loaded {trainer_wall:.1f} s wall, {trainer_cpu:.1f} s "
                f"CPU (encoded at {trainer['encoded']['seconds'] - trainer['loaded']['seconds']:.1f} s), "
                f"peak RSS {trainer['peak_rss_gb']:.2f} GB\n"
                f"  2/1 = {pair['ratio']:.3f} wall, {pair['cpu_ratio']:.3f} CPU; from the base loaded "
                f"{pair['ratio_after_load']:.3f} wall, {pair['cpu_ratio_after_load']:.3f} CPU",
                flush=True,
            )

    seed = seed_total = None
    if not args.no_seed_loop:
        from cognitivetwin_core.models.frozen_base import load_frozen_base

        model, tokenizer = load_frozen_base(args.base_model, device=device)
        seed = measure_seed_epoch(model, tokenizer, conversations, train_ids, device)
        seed_total = seed["seconds"] * args.epochs
        print(
            f"3. seed-style loop: 1 epoch measured, {seed['examples']} examples, {seed['tokens']:,} prefix tokens: "
            f"{seed['seconds']:.1f} s wall, {seed['cpu_seconds']:.1f} s CPU; x{args.epochs} epochs = {seed_total:.1f} s "
            "wall (extrapolated)",
            flush=True,
        )

    def summary(key: str) -> str:
        values = [pair[key] for pair in pairs]
        return f"min {min(values):.3f}, median {statistics.median(values):.3f}"

    trainer_seconds = statistics.median(pair["trainer"]["seconds"] for pair in pairs)
    trainer_cpu = statistics.median(pair["trainer"]["cpu_seconds"] for pair in pairs)
    peak_rss_gb = max(pair["trainer"]["peak_rss_gb"] for pair in pairs)
    print()
    # CPU seconds too: on a shared machine wall time swings with the neighbours' load.
    print(f"2/1 = {summary('ratio')} wall; {summary('cpu_ratio')} CPU time   (target <= 1.05)")
    print(f"2/1 from the base loaded = {summary('ratio_after_load')} wall; {summary('cpu_ratio_after_load')} CPU time")
    if seed is not None:
        print(
            f"3/2 = {seed_total / trainer_seconds:.1f} wall, {seed['cpu_seconds'] * args.epochs / trainer_cpu:.1f} "
            "CPU time   (target >= 25)"
        )
    print(f"peak RSS of 2 = {peak_rss_gb:.2f} GB   (target <= 1.5 GB)")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "device": device,
                    "pairs": pairs,
                    "seed_epoch": seed,
                    "seed_total_extrapolated_s": seed_total,
                    "trainer_peak_rss_gb": peak_rss_gb,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
