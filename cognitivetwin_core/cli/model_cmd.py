"""`cognitivetwin model`: the base-model catalog, the embedded default model, and downloads
of the other catalog bases from the Hugging Face Hub (`model download NAME`)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="base models: list the catalog, prepare the embedded model")
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    sub.add_parser("list", help="list the base-model catalog").set_defaults(func=_list)
    sub.add_parser("prepare", help="convert the embedded SmolLM2 model into the user cache (once)").set_defaults(
        func=_prepare
    )
    download = sub.add_parser(
        "download",
        help="download a catalog base from the Hugging Face Hub into the local cache (resumes if interrupted)",
        description="Download a catalog base's weights, config and tokenizer from the Hugging Face Hub. "
        "Gated bases (Llama, Gemma) need their licence accepted on the Hub and a token: HF_TOKEN or the "
        "keyring entry saved by the app's Connections tab.",
    )
    download.add_argument("name", help="catalog name, e.g. llama-3.2-1b (see `cognitivetwin model list`)")
    download.set_defaults(func=_download)
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
        extra = "embedded, default" if spec.embedded else ("on disk" if spec.local_available else "")
        print(f"{spec.short_name:<14} {spec.hidden_size:>6} {spec.context_length:>8}  {together:<50} {extra}")
    return 0


def _download(args) -> int:
    import sys

    from cognitivetwin_core.connections.secrets import huggingface_token
    from cognitivetwin_core.models import hub
    from cognitivetwin_core.models.catalog import get_spec

    spec = get_spec(args.name)
    if spec.embedded:
        print(f"{spec.display_name} is embedded in the app: `cognitivetwin model prepare` readies it.")
        return 0
    token = huggingface_token()
    plan = hub.plan_download(spec.hf_repo, token=token)
    hub.check_disk_space(plan)
    print(
        f"{spec.display_name} ({spec.hf_repo}): {plan.files} files, {plan.bytes_total / 1024**3:.2f} GiB, "
        f"{plan.bytes_to_fetch / 1024**3:.2f} GiB still to fetch into {hub.hub_cache_dir()}"
    )
    shown = {"percent": -1}

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / total) if total else 0
        if percent != shown["percent"]:
            shown["percent"] = percent
            sys.stdout.write(f"\r  {done / 1024**2:,.1f} / {total / 1024**2:,.1f} MiB ({percent}%)")
            sys.stdout.flush()

    try:
        folder = hub.download(spec.hf_repo, token=token, progress=progress)
    finally:
        if shown["percent"] >= 0:
            print()
    print(f"Downloaded to {folder}; `{spec.short_name}` now works wherever a base model is asked for.")
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
