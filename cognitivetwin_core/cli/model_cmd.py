"""`cognitivetwin model`: the base-model catalog and the embedded default model."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="base models: list the catalog, prepare the embedded model")
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    sub.add_parser("list", help="list the base-model catalog").set_defaults(func=_list)
    sub.add_parser("prepare", help="convert the embedded SmolLM2 model into the user cache (once)").set_defaults(
        func=_prepare
    )
    generate = sub.add_parser("generate", help="answer a chat prompt with a base model (greedy)")
    generate.add_argument("--base-model", default="smollm2-135m", help="catalog name or local folder")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--max-new-tokens", type=int, default=48)
    generate.set_defaults(func=_generate)


def _list(args) -> int:
    from cognitivetwin_core.models.catalog import CATALOG

    print(f"{'name':<14} {'hidden':>6} {'context':>8}  {'Together id':<50} notes")
    for spec in CATALOG.values():
        together = spec.together_id or "(local only)"
        extra = "embedded, default" if spec.embedded else ""
        print(f"{spec.short_name:<14} {spec.hidden_size:>6} {spec.context_length:>8}  {together:<50} {extra}")
    return 0


def _prepare(args) -> int:
    from cognitivetwin_core.models.embedded import ensure_converted

    path = ensure_converted(progress=print)
    print(f"Embedded model ready: {path}")
    return 0


def _generate(args) -> int:
    from cognitivetwin_core.models.generation import chat_generate

    print(chat_generate(args.base_model, args.prompt, max_new_tokens=args.max_new_tokens))
    return 0
