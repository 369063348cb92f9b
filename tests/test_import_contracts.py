"""The layers of docs/ARCHITECTURE.md hold, checked by import-linter's contracts in pyproject.toml.

The second test proves the contracts bite: an upward import added to a copy of the core
(data importing phase2), a Qt import in the core, and a tab importing another tab's module
are each reported as broken.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if extra_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(extra_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_import_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "9 kept" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward_import", "contract"),
    [
        ("cognitivetwin_core/data/workspace.py", "import cognitivetwin_core.phase2.trainer", "layered"),
        ("cognitivetwin_core/phase2/heads.py", "import cognitivetwin_core.phase1.local_lora", "layered"),
        ("cognitivetwin_core/annotation/patterns.py", "import PySide6.QtCore", "never imports Qt"),
        ("app/tabs/start_tab.py", "import app.tabs.phase2_controller", "each other: the start tab BROKEN"),
        ("app/tabs/phase1_controller.py", "import app.tabs.playground_tab", "each other: the phase1 tab BROKEN"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, upward_import, contract):
    shutil.copytree(ROOT / "cognitivetwin_core", tmp_path / "cognitivetwin_core")
    shutil.copytree(ROOT / "app", tmp_path / "app")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{upward_import}  # added by the test\n")
    result = _lint_imports(tmp_path, extra_path=tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout
    assert module.replace("/", ".").removesuffix(".py") in result.stdout


def test_every_tab_module_is_in_the_tab_contracts():
    """A new module of app/tabs belongs to one tab's contract (and is forbidden to the others),
    or is one that every tab shares: otherwise tabs could import it from each other unnoticed."""
    import tomllib

    shared = {"app.tabs.data_jobs"}  # what every tab may use (see the comment in pyproject.toml)
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    tabs = {c["name"]: c for c in contracts if c["name"].startswith("Tabs never import each other")}
    modules = {f"app.tabs.{p.stem}" for p in (ROOT / "app" / "tabs").glob("*.py") if p.stem != "__init__"}
    owners = {module: [name for name, c in tabs.items() if module in c["source_modules"]] for module in modules}
    unowned = sorted(m for m, names in owners.items() if not names and m not in shared)
    assert not unowned, f"add these to their tab's contract in pyproject.toml: {unowned}"
    assert all(len(names) <= 1 for names in owners.values()), owners
    for name, contract in tabs.items():
        others = {m for m, names in owners.items() if names and names != [name]}
        missing = sorted(others - set(contract["forbidden_modules"]))
        assert not missing, f"{name}: forbid the other tabs' modules {missing}"
