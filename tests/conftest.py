"""Shared fixtures. Qt is set headless here, before any QApplication exists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- Parallel workers (pytest-xdist; scripts/run-tests.sh, docs/testing.md) ---------------------
# Workers share the cores: each one's torch (and any child process it starts) gets its share of
# intra-op threads instead of one thread per core each. Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

# Files whose tests share state outside their process, found by a word in their source: the one
# OS keyring of the run, and the Phase 2 demo run (a session fixture, built once per worker that
# needs it: these files on one worker build it once in all).
_SHARED_STATE_WORDS = {"os-keyring": "keyring", "phase2-demo-run": "phase2_demo_run"}
# Fixtures that load the built-in base's weights or train on it: a test using one is slow,
# marked here so that `make test-fast` (-m "not slow") leaves it out without each file saying so.
# (`demo_twin`: test_chat_and_evaluation.py's LoRA run on the built-in base.)
_SLOW_FIXTURES = {"embedded_model", "phase2_demo_run", "demo_twin"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def _shared_state_groups(test_dir: Path) -> dict[str, str]:
    """{test file path relative to the repository: its group} for the files sharing state. A file
    in two groups would join them: then all those files are one group."""
    groups: dict[str, set[str]] = {}
    for path in sorted(test_dir.rglob("test_*.py")):
        source = path.read_text(encoding="utf-8", errors="replace")
        names = {group for group, word in _SHARED_STATE_WORDS.items() if word in source}
        if names:
            groups[path.relative_to(test_dir.parent).as_posix()] = names
    joined = any(len(names) > 1 for names in groups.values())
    return {path: "shared-state" if joined else min(names) for path, names in groups.items()}


@pytest.hookimpl(optionalhook=True)  # known only while pytest-xdist is loaded
def pytest_xdist_make_scheduler(config, log):
    """Send whole files to a worker (module and session fixtures built once per file, not per
    test), and the files of one shared-state group to the same worker, in turn, so they never
    run side by side. (`xdist_group` markers would say the same, but pytest 9 ignores the node
    ids pytest-xdist 3.8 rewrites for them.)"""
    from xdist.scheduler import LoadScopeScheduling

    groups = _shared_state_groups(config.rootpath / "tests")

    class SharedStateScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return groups.get(path, path)

    return SharedStateScheduling(config, log)


def _is_qt_test(item) -> bool:
    return item.module.__name__.startswith("test_app_") or "qtbot" in item.fixturenames


@pytest.fixture(scope="session", autouse=True)
def long_lived_objects_frozen(request):
    """In a run with Qt tests: import what such a run loads anyway (torch, transformers, peft,
    Qt, the app's tabs), collect once, and move every object alive now out of the cyclic
    collector's reach (`gc.freeze`); no test has made anything yet, so nothing frozen is
    garbage to come. The full collections around each Qt test (studio_garbage_collection) then
    walk only what tests made: about 0.003 s of CPU each instead of 0.19 s."""
    import gc

    if not any(_is_qt_test(item) for item in request.session.items):
        yield
        return

    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import LlamaForCausalLM  # noqa: F401

    import app.main_window  # noqa: F401
    from app.tabs import data_tab, phase1_tab, phase2_tab, playground_tab  # noqa: F401

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """Screenshots and other artefacts a person looks at after a run."""
    path = Path(os.environ.get("COGNITIVETWIN_TEST_OUTPUT") or REPO_ROOT / "test-output")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture()
def isolated_user_dirs(tmp_path, monkeypatch):
    """Per-test data, log and config dirs; the model cache stays shared (conversion is slow)."""
    for name in ("DATA", "LOG", "CONFIG"):
        folder = tmp_path / f"user-{name.lower()}"
        folder.mkdir()
        monkeypatch.setenv(f"COGNITIVETWIN_{name}_DIR", str(folder))
    return tmp_path


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The embedded SmolLM2 model as a safetensors folder, converted once per cache."""
    from cognitivetwin_core.models.embedded import ensure_converted

    return ensure_converted()


@pytest.fixture(scope="session")
def embedded_model(embedded_model_dir):
    """(model, tokenizer) of the embedded base, loaded once per test session. Do not train it."""
    from cognitivetwin_core.models.loader import load_base_model

    return load_base_model("smollm2-135m")


@pytest.fixture(scope="session")
def embedded_tokenizer(embedded_model_dir):
    from cognitivetwin_core.models.loader import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_tokenizer) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with the embedded tokenizer, saved as a
    local HF model folder: a fast stand-in for any base model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(embedded_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=embedded_tokenizer.bos_token_id,
        eos_token_id=embedded_tokenizer.eos_token_id,
        pad_token_id=embedded_tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    embedded_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def qasync_loop(qapp):
    """A qasync loop marked as already running inside the test's Qt event loop (docs/qt.md
    §13): asyncio tasks and `asyncio.to_thread` results progress while qtbot waits."""
    import asyncio
    import time

    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    deadline = time.monotonic() + 5
    while any(not task.done() for task in pending) and time.monotonic() < deadline:
        qapp.processEvents()
    # Not loop.stop(): that calls QApplication.exit(), which leaves Qt's "quit now" flag set
    # and makes every later QEventLoop (qtbot.waitSignal) return at once.
    loop._QEventLoop__is_running = False
    try:
        qapp.aboutToQuit.disconnect(loop._after_run_forever)
    except (RuntimeError, TypeError, AttributeError):
        pass
    loop._after_run_forever()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="session")
