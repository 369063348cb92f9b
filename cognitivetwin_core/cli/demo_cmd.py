"""`cognitivetwin demo`: the headless pipeline end to end on the embedded defaults."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline headless on the embedded model and the demo data"
    )
    parser.add_argument("--workspace", help="workspace folder (default: a fresh temporary one)")
    parser.set_defaults(func=_demo)


def _demo(args) -> int:
    from ..embedded_model import ensure_converted
    from ..generation import chat_generate

    print("1/1 embedded model:", ensure_converted(progress=print))
    print("    says:", chat_generate("smollm2-135m", "Say hello in five words.", max_new_tokens=16))
    return 0
