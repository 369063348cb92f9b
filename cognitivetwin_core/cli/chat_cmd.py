"""`cognitivetwin chat`: talk to the twin (the base plus a Phase 1 adapter) in the terminal.

    cognitivetwin chat --adapter DIR [--base-model NAME|DIR] [--model-dir RUN] [--compare-base]
                       [--prompt TEXT] [--system TEXT] [--temperature T] [--top-p P]
                       [--max-new-tokens N] [--seed S] [--save FILE]

With --prompt it answers once; without, it reads messages line by line from the terminal
(or a pipe) until end of input or /quit, keeping the conversation. Replies are printed as
they are written. With --model-dir (a Phase 2 run) each reply is followed by its "sounds
like you" score and its most likely patterns.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="talk to your twin (base + Phase 1 adapter), optionally beside the base",
        description="Talk to your twin: the base model with a Phase 1 adapter, run on this computer.",
    )
    parser.add_argument("--adapter", required=True, metavar="DIR", help="the Phase 1 adapter folder")
    parser.add_argument(
        "--base-model", metavar="NAME|DIR", help="base model (default: the one the adapter was trained on)"
    )
    parser.add_argument("--model-dir", metavar="RUN", help="a Phase 2 run: its style head scores each reply (a detail)")
    parser.add_argument(
        "--workspace",
        metavar="DIR",
        help="the person's workspace: an independent judge, fitted on their messages the twin did not train on, "
        "says how much each reply sounds like them",
    )
    parser.add_argument("--compare-base", action="store_true", help="also show the base's reply without the adapter")
    parser.add_argument("--prompt", metavar="TEXT", help="answer this one message and exit")
    parser.add_argument("--system", metavar="TEXT", default="", help="system prompt")
    parser.add_argument("--temperature", type=float, default=None, help="0 = always the likeliest word (default 0.7)")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling share (default 0.9)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="longest reply in tokens (default 160)")
    parser.add_argument("--seed", type=int, default=None, help="make sampled replies repeatable")
    parser.add_argument("--save", metavar="FILE", help="save the conversation as JSON at the end")
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda|cuda:N|mps",
        help="where the twin runs (default auto: a CUDA GPU, then Apple MPS, then the CPU)",
    )
    parser.set_defaults(func=_run)


def _print_score(label: str, reply, scorer) -> None:
    if reply.score is None:
        return
    score = reply.score
    patterns = ", ".join(f"{name} {p:.2f}" for name, p in score.top_patterns(3))
    closeness = f"{score.sounds_like:.3f}" if score.sounds_like is not None else "unavailable"
    print(f"  [{label}] style-head cosine to you (detail): {closeness}; patterns: {patterns}")
    if score.sounds_like is None and scorer.unavailable:
        print(f"  ({scorer.unavailable})")


def _print_judged(turn) -> None:
    for label, reply in (("twin", turn.twin), ("base", turn.base)):
        if reply is not None and reply.yours is not None:
            print(f"  [{label}] sounds like you: {reply.yours:.0%}")
    if turn.verdict:
        print(f"  {turn.verdict}")


def _answer(session, text: str, compare: bool) -> None:
    from cognitivetwin_core.playground.chat import BASE, TWIN

    current = {"who": None}

    def on_text(who: str, piece: str) -> None:
        if current["who"] != who:
            if current["who"] is not None:
                sys.stdout.write("\n")
            sys.stdout.write("twin> " if who == TWIN else "base> ")
            current["who"] = who
        sys.stdout.write(piece)
        sys.stdout.flush()

    turn = session.send(text, compare_base=compare, on_text=on_text)
    for who, reply in ((TWIN, turn.twin), (BASE, turn.base)):
        if reply is not None and not reply.text and current["who"] != who:
            print(f"{who}> (no reply)")
    sys.stdout.write("\n")
    if turn.twin.left_out:
        print(f"({turn.twin.left_out_note()})")
    _print_judged(turn)
    if session.scorer is not None:
        _print_score("twin", turn.twin, session.scorer)
        if turn.base is not None:
            _print_score("base", turn.base, session.scorer)
    sys.stdout.flush()


def _check_save_path(path: str | None) -> None:
    """Refuse a --save place that cannot take a file before the model is loaded."""
    from pathlib import Path

    from cognitivetwin_core.errors import InputError

    if path and Path(path).is_dir():
        raise InputError(f"--save {path} is a folder; give a file name, such as {Path(path) / 'chat.json'}.")


def _input_lines():
    """The messages typed or piped in, one a line, as text. Refused at once when standard input
    is closed; a line that is not UTF-8 is one sentence naming it."""
    from cognitivetwin_core.errors import InputError

    stream = sys.stdin
    if stream is None or stream.closed:
        raise InputError(
            "There is no input to read messages from (standard input is closed): pass --prompt TEXT, "
            "or run the chat in a terminal or with a pipe."
        )
    source = getattr(stream, "buffer", None)
    if source is None:  # a text stream without bytes below it (a test's StringIO)
        return iter(stream.readline, "")

    def decoded():
        for number, line in enumerate(iter(source.readline, b""), 1):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"Line {number} of the standard input is not UTF-8 text; save the messages as UTF-8 "
                    "(for example with iconv -t UTF-8) and try again."
                ) from None

    return decoded()


def _run(args) -> int:
    from cognitivetwin_core.playground.chat import ChatSession, ReplyScorer, load_twin, settings_from

    settings = settings_from(
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    _check_save_path(args.save)
    lines = _input_lines() if args.prompt is None else None
    twin = load_twin(args.adapter, args.base_model, device=args.device)
    scorer = ReplyScorer.for_run(args.model_dir, device=args.device) if args.model_dir else None
    if scorer is not None and scorer.unavailable:
        print(scorer.unavailable, file=sys.stderr)
    person_judge = None
    if args.workspace:
        from cognitivetwin_core.data.workspace import Workspace
        from cognitivetwin_core.playground.judges.sounds_like_you import SCALE, PersonJudge

        with Workspace.open(args.workspace, read_only=True) as workspace:
            person_judge = PersonJudge.for_adapter(args.adapter, workspace)
        print(f"Sounds like you: {SCALE} ({person_judge.note}).", file=sys.stderr)
        if not person_judge.reliable:
            person_judge = None
    session = ChatSession(twin, scorer=scorer, system_prompt=args.system, settings=settings, person_judge=person_judge)
    try:
        if args.prompt is not None:
            _answer(session, args.prompt, args.compare_base)
            return 0
        interactive = sys.stdin.isatty()
        if interactive:
            print(f"Talking to the twin on {twin.base_model}. Type /quit (or end the input) to stop.")
        while True:
            if interactive:
                sys.stdout.write("you> ")
                sys.stdout.flush()
            line = next(lines, "")
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            _answer(session, text, args.compare_base)
        return 0
    finally:
        if args.save:
            print(f"Conversation saved to {session.save(args.save)}")
