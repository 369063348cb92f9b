"""`cognitivetwin playground`: what a trained Phase 2 model sees in a message.

    cognitivetwin playground --model-dir DIR --text "..." [--context FILE] [--role user]
        [--top-k 3] [--json] [--data-file FILE | --workspace DIR] [--device auto]

Prints the style signature summary and its stylometric readout, the 12 pattern
probabilities, and for each plan step the nearest messages of the data the run trained on
(or of --data-file / --workspace). --context is a JSON file: a list of {role, content}, or
{"messages": [...]}, or JSONL with one message per line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cognitivetwin_core.conversation import ROLES


def register(subparsers) -> None:
    parser = subparsers.add_parser("playground", help="analyse a message with a trained Phase 2 model")
    parser.add_argument("--model-dir", required=True, help="a Phase 2 output folder (config.json + model.safetensors)")
    parser.add_argument("--text", required=True, help="the message to analyse")
    parser.add_argument("--context", default=None, help="earlier messages of its conversation (JSON or JSONL file)")
    parser.add_argument("--role", default="user", choices=ROLES)
    parser.add_argument("--top-k", type=int, default=3, help="nearest messages per plan step")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-file", help="search plan-step neighbours in this file instead of the run's data")
    source.add_argument("--workspace", help="search plan-step neighbours in this workspace")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.set_defaults(func=_run)


def read_context(path: str | Path):
    """Messages from a JSON list, a {"messages": [...]} object, or JSONL (a message per line)."""
    from cognitivetwin_core.conversation import ROLES, Message
    from cognitivetwin_core.errors import InputError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read the context file {path}: {exc.strerror}.") from None
    records: list[tuple[str, object]] = []
    try:
        data = json.loads(text)
        items = data.get("messages") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InputError(f'{path}: expected a list of messages or an object with "messages".')
        records = [(f"message {i + 1}", item) for i, item in enumerate(items)]
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
    messages = []
    for where, item in records:
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise InputError(f'{path}, {where}: a message needs a "role" and a text "content".')
        role = item.get("role", "user")
        if role not in ROLES:
            raise InputError(f"{path}, {where}: unknown role {role!r}; use one of {', '.join(ROLES)}.")
        messages.append(Message(role, item["content"]))
    return messages


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _run(args) -> int:
    from cognitivetwin_core.playground.analysis import NeighbourIndex, analyze, load_playground_model

    context = read_context(args.context) if args.context else []
    model = load_playground_model(args.model_dir, device=args.device)
    if args.data_file or args.workspace:
        if args.data_file:
            from cognitivetwin_core.data.importers import read_conversations

            conversations, _ = read_conversations(args.data_file)
        else:
            from cognitivetwin_core.data.workspace import Workspace

            with Workspace.open(args.workspace, read_only=True) as workspace:
                conversations = list(workspace.iter_conversations())
        index = NeighbourIndex.build(model, conversations)
    else:
        index = NeighbourIndex.for_run(model, args.model_dir)
    result = analyze(args.text, context, model, neighbours_index=index, role=args.role, top_k=args.top_k)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=1)
        print()
        return 0
    signature = result.style_signature
    strongest = sorted(range(len(signature)), key=lambda i: abs(signature[i]), reverse=True)[:6]
    print(
        f"Style signature: {len(signature)} dims, unit length; strongest: "
        + ", ".join(f"#{i} {signature[i]:+.3f}" for i in strongest)
    )
    print("Stylometric readout (predicted by the signature / measured on the text):")
    for name, value in result.stylometrics.items():
        print(f"  {name:<20} {value:5.2f} / {result.measured_stylometrics.get(name, float('nan')):5.2f}")
    traj = result.trajectory
    print(
        f"Trajectory: phase {traj['phase_id']} ({traj['phase_name']}), coordinates "
        + ", ".join(f"{x:.2f}" for x in traj["coordinates"])
    )
    labels = set(result.pattern_labels)
    print("Pattern probabilities (* = the message's label):")
    for name, probability in result.sorted_patterns():
        bar = "#" * int(round(probability * 30))
        print(f"  {name:<16} {probability:5.3f} {bar:<30} {'*' if name in labels else ''}")
    if index is None:
        print("Plan steps: no neighbour data (the run's data is not available; pass --data-file or --workspace).")
        return 0
    from cognitivetwin_core.phase2.verdicts import step_label

    print("Plan steps (nearest messages, cosine):")
    for step, neighbours in enumerate(result.plan_steps, start=1):
        print(f"  step {step} ({step_label(step)}):")
        for n in neighbours:
            print(f"    {n.score:+.3f} [{n.conversation_id} #{n.message_index} {n.role}] {_short(n.text)}")
    return 0
