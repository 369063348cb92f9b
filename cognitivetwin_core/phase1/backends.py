"""The Phase 1 backend chooser: Together AI in the cloud, or PEFT on this computer.

Kept apart from `jobs.py` (the shared job types) so that neither backend module imports the
module that imports it.
"""

from __future__ import annotations

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.jobs import Phase1Backend


def open_backend(
    name: str, workspace, *, api_key: str | None = None, base_url: str | None = None, **options
) -> Phase1Backend:
    """The Phase 1 backend `name` ("together" or "local") over `workspace`."""
    if name == "together":
        from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

        return TogetherJobManager(workspace, api_key=api_key, base_url=base_url, **options)
    if name == "local":
        from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs

        return LocalLoraJobs(workspace, **options)
    raise InputError(f"Unknown Phase 1 backend {name!r}: use 'together' or 'local'.")
