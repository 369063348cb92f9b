"""The app's model widgets: the Download row against a loopback Hub, the memory verdict
shown before Start, the device picker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo
from PySide6.QtCore import Qt

from cognitivetwin_core.models.memory import GIB
from tests.waits import WORK_TIMEOUT_MS

REPO = "meta-llama/Llama-3.2-1B-Instruct"


@pytest.fixture()
def hub_env(tmp_path, monkeypatch, isolated_user_dirs):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path / "hf-cache"


@pytest.fixture()
def repo(tiny_model_dir):
    return {p.name: p.read_bytes() for p in Path(tiny_model_dir).iterdir() if p.is_file()}


def test_download_row_fetches_a_missing_base_with_progress(qtbot, hub_env, repo, monkeypatch):
    from app.widgets.base_download import BaseDownloadRow
    from cognitivetwin_core.models.catalog import get_spec

    row = BaseDownloadRow()
    qtbot.addWidget(row)
    row.show()
    row.set_base("smollm2-135m")
    assert not row.isVisible()  # embedded: nothing to download
    with FakeHub({REPO: FakeRepo(repo)}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        row.set_base("llama-3.2-1b")
        assert row.isVisible() and "not on this computer" in row.label.text()
        assert server.requests == []  # nothing is fetched before the button is pressed
        progress = []
        row.job.progress.connect(progress.append)
        with qtbot.waitSignal(row.downloaded, timeout=WORK_TIMEOUT_MS) as done:
            qtbot.mouseClick(row.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not row.job.is_running(), timeout=WORK_TIMEOUT_MS)
    assert done.args == ["llama-3.2-1b"]
    assert progress and progress[-1][0] == progress[-1][1] > 0
    assert row.message.kind == "ok" and "ready to train" in row.message.text()
    assert get_spec("llama-3.2-1b").local_available
    row.set_base("llama-3.2-1b")
    assert not row.isVisible()


def test_download_row_says_a_gated_licence_must_be_accepted(qtbot, hub_env, repo, monkeypatch):
    from app.widgets.base_download import BaseDownloadRow

    row = BaseDownloadRow()
    qtbot.addWidget(row)
    row.show()
    with FakeHub({REPO: FakeRepo(repo, gated=True, accepted_tokens={"hf_ok"})}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        row.set_base("llama-3.2-1b")
        with qtbot.waitSignal(row.finished, timeout=WORK_TIMEOUT_MS):
            qtbot.mouseClick(row.download_button, Qt.MouseButton.LeftButton)
    assert row.message.kind == "error" and "accept its licence" in row.message.text()
    assert row.download_button.isEnabled()  # may be pressed again once the licence is accepted


def test_memory_verdict_fits_and_refuses(qtbot, tiny_model_dir, tmp_path):
    from app.widgets.memory_verdict import MemoryVerdictLabel
    from cognitivetwin_core.phase1.lora_device_plan import local_memory_verdict
    from cognitivetwin_core.phase2.memory_check import encode_memory_verdict

    label = MemoryVerdictLabel()
    qtbot.addWidget(label)
    with qtbot.waitSignal(label.checked, timeout=WORK_TIMEOUT_MS):
        label.check(local_memory_verdict, tiny_model_dir, device="cpu")
    assert label.fits and label.kind == "ok" and "this fits" in label.text()

    # While a new check runs, the last base's verdict is not this one's: no verdict, no stale "fits".
    with qtbot.waitSignal(label.checked, timeout=WORK_TIMEOUT_MS):
        label.check(local_memory_verdict, tiny_model_dir, device="cpu")
        assert label.fits is None and label.is_checking() and label.text().startswith("Checking")
    assert label.fits and not label.is_checking()
    label.clear_message()
    assert label.fits is None and not label.text()

    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text(
        json.dumps({"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256})
    )
    with qtbot.waitSignal(label.checked, timeout=WORK_TIMEOUT_MS):
        label.check(encode_memory_verdict, big, device="cpu", free_ram=1 * GIB)
    assert label.fits is False and label.kind == "error"
    assert "needs about" in label.text() and "smaller base" in label.text()

    with qtbot.waitSignal(label.checked, timeout=WORK_TIMEOUT_MS):
        label.check(local_memory_verdict, tmp_path / "missing", device="cpu")
    assert label.fits is None and label.kind == "error" and "not a Hugging Face model folder" in label.text()
    label.shutdown()


def test_device_picker_values_are_the_clis(qtbot):
    from app.widgets.device_picker import DevicePicker
    from cognitivetwin_core.models.devices import DEVICE_CHOICES

    picker = DevicePicker()
    qtbot.addWidget(picker)
    values = [picker.itemData(i) for i in range(picker.count())]
    assert set(values) == set(DEVICE_CHOICES)
    picker.set_device("cpu")
    assert picker.device() == "cpu"
