"""Phase 2 at scale: the whole run on a random-weight base of any catalog shape, against a
bare backbone forward pass over the same conversations.

1. Builds a random-weight base of `--shape` in code (models/random_base.py: the real
   architecture and dimensions; `--size tiny` for a 2-layer copy) in a child process, saved
   in the working dtype, so its memory is not counted here.
2. Makes `--turns` synthetic turns (conversations of 4 to 16 turns, user questions and longer
   answers, seeded).
3. Runs the real Phase2Trainer from a cold feature cache and times its stages: load (the
   frozen base onto the device), tokenise (on a background thread, overlapped with encoding),
   encode, annotate, train; encode tokens/s; peak memory.
4. In the same process and dtype: a bare backbone forward pass over the same windows in the
   same batches, tokenised and on the device beforehand; only the forward passes are timed.

The last line is `ratio=R`: the whole Phase 2 run divided by the bare forward pass.

    .venv/bin/python benchmarks/phase2_scale.py --shape llama-3.2-3b --turns 100000 --epochs 3 --device cuda
    .venv/bin/python benchmarks/phase2_scale.py --shape tiny --turns 2000 --epochs 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_WORDS = [
    "the",
    "a",
    "my",
    "our",
    "this",
    "that",
    "model",
    "data",
    "query",
    "index",
    "table",
    "cache",
    "server",
    "request",
    "python",
    "docker",
    "migration",
    "error",
    "timeout",
    "memory",
    "thread",
    "lock",
    "file",
    "path",
    "user",
    "account",
    "plan",
    "trip",
    "budget",
    "week",
    "why",
    "how",
    "what",
    "when",
    "could",
    "would",
    "should",
    "does",
    "is",
    "are",
    "was",
    "were",
    "run",
    "build",
    "test",
    "deploy",
    "fix",
    "slow",
    "fast",
    "big",
    "small",
    "new",
    "old",
    "first",
    "last",
    "because",
    "so",
    "but",
    "and",
    "or",
    "then",
    "also",
    "maybe",
    "really",
    "quite",
    "think",
    "feel",
    "want",
    "need",
    "try",
    "know",
    "see",
    "use",
    "make",
    "take",
    "give",
    "keep",
    "find",
    "tell",
    "ask",
    "explain",
    "show",
]


def synthetic_conversations(turns: int, seed: int = 0):
    from cognitivetwin_core.conversation import Conversation, Message

    rng = random.Random(seed)
    conversations = []
    made = 0
    while made < turns:
        length = min(turns - made, rng.randint(4, 16))
        messages = []
        for t in range(length):
            user = t % 2 == 0
            words = rng.randint(8, 50) if user else rng.randint(40, 180)
            text = " ".join(rng.choice(_WORDS) for _ in range(words))
            text = text[0].upper() + text[1:] + ("?" if user and rng.random() < 0.6 else ".")
            messages.append(Message("user" if user else "assistant", text))
        conversations.append(Conversation(f"synthetic-{len(conversations)}", "benchmark", messages))
        made += length
    return conversations


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_forward(base_dir: str, conversations, device: str, settings) -> dict:
    """The limit: the backbone's forward passes only, over the trainer's windows and batches."""
    import torch

    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import TurnEncoder, _collate, plan_batches

    model, tokenizer = load_frozen_base(base_dir, device=device)
    encoder = TurnEncoder(model, tokenizer, settings, device=device)
    jobs = encoder.plan([c.messages for c in conversations])
    batches = []
    for planned in plan_batches(jobs, encoder.batch_tokens):
        batch = _collate(planned, encoder.pad_id, pin=False)
        batches.append((batch.ids.to(device), batch.mask.to(device)))
    tokens = sum(len(job[2]) for job in jobs)
    decoder = encoder.decoder
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode(), encoder._autocast():
        for ids, mask in batches:
            decoder(input_ids=ids, attention_mask=mask, use_cache=False)
    _sync(device)
    seconds = time.perf_counter() - started
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    del model, encoder, batches
    return {"seconds": seconds, "tokens": tokens, "dtype": dtype}


def run_phase2(base_dir: str, conversations, args, scratch: Path) -> dict:
    """The real trainer from a cold cache, its stages timed from the outside."""
    from cognitivetwin_core.models import frozen_base
    from cognitivetwin_core.phase2 import trainer as trainer_module
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    stages: dict[str, float] = {}
    marks: dict[str, float] = {}
    real_load = frozen_base.load_frozen_base
    real_annotations = trainer_module.Phase2Trainer._annotations
    real_compute = trainer_module.Phase2Trainer._compute_annotations

    def timed_load(*a, **k):
        started = time.perf_counter()
        result = real_load(*a, **k)
        _sync(args.device)
        stages["load"] = time.perf_counter() - started
        return result

    def timed_compute(self, convs):
        started = time.perf_counter()
        result = real_compute(self, convs)
        stages["annotate"] = time.perf_counter() - started
        return result

    def timed_annotations(self, convs):
        started = time.perf_counter()
        result = real_annotations(self, convs)
        stages["annotate_wait"] = time.perf_counter() - started  # what was left after encoding
        marks["annotated"] = time.perf_counter()
        return result

    frozen_base.load_frozen_base = timed_load
    trainer_module.Phase2Trainer._annotations = timed_annotations
    trainer_module.Phase2Trainer._compute_annotations = timed_compute
    config = Phase2Config(
        base_model=base_dir,
        output_dir=str(scratch / "run"),
        cache_dir=str(scratch / "cache"),
        epochs=args.epochs,
        device=args.device,
        num_threads=args.threads,
        encode_batch_tokens=args.encode_batch_tokens,
    )
    events = 0
    finished = None
    try:
        started = time.perf_counter()
        for event in Phase2Trainer(config, conversations=conversations).run():
            events += 1
            if event.kind == "encoding" and "encoded" not in marks and event.done >= event.total:
                marks["encoded"] = time.perf_counter()
            if event.kind == "finished":
                finished = event
        ended = time.perf_counter()
        total = ended - started
    finally:
        frozen_base.load_frozen_base = real_load
        trainer_module.Phase2Trainer._annotations = real_annotations
        trainer_module.Phase2Trainer._compute_annotations = real_compute
    if finished is None or finished.outcome != "completed":
        raise SystemExit(f"Phase 2 did not complete: {finished.message}")
    entry = next(p for p in (scratch / "cache").iterdir() if not p.name.startswith("."))
    description = json.loads((entry / "index.json").read_text())["description"]
    stats = description.get("encode_stats", {})
    stages["tokenise"] = stats.get("tokenize_s", 0.0)
    stages["encode"] = description["encode_seconds"]
    stages["train"] = ended - marks.get("annotated", ended)
    return {
        "total": total,
        "stages": stages,
        "tokens": stats.get("tokens", 0),
        "batch_tokens": description.get("batch_tokens"),
        "metrics": finished.metrics or {},
        "settings": description["pooling"],
    }


def _peak_memory(device: str) -> str:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    text = f"peak RSS {rss:.2f} GiB"
    if device.startswith("cuda"):
        text += f", peak GPU {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--shape", default="tiny", help="tiny, smollm2-135m, llama-3.2-1b|3b, llama-3.1-8b, qwen3-4b, gemma-3-4b"
    )
    parser.add_argument(
        "--size", default=None, choices=("tiny", "full"), help="default: tiny for --shape tiny, else full"
    )
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--encode-batch-tokens", type=int, default=None)
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--build-into", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.size or ("tiny" if args.shape == "tiny" else "full")

    import torch

    from cognitivetwin_core.models.devices import select_device, working_dtype
    from cognitivetwin_core.models.random_base import build_random_base, text_model_type

    args.device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = working_dtype(args.device, text_model_type(args.shape))
    if args.build_into:
        build_random_base(args.shape, args.build_into, size=size, dtype=dtype, device=args.device)
        return 0

    conversations = synthetic_conversations(args.turns)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} CPU threads"
    print(f"shape {args.shape} ({size}), {str(dtype).replace('torch.', '')}, device {args.device} ({name})")
    print(f"{args.turns:,} turns in {len(conversations):,} conversations, {args.epochs} epochs")
    with tempfile.TemporaryDirectory(prefix="phase2-scale-") as scratch_name:
        scratch = Path(scratch_name)
        base_dir = scratch / "base"
        started = time.perf_counter()
        build = [sys.executable, __file__, "--shape", args.shape, "--size", size, "--device", args.device]
        subprocess.run([*build, "--build-into", str(base_dir)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        print(f"built the random base in {time.perf_counter() - started:.1f} s (not counted)")

        run = run_phase2(str(base_dir), conversations, args, scratch)
        from cognitivetwin_core.phase2.turn_encoder import EncodingSettings

        settings = EncodingSettings(
            max_window_tokens=run["settings"]["max_window_tokens"],
            overlap_tokens=run["settings"]["overlap_tokens"],
            batch_tokens=run["batch_tokens"],
        )
        bare = bare_forward(str(base_dir), conversations, args.device, settings)
    stages = run["stages"]
    for stage in ("load", "tokenise", "encode", "annotate", "train"):
        note = {
            "tokenise": " (background thread, overlapped with encode)",
            "annotate": f" (background thread beside encode; {stages.get('annotate_wait', 0.0):.2f} s waited for after it)",
            "train": " (from the annotations in hand to the saved model: epochs, validation, checkpoints)",
        }.get(stage, "")
        print(f"{stage:<9} {stages.get(stage, 0.0):9.2f} s{note}")
    encode_rate = run["tokens"] / stages["encode"] if stages.get("encode") else 0.0
    print(f"encode    {run['tokens']:,} tokens, {encode_rate:,.0f} tokens/s (batch {run['batch_tokens']} tokens)")
    print(
        f"bare forward {bare['seconds']:.2f} s over {bare['tokens']:,} tokens in {bare['dtype']} "
        f"({bare['tokens'] / bare['seconds']:,.0f} tokens/s)"
    )
    print(f"whole Phase 2 run {run['total']:.2f} s; {_peak_memory(args.device)}")
    metrics = run["metrics"]
    if metrics:
        print("validation: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    ratio = run["total"] / bare["seconds"]
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"args": vars(args), "run": run, "bare": bare, "ratio": ratio}, indent=2)
        )
    print(f"ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
