"""Teaching a Together twin from the Playground: what `cognitivetwin teach` does for one.

A twin whose adapter came from a Together job (its lineage or the job records say so:
`together_parent_job`) is taught where it was trained. `teach_on_together` writes and
uploads the same preference file as the command (cognitivetwin_core/phase1/together_teach.py),
asks Together's price estimate, shows it in the launch confirmation with what would be sent
(a `LaunchConfirmDialog`, docs/qt.md §11), and creates the DPO job only when the person
confirms. The job then is an ordinary Phase 1 job: the Phase 1 tab's job list follows it,
downloads the new version when it is done, and registers it (see the window's
`follow_together_job`). The work that talks to Together runs off the GUI thread. See
docs/teaching-and-memory.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from app.dialogs.phase1_confirm import LaunchConfirmDialog


class TeachConfirmDialog(LaunchConfirmDialog):
    """The launch confirmation, titled for teaching (tests patch `ask`, docs/qt.md §17)."""

    def __init__(self, plan, parent: QWidget | None = None):
        super().__init__(plan, parent)
        self.setWindowTitle("Teach the twin on Together AI")


async def teach_on_together(
    parent: QWidget | None,
    workspace,
    adapter_dir: str,
    *,
    include_taught: bool,
    read_api_key: Callable[[], str | None],
    on_status: Callable[[str], None],
) -> str | None:
    """Plan, confirm and launch a Teach job on Together; its job id, or None when the person
    declined (nothing was created then). Raises CognitiveTwinError with one sentence."""
    from cognitivetwin_core.phase1.backends import open_backend
    from cognitivetwin_core.phase1.together_teach import (
        launch_together_teach,
        plan_together_teach,
        preference_pairs,
    )

    # Refuses in words without an edit (or with nothing new), before any key or upload.
    pairs = await asyncio.to_thread(lambda: preference_pairs(workspace, adapter_dir, include_taught=include_taught))
    key = await asyncio.to_thread(read_api_key)
    on_status(f"Uploading {len(pairs.lines)} of your edits and asking Together for the price…")
    manager = await asyncio.to_thread(lambda: open_backend("together", workspace, api_key=key))
    plan = await asyncio.to_thread(lambda: plan_together_teach(workspace, manager, pairs))
    on_status("")
    if not await TeachConfirmDialog.ask(parent, plan):
        return None
    on_status("Starting the teaching job on Together…")
    return await asyncio.to_thread(launch_together_teach, manager, plan)
