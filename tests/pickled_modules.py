"""What unpickling an object imports: the window's process unpickles what a child process
sends, and a torch object among it would import torch there."""

from __future__ import annotations

import io
import pickle


def modules_to_unpickle(*objects) -> set[str]:
    """The modules unpickling `objects` imports."""
    found = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            found.add(module)
            return super().find_class(module, name)

    for item in objects:
        Recording(io.BytesIO(pickle.dumps(item))).load()
    return found


def torch_modules(*objects) -> list[str]:
    """The torch modules among those (none, for anything a child sends the window)."""
    return sorted(m for m in modules_to_unpickle(*objects) if m.split(".")[0] == "torch")
