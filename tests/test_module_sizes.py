"""Modules that do one thing: no module of the core or the app over 600 lines, no class over 400.

A module past the limit is split at its seams (docs/ARCHITECTURE.md shows how the big ones
were: a class put together from mixins, one module a concept).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400


def _sources() -> list[Path]:
    return sorted(p for package in ("cognitivetwin_core", "app") for p in (ROOT / package).rglob("*.py"))


def test_no_module_over_600_lines_and_no_class_over_400():
    sources = _sources()
    assert len(sources) > 100, "the walk found too few modules"
    too_long = []
    for path in sources:
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text, filename=name)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_long.append(f"{name}: class {node.name} {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, "split these at their seams: " + "; ".join(too_long)
