"""The house rules a reader relies on to find their way (issue 27), checked on the source text (AST only,
nothing is imported):

- ``src/introspect/`` has at most :data:`MAX_TOP_LEVEL` top-level modules: the rest lives in packages whose
  names say what they hold;
- no module of ``src``, ``bench`` or ``tools`` is longer than :data:`MAX_LINES` lines (the tests are not
  held to it: a test file grows by cases, and a long one is still read one test at a time);
- no module of ``src``, ``bench`` or ``tools`` imports another module's private name (``_name``): what a
  module shares is public.

No import cycle: ``tests/test_imports.py``.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "introspect"
MAX_TOP_LEVEL = 8
MAX_LINES = 400
CODE_DIRS = ("src", "bench", "tools")


def python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) for every import of the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path) if path.is_relative_to(PACKAGE) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


def test_at_most_eight_top_level_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} top-level modules in src/introspect: {top}"


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in python_files(*CODE_DIRS)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_private_name_is_imported_from_another_module():
    imports = []
    for path in python_files(*CODE_DIRS):
        for target, names, line in imported_modules(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target.startswith("introspect"):
                imports.append(f"{path.relative_to(ROOT)}:{line}: {target} {private}")
    assert not imports, "private names imported across modules:\n" + "\n".join(imports)


def test_the_import_reader_resolves_relative_imports_and_names(tmp_path):
    path = PACKAGE / "config" / "model.py"
    found = {target: names for target, names, _ in imported_modules(path)}
    assert "introspect.config.overlays" in found and "introspect.errors" in found
    other = tmp_path / "tool.py"
    other.write_text("import os\ndef f():\n    from introspect.train.loop import _apply, train\n")
    expected = [("os", []), ("introspect.train.loop", ["_apply", "train"])]
    assert [(t, n) for t, n, _ in imported_modules(other)] == expected