def demo_conversations():
    """The bundled demo dataset, read once per session."""
    from cognitivetwin_core.data.importers import read_conversations

    conversations, _report = read_conversations("demo")
    return conversations


@pytest.fixture(scope="session")
def phase2_demo_run(tmp_path_factory, embedded_model_dir, demo_conversations) -> Path:
    """The output folder of a short Phase 2 run on the demo data with the embedded base
    (config.json, model.safetensors, metrics.json, run.json). Its pooled features go to the
    user cache, so later runs (and the playground's neighbour index) reuse them."""
    import torch

    from cognitivetwin_core.data.importers.demo import demo_dataset_path
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    threads = torch.get_num_threads()
    output = tmp_path_factory.mktemp("phase2-demo") / "run"
    config = Phase2Config(
        base_model="smollm2-135m",
        output_dir=str(output),
        epochs=4,
        lr=1e-3,
        gradient_accumulation=1,
        device="cpu",
        seed=7,
    )
    try:
        # From the file, so run.json names it and the playground finds the run's messages.
        events = list(Phase2Trainer(config, data_file=demo_dataset_path()).run())
    finally:
        torch.set_num_threads(threads)
    assert events[-1].outcome == "completed", events[-1].message
    return output


def _delete_earlier_widgets():
    """Run the deferred deletes pytest-qt posted (it `deleteLater()`s every widget a test
    registered with qtbot.addWidget). Left pending, they run inside the next test's first
    wait: freeing an old MainWindow releases thousands of Python objects, and CPython's
    generation-0 count is allocations minus deallocations, so it drops to ~0 and hides the
    garbage that test has just made from any threshold check (gui_thread_gc's included)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()


@pytest.fixture()
def qt_garbage_on_gui_thread():
    """Delete earlier tests' widgets and collect cycles holding Qt objects here, on the GUI
    thread: otherwise the cyclic GC may run inside a worker thread and delete them there.
    The app itself does this with app.qt.gui_thread_gc, which tests do not install."""
    import gc

    _delete_earlier_widgets()
    gc.collect()
    yield
    gc.collect()


@pytest.fixture()
def window(qtbot, qasync_loop, isolated_user_dirs):
    """The studio's main window on a fresh default workspace, as `main()` builds it."""
    from app.main import create_application
    from app.main_window import MainWindow

    create_application()  # garbage collection as the app does it: studio_garbage_collection
    win = MainWindow()
    qtbot.addWidget(win)
    win.open_initial_workspace()
    win.resize(1280, 820)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.data_tab.shutdown()


