"""Phase 1 on Together AI: upload, dry run, create, monitor, cancel, download (SDK 3.x).

`TogetherJobManager(workspace, api_key=..., base_url=None)` implements the `Phase1Backend`
interface of `phase1/jobs.py` (see there for the method list). Facts it relies on are in
`docs/together.md`; the ones that shaped this code:

- the base URL has no `/v1` (`TOGETHER_BASE_URL` is honoured when `base_url` is None);
- LoRA settings are only sent with `lora=True`;
- POSTs carry no idempotency key and the SDK retries 5xx/timeouts, so a create can start
  two jobs. The manager therefore writes an *intent* record (`intent-<uuid>`) before the
  call, creates with SDK retries off, and after any doubtful outcome (5xx, timeout, crash)
  lists the account's jobs to find the one it made (same training file, model, suffix).
  Extra matches are reported as duplicates (record field `duplicates`), never hidden.
  Once the Together id is known the record is stored under it and the intent removed;
  `reconcile()` (run when a manager opens) settles intents a crash left behind;
- downloads only work for `completed` jobs; the archive is streamed to disk, then
  extracted safely by `adapter_archive.py` and registered in the workspace.

Workspace records (`jobs.JobRecord`, from `Workspace.phase1_jobs()`), keyed by the Together id (`ft-...`):
`backend`="together", `status`, `base_model`, `model_id`, `suffix`, `training_file`,
`validation_file`, `data_path`, `data_sha256`, `settings`, `estimate`, `events` (all seen),
`events_seen`, `step`, `total_steps`, `epochs_completed`, `eta_seconds`, `output_name`,
`adapter_id`, `adapter_path`, `duplicates`, `error`.

The manager is put together from its parts, one module each: the records
(`together_records.py`), upload and dry run (`together_dry_run.py`), creating a job behind
an intent (`together_launch.py`), watching and cancelling (`together_monitoring.py`) and the
adapter download (`together_download.py`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cognitivetwin_core.logging_setup import register_secret
from cognitivetwin_core.phase1.together_download import TogetherDownload
from cognitivetwin_core.phase1.together_dry_run import TogetherDryRun
from cognitivetwin_core.phase1.together_errors import TogetherServiceError
from cognitivetwin_core.phase1.together_launch import TogetherLaunch
from cognitivetwin_core.phase1.together_monitoring import TogetherMonitoring
from cognitivetwin_core.phase1.together_records import TogetherRecords

DEFAULT_BASE_URL = "https://api.together.ai"


class TogetherJobManager(TogetherRecords, TogetherDryRun, TogetherLaunch, TogetherMonitoring, TogetherDownload):
    name = "together"

    def __init__(
        self,
        workspace,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        create_retries: int = 0,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        reconcile: bool = True,
    ):
        if not api_key:
            raise TogetherServiceError(
                "No Together API key: save one in the Connections tab, or set TOGETHER_API_KEY for the CLI.",
                kind="auth",
            )
        register_secret(api_key)
        import together

        self.workspace = workspace
        self.base_url = (base_url or os.environ.get("TOGETHER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if self.base_url.endswith("/v1"):
            # The SDK adds /v1 itself; the 1.x default ended in /v1 and gives /v1/v1 404s.
            self.base_url = self.base_url[: -len("/v1")]
        self.client = together.Together(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )
        # Retrying a create can pay twice: the manager reconciles instead (see module doc).
        self._create_client = self.client.with_options(max_retries=create_retries)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._sleep = sleep
        if reconcile:
            self.reconcile()
