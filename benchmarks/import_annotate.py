"""Import + annotation speed against the JSON parse alone, measured side by side in one run.

Generates a ShareGPT-format file of about 17,000 conversations (2 to 40 messages; user
turns short, assistant turns long, about 1% of messages very long, some code), then times
`json.load` of the file and `import_into` a fresh workspace (streamed parse, validation,
5D trajectory annotation, pattern labels, SQLite writes), and prints the ratio.
Target: import + annotation at most 3x the JSON parse.

Big imports annotate on worker processes (cognitivetwin_core.annotation.pool); `--workers 0`
times the single-process import. Besides wall time it prints CPU time (the importing
process plus its workers), which says what a machine shared with other jobs hides.

    .venv/bin/python benchmarks/import_annotate.py [--conversations 17000] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "for",
    "on",
    "with",
    "as",
    "this",
    "be",
    "are",
    "was",
    "can",
    "not",
    "your",
    "have",
    "or",
    "by",
    "an",
    "we",
    "will",
    "function",
    "value",
    "error",
    "cache",
    "query",
    "model",
    "data",
    "user",
    "server",
    "request",
    "response",
    "file",
    "test",
    "build",
    "deploy",
    "lesson",
    "student",
    "class",
    "plan",
    "question",
    "answer",
    "because",
    "however",
    "example",
    "therefore",
    "instead",
    "memory",
    "thread",
    "database",
    "index",
    "latency",
    "python",
    "rust",
    "config",
    "network",
    "token",
    "layer",
    "gradient",
    "batch",
    "epoch",
    "loss",
    "approach",
    "option",
    "detail",
    "simple",
    "complex",
    "important",
    "different",
    "similar",
    "quickly",
    "carefully",
    "usually",
]
OPENERS = [
    "How do I",
    "Why does",
    "Can you explain",
    "Write a",
    "What is the difference between",
    "Thanks, that",
    "I think",
    "Could you",
    "Let's plan",
    "Actually, the",
]
CODE = "```python\ndef handler(event):\n    items = [x for x in event['items'] if x]\n    return {'count': len(items)}\n```"


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def message_text(rng: random.Random, assistant: bool) -> str:
    roll = rng.random()
    if roll < 0.01:
        sentences = rng.randint(300, 1500)  # a very long paste or answer (20-100 kB)
    elif assistant:
        sentences = rng.randint(3, 30)
    else:
        sentences = rng.randint(1, 5)
    text = rng.choice(OPENERS) + " " + " ".join(sentence(rng) for _ in range(sentences))
    if rng.random() < 0.15:
        text += "\n\n" + CODE + "\n\n" + sentence(rng)
    return text


def generate(path: Path, conversations: int, seed: int = 0) -> tuple[int, int]:
    rng = random.Random(seed)
    messages = 0
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for number in range(conversations):
            turns = rng.randint(2, 40)
            record = {
                "id": f"bench-{number}",
                "conversations": [
                    {"from": "human" if turn % 2 == 0 else "gpt", "value": message_text(rng, turn % 2 == 1)}
                    for turn in range(turns)
                ],
            }
            messages += turns
            handle.write(("," if number else "") + json.dumps(record, ensure_ascii=False) + "\n")
        handle.write("]\n")
    return conversations, messages


def _children_cpu() -> float:
    """CPU seconds of finished child processes (annotation workers, once their pool is shut down)."""
    try:
        import resource
    except ImportError:  # Windows: no workers anyway
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=17000)
    parser.add_argument("--keep", help="keep the generated file and workspace in this folder")
    parser.add_argument("--workers", type=int, help="annotation worker processes (0: none; default: by CPUs)")
    args = parser.parse_args()
    if args.workers is not None:
        os.environ["COGNITIVETWIN_IMPORT_WORKERS"] = str(args.workers)

    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import Workspace

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ct-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "sharegpt.json"
    try:
        started = time.perf_counter()
        conversations, messages = generate(data, args.conversations)
        size_mb = data.stat().st_size / 1e6
        print(
            f"generated {conversations} conversations, {messages} messages, {size_mb:.0f} MB "
            f"in {time.perf_counter() - started:.1f}s"
        )

        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        with data.open("rb") as handle:
            parsed = json.load(handle)
        parse_seconds = time.perf_counter() - started
        parse_cpu = time.process_time() - started_cpu
        assert len(parsed) == conversations
        del parsed
        gc.collect()

        workspace_dir = folder / "workspace"
        shutil.rmtree(workspace_dir, ignore_errors=True)
        started, started_cpu, children_before = time.perf_counter(), time.process_time(), _children_cpu()
        workspace = Workspace.open(workspace_dir)
        report = import_into(workspace, data)
        import_seconds = time.perf_counter() - started
        import_cpu = time.process_time() - started_cpu
        workers_cpu = _children_cpu() - children_before
        assert report.conversations_accepted == conversations, report.summary()
        assert workspace.count_messages() == messages
        workspace.close()

        print(
            f"json.load:            {parse_seconds:7.2f} s  ({size_mb / parse_seconds:6.1f} MB/s)  cpu {parse_cpu:.2f} s"
        )
        print(
            f"import + annotation:  {import_seconds:7.2f} s  ({messages / import_seconds:8.0f} messages/s)  "
            f"cpu {import_cpu:.2f} s + workers {workers_cpu:.2f} s"
        )
        ratio = import_seconds / parse_seconds
        print(f"ratio: {ratio:.2f}x json.load (target <= 3x): {'OK' if ratio <= 3 else 'OVER TARGET'}")
        print(
            f"cpu ratio: importing process {import_cpu / parse_cpu:.2f}x, with workers "
            f"{(import_cpu + workers_cpu) / parse_cpu:.2f}x json.load's cpu"
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