@pytest.fixture()
def torch_one_thread():
    """One intra-op torch thread: fastest for tiny tensors, bitwise reproducible, and immune
    to a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_qt_leftovers_possible = False  # a test with Qt objects ran since the last full collection


@pytest.fixture(autouse=True)
def studio_garbage_collection(request):
    """In the studio's tests (test_app_*), garbage is collected as the app collects it: only on
    the GUI thread (app.qt.gui_thread_gc), never inside a worker thread that would then delete
    widgets and timers there; and earlier tests' widgets are gone before each test starts."""
    global _qt_leftovers_possible
    if not _is_qt_test(request.node):
        # A test without widgets that starts worker threads (a training run) must not be the one
        # whose thread collects an earlier Qt test's leftovers: free them here, on this thread.
        # Once is enough after a test with Qt: a full collection costs a noticeable fraction of
        # a second with torch, transformers and Qt loaded, too much to pay before every test.
        if _qt_leftovers_possible:
            import gc

            _delete_earlier_widgets()
            gc.collect()
            _qt_leftovers_possible = False
        yield
        _qt_leftovers_possible = _qt_leftovers_possible or "qapp" in request.fixturenames
        return
    _qt_leftovers_possible = True
    request.getfixturevalue("qapp")
    request.getfixturevalue("qt_garbage_on_gui_thread")
    from app.qt.gui_thread_gc import GuiThreadGarbageCollector

    collector = GuiThreadGarbageCollector()
    yield
    collector.stop()


# Every catalog architecture, as Hugging Face loads the real id (see models/random_base.py).
CATALOG_SHAPES = {
    "llama-3.2-1b": "llama",
    "llama-3.2-3b": "llama",
    "llama-3.1-8b": "llama",
    "qwen3-4b": "qwen3",
    "gemma-3-4b": "gemma3",  # Gemma3ForConditionalGeneration with a small vision tower
}
TINY_SHAPES = ("llama", "qwen3", "gemma3", "gemma3-text")


@pytest.fixture(scope="session")
def tiny_catalog_model(tmp_path_factory, embedded_model_dir):
    """A factory: `tiny_catalog_model(shape) -> folder` of a tiny random-weight base of that
    shape ("llama", "qwen3", "gemma3", "gemma3-text" or a catalog id), saved with
    save_pretrained plus a family-style tokenizer; built once per shape per session."""
    from cognitivetwin_core.models.random_base import build_random_base

    built: dict[str, Path] = {}

    def make(shape: str) -> Path:
        shape = CATALOG_SHAPES.get(shape, shape)
        if shape not in built:
            built[shape] = build_random_base(shape, tmp_path_factory.mktemp(f"tiny-{shape}"), size="tiny")
        return built[shape]

    return make


def tiny_phase2_config(model_dir, tmp_path, name="run", **overrides):
    """A small, seeded, single-thread Phase 2 config on a test base, its output in
    tmp_path/name and its feature cache shared by the tests beside it; overrides as keywords."""
    from cognitivetwin_core.phase2.config import Phase2Config

    settings = dict(
        base_model=str(model_dir),
        output_dir=str(tmp_path / name),
        epochs=1,
        batch_size=3,
        gradient_accumulation=1,
        device="cpu",
        cache_dir=str(tmp_path.parent / "tiny-feature-cache"),
        seed=3,
        num_threads=1,
    )
    settings.update(overrides)
    return Phase2Config(**settings)


def demo_chat_jsonl(folder: Path, count: int, name: str = "data.jsonl") -> Path:
    """The first `count` demo conversations as Phase 1 chat JSONL in `folder`/`name`."""
    import json

    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl

    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:count]
    path = folder / name
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory, tiny_model_dir) -> Path:
    """A LoRA adapter on the tiny random Llama (two steps): a fast twin for the GUI tests."""
    import json

    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    folder = tmp_path_factory.mktemp("tiny-adapter")
    data = folder / "data.jsonl"
    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:4]
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=1, max_seq_length=64, max_steps=2)
    return train_local_lora(data, tiny_model_dir, folder / "adapter", settings, max_batch_tokens=200).adapter_dir
