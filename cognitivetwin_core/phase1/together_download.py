"""Phase 1 on Together: downloading a finished job's adapter into the workspace (see together_jobs.py)."""

from __future__ import annotations

import os
from pathlib import Path

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.jobs import ProgressCallback
from cognitivetwin_core.phase1.together_errors import TogetherServiceError, translate
from cognitivetwin_core.phase1.together_records import now_iso


class TogetherDownload:
    """Download a completed job's adapter, extract it safely and register it."""

    def download(
        self,
        job_id: str,
        output_dir: str | Path | None = None,
        *,
        progress: ProgressCallback | None = None,
        checkpoint: str = "adapter",
        overwrite: bool = False,
    ) -> Path:
        """Download the finished job's adapter, extract it safely, register it; return its folder.

        An `output_dir` the user named must be missing, empty, or (with `overwrite`) one of our
        adapters: anything else is refused before the download starts.
        """
        from cognitivetwin_core.output_dirs import check_adapter_output
        from cognitivetwin_core.phase1.adapter_archive import extract_adapter_archive, write_lineage

        if output_dir:
            check_adapter_output(output_dir, overwrite=overwrite)

        update = self.check(job_id)
        if update.status != "completed":
            raise InputError(
                f"Job {job_id} is {update.status}, not completed: only a completed job can be "
                "downloaded (watch it with --wait-job)."
            )
        record = self._record(job_id)
        adapter_id = f"together-{job_id}"
        target = Path(output_dir) if output_dir else Path(self.workspace.adapters_dir) / adapter_id
        staging = Path(self.workspace.adapters_dir) / ".downloads"
        staging.mkdir(parents=True, exist_ok=True)
        part = staging / f"{job_id}.tar.zst.part"
        try:
            with self.client.fine_tuning.with_streaming_response.content(
                ft_id=job_id, checkpoint=checkpoint
            ) as response:
                total = int(response.headers.get("content-length") or 0)
                done = 0
                with open(part, "wb") as handle:
                    for chunk in response.iter_bytes(1 << 20):
                        handle.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total or done)
                if total and done != total:
                    raise TogetherServiceError(
                        f"The download of job {job_id} stopped early ({done} of {total} bytes); try again.",
                        kind="connection",
                    )
        except TogetherServiceError:
            part.unlink(missing_ok=True)
            raise
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise translate(exc, action=f"downloading the adapter of job {job_id}") from None
        archive = staging / f"{job_id}.tar.zst"
        os.replace(part, archive)
        config_changes: dict = {}
        try:
            if output_dir:  # checked again: the folder may have changed during the download
                check_adapter_output(output_dir, overwrite=overwrite)
            folder = extract_adapter_archive(archive, target, config_changes=config_changes)
        finally:
            archive.unlink(missing_ok=True)
        lineage = {
            "backend": self.name,
            "job_id": job_id,
            "base_model": record.base_model,
            "model_id": record.model_id,
            "output_name": record.output_name,
            "training_file": record.training_file,
            "data_path": record.data_path,
            "data_sha256": record.data_sha256,
            "settings": record.settings,
            "checkpoint": checkpoint,
            "downloaded_at": now_iso(),
            **config_changes,
            # A Teach job (phase1/together_teach.py): its parent adapter and the feedback used.
            **(record.extra.get("teach") or {}),
        }
        write_lineage(folder, lineage)
        self.workspace.register_adapter(adapter_id, folder, lineage)
        self._store(job_id, adapter_id=adapter_id, adapter_path=str(folder))
        return folder
