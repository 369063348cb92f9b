"""The core never imports Qt, and cheap entry points never import torch."""

import pkgutil
import subprocess
import sys

import cognitivetwin_core

QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "qasync")
HEAVY_MODULES = ("torch", "transformers", "peft")


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


def _core_submodules() -> list[str]:
    # __main__ runs the CLI on import; it is only `python -m cognitivetwin_core`.
    return sorted(
        info.name
        for info in pkgutil.walk_packages(cognitivetwin_core.__path__, prefix="cognitivetwin_core.")
        if not info.name.endswith(".__main__")
    )


def test_core_and_every_submodule_load_no_qt():
    modules = _core_submodules()
    assert "cognitivetwin_core.cli" in modules and len(modules) > 5
    code = "import importlib\n" + "\n".join(f"importlib.import_module({m!r})" for m in modules)
    loaded = _loaded_after(code)
    assert "cognitivetwin_core" in loaded, "the probe did not run to the end"
    assert not loaded & set(QT_MODULES), f"Qt loaded by the core: {loaded & set(QT_MODULES)}"


def test_importing_core_loads_no_torch():
    loaded = _loaded_after("import cognitivetwin_core")
    assert not loaded & set(HEAVY_MODULES + QT_MODULES)


def test_cli_help_loads_no_torch_nor_qt():
    code = (
        "import contextlib, io\nfrom cognitivetwin_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY_MODULES + QT_MODULES), loaded & set(HEAVY_MODULES + QT_MODULES)
