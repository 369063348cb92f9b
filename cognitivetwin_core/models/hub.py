"""Catalog bases from the Hugging Face Hub: download on request, find on disk afterwards.

Only `download_base` touches the network, and only when a person asks for it
(`cognitivetwin model download NAME`, the app's Download button). It fetches the files a
base needs (safetensors weights, config, tokenizer) into the standard Hugging Face cache
through `huggingface_hub.snapshot_download`, after checking the disk has room for them.
Files finished before an interruption stay in the cache and are not fetched again; a file
cut by a network error is resumed with an HTTP Range request by `huggingface_hub`.

`local_snapshot` finds a finished download offline; the loader uses it, so the catalog
name works everywhere a base is asked for. A partial download is not taken for a model.

The cache honours `HF_HUB_CACHE` / `HF_HOME` and the Hub `HF_ENDPOINT`, read when called
(tests point them at a temporary folder and a loopback server). The token is passed in:
`connections/secrets.py` finds it (`HF_TOKEN` or the keyring). See docs/models.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CognitiveTwinError, InputError, os_error

# What a base needs, and nothing else (no PyTorch .bin duplicates, no original/ checkpoints).
ALLOW_PATTERNS = [
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.*",
    "vocab.json",
    "merges.txt",
]
IGNORE_PATTERNS = ["original/*"]
DISK_MARGIN = 512 * 1024**2  # keep this much free after the download
# Repos whose licence must be accepted on the Hub before their files can be read.
GATED_REPO_PREFIXES = ("meta-llama/", "google/gemma")

ByteProgress = Callable[[int, int], None]  # (bytes done, bytes in all)


class HubDownloadError(CognitiveTwinError):
    """The Hub could not give the files: gated, unknown, unreachable, or no room on disk."""


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    commit: str
    files: int
    bytes_total: int  # every selected file
    bytes_to_fetch: int  # what is not in the cache yet


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder, read from the environment now (not at import time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def local_snapshot(repo_id: str) -> Path | None:
    """The complete downloaded folder of `repo_id`, or None; never uses the network."""
    if not (hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))).is_dir():
        return None  # cheap answer (no huggingface_hub import) for the app's start-up labels
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            cache_dir=str(hub_cache_dir()),
            allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS,
            local_files_only=True,
        )
    except Exception:  # LocalEntryNotFoundError, IncompleteSnapshotError: not (fully) here
        return None
    folder = Path(folder)
    return folder if (folder / "config.json").is_file() else None


def _writing_failure(exc: BaseException) -> OSError | None:
    """An OSError of writing (permission, read-only, full disk) in `exc` or what caused it."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (
            errno.EACCES,
            errno.EPERM,
            errno.EROFS,
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _explain(exc: Exception, repo_id: str, token: str | None) -> HubDownloadError:
    """One sentence for a Hub failure; never the token."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    written = _writing_failure(exc)
    if written is not None:  # the cache's folder, not the network: say so
        where = written.filename or hub_cache_dir()
        return HubDownloadError(str(os_error(written, f"saving {repo_id} in", where)))
    page = f"https://huggingface.co/{repo_id}"
    gated = repo_id.startswith(GATED_REPO_PREFIXES)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError) or (gated and status in (401, 403)):
        how = "" if token else ", then save a Hugging Face token (HF_TOKEN or the Connections tab)"
        return HubDownloadError(
            f"{repo_id} is a gated model: sign in on {page} and accept its licence there first{how}, "
            "and download again."
        )
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return HubDownloadError(
            f"The Hugging Face Hub has no model {repo_id} that this token can read: check the name, "
            "or save a token that has access (HF_TOKEN or the Connections tab)."
        )
    if status == 401:
        return HubDownloadError("The Hugging Face Hub refused the token: save a valid one and download again.")
    if isinstance(exc, HfHubHTTPError):
        return HubDownloadError(f"The Hugging Face Hub answered {status or 'an error'} for {repo_id}; try again later.")
    if isinstance(exc, LocalEntryNotFoundError | OSError) or "connect" in type(exc).__name__.lower():
        return HubDownloadError(
            f"Could not reach the Hugging Face Hub to download {repo_id} ({type(exc).__name__}): "
            "check the internet connection and try again; finished files are kept."
        )
    return HubDownloadError(f"Downloading {repo_id} failed ({type(exc).__name__}: {exc}).")


def plan_download(repo_id: str, *, token: str | None = None) -> DownloadPlan:
    """What `download` would fetch (sizes from the Hub's file metadata), fetching nothing."""
    from huggingface_hub import snapshot_download

    try:
        infos = snapshot_download(
            repo_id,
            cache_dir=str(hub_cache_dir()),
            endpoint=hub_endpoint(),
            token=token,
            allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS,
            dry_run=True,
        )
    except Exception as exc:
        cause = exc.__cause__ if type(exc).__name__ == "DryRunError" and exc.__cause__ else exc
        raise _explain(cause, repo_id, token) from None
    if not infos:
        raise HubDownloadError(f"{repo_id} on the Hub has no safetensors weights or config to download.")
    return DownloadPlan(
        repo_id,
        infos[0].commit_hash,
        len(infos),
        sum(i.file_size or 0 for i in infos),
        sum(i.file_size or 0 for i in infos if i.will_download),
    )


def check_disk_space(plan: DownloadPlan, folder: Path | None = None) -> None:
    """Refuse before downloading when the cache's disk cannot hold the files."""
    folder = folder or hub_cache_dir()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if plan.bytes_to_fetch + DISK_MARGIN > free:
        raise InputError(
            f"Downloading {plan.repo_id} needs {plan.bytes_to_fetch / 1024**3:.1f} GiB but the disk holding "
            f"{folder} has {free / 1024**3:.1f} GiB free: free some space, or set HF_HOME to a larger disk."
        )


def _progress_bar_class(progress: ByteProgress, cancellation: Cancellation | None):
    """A tqdm class that reports the byte bar of `snapshot_download` to `progress`.

    huggingface_hub passes `name="huggingface_hub.snapshot_download"` to the bar that sums
    the bytes written by every file; the other bars (files, network transfer) are ignored.
    """
    import threading

    from huggingface_hub.utils import tqdm as hf_tqdm

    lock = threading.Lock()

    class _Bar(hf_tqdm):
        def __init__(self, *args, **kwargs):
            self._reports = kwargs.get("name") == "huggingface_hub.snapshot_download"
            self._done = int(kwargs.get("initial") or 0)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            if cancellation is not None:
                cancellation.raise_if_cancelled("Download stopped; the files finished so far are kept for next time.")
            if self._reports and n:
                with lock:
                    self._done += int(n)
                    progress(self._done, int(self.total or 0))

    return _Bar


def download(
    repo_id: str,
    *,
    token: str | None = None,
    progress: ByteProgress | None = None,
    cancellation: Cancellation | None = None,
    max_workers: int = 4,
) -> Path:
    """Download the files a base needs into the Hugging Face cache; return the folder.

    Checks the Hub's file sizes against the free disk first. Raises `HubDownloadError` with
    one sentence (gated licence, unknown repo, no connection) or `InputError` (no room).
    """
    from huggingface_hub import snapshot_download

    plan = plan_download(repo_id, token=token)
    check_disk_space(plan)
    if plan.bytes_to_fetch == 0 and progress:  # all cached: snapshot_download reports nothing
        progress(plan.bytes_total, plan.bytes_total)
    options = {}
    if progress or cancellation is not None:
        options["tqdm_class"] = _progress_bar_class(progress or (lambda done, total: None), cancellation)
    try:
        folder = snapshot_download(
            repo_id,
            revision=plan.commit,  # exactly what was sized above
            cache_dir=str(hub_cache_dir()),
            endpoint=hub_endpoint(),
            token=token,
            allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS,
            max_workers=max_workers,
            **options,
        )
    except CognitiveTwinError:
        raise
    except Exception as exc:
        raise _explain(exc, repo_id, token) from None
    _remember_ref(repo_id, plan.commit)
    return Path(folder)


def _remember_ref(repo_id: str, commit: str) -> None:
    """Point the cache's `main` ref at the commit downloaded, so an offline look-up by name
    (which reads refs/main) finds it; downloading by commit alone writes no ref."""
    from huggingface_hub.file_download import repo_folder_name

    from cognitivetwin_core.atomic_files import write_text_atomically

    refs = hub_cache_dir() / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    write_text_atomically(refs / "main", commit)
