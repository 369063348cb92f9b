"""A model cache the user may not write in (a family of test_hostile_inputs.py): `model
download` says it is the folder's permission, not the internet connection. Against the
loopback Hub (tests/hub_server.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hub_server import FakeHub, FakeRepo

from cognitivetwin_core.cli import main

REPO = "meta-llama/Llama-3.2-1B-Instruct"  # the catalog's llama-3.2-1b


def test_download_into_a_cache_the_user_cannot_write_names_the_permission(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # what a folder without write permission does (root writes anywhere)
        if Path(path).is_relative_to(cache):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    files = {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir() if p.is_file()}
    with FakeHub({REPO: FakeRepo(files)}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert main(["model", "download", "llama-3.2-1b"]) != 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "permission denied" in lines[0] and str(cache) in lines[0]
    assert "internet" not in lines[0] and "reach" not in lines[0]
