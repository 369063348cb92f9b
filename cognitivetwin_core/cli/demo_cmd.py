"""`cognitivetwin demo`: the headless pipeline end to end on the embedded defaults.

It runs the same sub-commands a user would type, in order, on a workspace of its own:
embedded model -> demo import -> Phase 1 export -> local LoRA (short) -> Phase 2 training
on the base plus that adapter -> the playground on one message.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cognitivetwin_core.errors import CognitiveTwinError

PLAYGROUND_TEXT = "why does the build hang after the last commit? i checked the logs twice"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline headless on the embedded model and the demo data"
    )
    parser.add_argument("--workspace", help="workspace folder (default: a fresh temporary one)")
    parser.add_argument("--epochs", type=int, default=5, help="Phase 2 epochs (default 5)")
    parser.add_argument(
        "--lora-steps", type=int, default=20, help="local LoRA steps of Phase 1 (default 20; 0 skips Phase 1)"
    )
    parser.set_defaults(func=_demo)


def _step(number: int, total: int, title: str) -> None:
    print(f"\n== {number}/{total} {title}", flush=True)


def _run(argv: list[str]) -> None:
    from cognitivetwin_core.cli import main

    print("   $ cognitivetwin " + " ".join(argv), flush=True)
    status = main(argv)
    if status:
        raise CognitiveTwinError(f"The demo stopped: `cognitivetwin {' '.join(argv)}` exited with status {status}.")


def _demo(args) -> int:
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Path(args.workspace or tempfile.mkdtemp(prefix="cognitivetwin-demo-"))
    ws_args = ["--workspace", str(workspace)]
    total = 6 if args.lora_steps else 5
    step = 0

    step += 1
    _step(step, total, "embedded base model")
    _run(["model", "prepare"])

    step += 1
    _step(step, total, "import the demo conversations (annotated on the way in)")
    _run(["data", "import", "demo", *ws_args])
    _run(["data", "stats", *ws_args])

    step += 1
    _step(step, total, "export Phase 1 training data (Together chat JSONL)")
    phase1_file = workspace / "exports" / "phase1.jsonl"
    _run(
        ["data", "export", "--format", "together", "--out", str(phase1_file), "--base-model", "smollm2-135m", *ws_args]
    )

    adapter_args: list[str] = []
    if args.lora_steps:
        step += 1
        _step(step, total, f"Phase 1: local LoRA on the embedded model ({args.lora_steps} steps)")
        _run(
            [
                "phase1",
                "--local",
                "--base-model",
                "smollm2-135m",
                "--data",
                str(phase1_file),
                "--max-steps",
                str(args.lora_steps),
                *ws_args,
            ]
        )
        with Workspace.open(workspace) as ws:
            adapters = ws.adapters()
        if not adapters:
            raise CognitiveTwinError("The demo stopped: Phase 1 registered no adapter in the workspace.")
        adapter_args = ["--adapter", adapters[-1]["path"]]

    step += 1
    _step(step, total, "Phase 2: trajectory adapter and style, pattern and planning heads")
    run_dir = workspace / "runs" / "demo"
    _run(
        [
            "phase2",
            "train",
            "--base-model",
            "smollm2-135m",
            *adapter_args,
            "--workspace",
            str(workspace),
            "--output-dir",
            str(run_dir),
            "--epochs",
            str(args.epochs),
            "--quiet",
        ]
    )

    step += 1
    _step(step, total, "playground: what the twin sees in one message")
    _run(["playground", "--model-dir", str(run_dir), "--text", PLAYGROUND_TEXT])

    print(f"\nDone. Workspace: {workspace}\nOpen it in the studio: cognitivetwin-studio --workspace {workspace}")
    return 0
