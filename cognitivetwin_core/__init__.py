"""CognitiveTwin core library: data, Phase 1 and Phase 2 training, with no Qt.

Importing this package is cheap: torch, transformers and peft are imported by the
modules that need them, when they are used.
"""

__version__ = "0.1.0"
