"""Hostile settings and places for training runs (a family of test_hostile_inputs.py): a
torchrun environment that is broken or only half there, an empty lineage record, a full
disk under an export, a download folder the user cannot write. Each is one sentence, in
seconds, never a silent wait or a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_output_dirs import adapter_dir, completed_job  # noqa: F401 - fixtures used below

from cognitivetwin_core.errors import CognitiveTwinError, InputError
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = WORK_TIMEOUT_S


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", *args],
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def one_sentence(result: subprocess.CompletedProcess, *names: str) -> str:
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, (result.stdout, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


# ----- torchrun's environment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "names"),
    [
        ({"WORLD_SIZE": "abc"}, ["WORLD_SIZE", "'abc'", "whole number"]),
        ({"WORLD_SIZE": "2", "RANK": "x"}, ["RANK", "'x'"]),
        ({"WORLD_SIZE": "2", "RANK": "5"}, ["RANK is 5", "0 to 1"]),
    ],
)
def test_a_torchrun_environment_that_is_not_numbers_is_a_sentence(environment, names):
    from cognitivetwin_core.phase2.distributed import from_environment

    with pytest.raises(InputError) as refused:
        from_environment(environment)
    for name in names:
        assert name in str(refused.value)


@pytest.mark.slow
def test_phase2_train_with_world_size_but_no_master_address_names_it(tmp_path, tiny_model_dir):
    environment = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "", "MASTER_PORT": ""}
    args = ["phase2", "train", "--base-model", str(tiny_model_dir), "--data-file", "demo", "--device", "cpu"]
    result = cli(*args, "--output-dir", str(tmp_path / "out"), "--quiet", env=environment, cwd=tmp_path)
    one_sentence(result, "WORLD_SIZE=2", "MASTER_ADDR and MASTER_PORT", "torchrun")
    result = cli(*args, "--output-dir", str(tmp_path / "out"), "--quiet", env={"WORLD_SIZE": "abc"}, cwd=tmp_path)
    one_sentence(result, "WORLD_SIZE", "'abc'")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_group_whose_other_process_never_comes_is_a_sentence_after_a_bounded_wait(monkeypatch):
    from cognitivetwin_core.phase2 import distributed

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv(distributed.WAIT_ENV, "2")
    with pytest.raises(CognitiveTwinError) as refused:
        distributed.start(distributed.DistributedContext(rank=0, world_size=2, local_rank=0), "cpu")
    message = str(refused.value)
    assert "waited 2 s" in message and "other 1 process" in message and "torchrun" in message
    import torch.distributed as dist

    assert not dist.is_initialized()


# ----- Phase 1 adapters ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n", b"[1, 2]", b"{not json", b"\xff\xfe"])
def test_evaluate_with_a_damaged_lineage_record_is_a_sentence(tmp_path, content):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}')
    (adapter / "lineage.json").write_bytes(content)
    result = cli("phase1", "--evaluate", str(adapter), "--workspace", str(tmp_path / "ws"), cwd=tmp_path)
    one_sentence(result, str(adapter / "lineage.json"), "damaged")


def _deny_writing_in(folder: Path, monkeypatch) -> None:
    """What a folder the user may not write in does to mkdir (root may write anywhere)."""
    import errno

    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)


def test_download_into_a_folder_the_user_cannot_write_is_refused_before_downloading(
    completed_job,  # noqa: F811 - the fixture imported above
    tmp_path,
    monkeypatch,
    capsys,
):
    from cognitivetwin_core.cli import main

    ws, job_id, server = completed_job
    locked = tmp_path / "locked"
    locked.mkdir()
    requests_before = len(server.requests)
    _deny_writing_in(locked, monkeypatch)
    code = main(["phase1", "--workspace", ws, "--download", job_id, "--output-dir", str(locked / "adapter")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(locked) in err and "permission denied" in err
    assert len(server.requests) == requests_before and list(locked.iterdir()) == []


def test_unpacking_an_adapter_where_the_user_cannot_write_is_a_sentence(adapter_dir, tmp_path, monkeypatch):  # noqa: F811
    import tarfile

    from cognitivetwin_core.phase1.adapter_archive import extract_adapter_archive

    archive = tmp_path / "adapter.tar"
    with tarfile.open(archive, "w") as tar:
        for item in sorted(Path(adapter_dir).iterdir()):
            tar.add(item, arcname=item.name)
    locked = tmp_path / "locked"
    locked.mkdir()
    _deny_writing_in(locked, monkeypatch)
    with pytest.raises(CognitiveTwinError, match="permission denied") as refused:
        extract_adapter_archive(archive, locked / "adapter")
    assert str(locked) in str(refused.value) and list(locked.iterdir()) == []
