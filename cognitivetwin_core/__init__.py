"""CognitiveTwin core library: data, Phase 1 and Phase 2 training, with no Qt.

Importing this package is cheap: torch, transformers and peft are imported by the
modules that need them, when they are used. The seed's entry point stays here:

    from cognitivetwin_core import create_cognitivetwin_v2

The package reads like the product (docs/ARCHITECTURE.md): `data/`, `annotation/`,
`models/`, `connections/`, `phase1/`, `phase2/`, `playground/` and `cli/`, over a few
shared basics at the top.
"""

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "create_cognitivetwin_v2": "cognitivetwin_core.phase2.twin_model",
    "CognitiveTwinV2": "cognitivetwin_core.phase2.twin_model",
}


def __getattr__(name: str):
    # Lazy, so `import cognitivetwin_core` (and the CLI's --help) never pays for torch.
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'cognitivetwin_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
