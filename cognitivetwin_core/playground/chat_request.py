"""What the chat page sends for one message: a `ChatRequest`, typed and frozen, so the worker
that answers it reads fields, never a dict's keys.

    request = ChatRequest(adapter_dir, "hi", settings=SamplingSettings(), compare_base=True)

The twin is `adapter_dir` on `base_model` (None: the base it was trained on); `run_dir`, a
Phase 2 run, scores the replies; `workspace` (an open `Workspace`) fits the "sounds like you"
judge and, with `memory`, adds the person's most relevant past messages to the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cognitivetwin_core.models.generation import SamplingSettings


@dataclass(frozen=True)
class ChatRequest:
    adapter_dir: str
    text: str
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    system_prompt: str = ""
    compare_base: bool = False
    memory: bool = False
    base_model: str | None = None
    run_dir: str | None = None
    workspace: object | None = field(default=None, compare=False)
