"""One door for files: no module of the package but ``introspect.io`` opens, reads, writes, creates or deletes a
file itself (``open``, ``os.open``, ``Path.read_*``/``write_*``/``open``/``mkdir``/``unlink``, ``torch.load``,
``json.load``, ``pd.read_csv``, ``savefig`` to a path...). A results directory may be shared and tampered with;
only the door walks paths without following links, refuses FIFOs and devices and bounds what it reads.

The few exceptions read no results file and say why below; a new call site fails this test."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "introspect"
DOOR = "io.py"
# Method names that open or change a file when called on a path or on os/shutil/tempfile.
FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "mkdir", "unlink", "rmdir",
                "rename", "touch", "symlink_to", "rmtree", "fdopen", "mkstemp", "NamedTemporaryFile",
                "TemporaryDirectory", "loadtxt", "copyfile", "copytree", "chmod", "truncate"}
# Loaders and savers of these modules open their path argument.
MODULE_LOADERS = {"load", "save"}
LOADER_MODULES = {"torch", "json", "np", "numpy", "pickle", "yaml"}
# Writers and readers of tables and figures: a file unless their first argument is an in-memory buffer.
BUFFERED = {"to_csv", "read_csv", "savefig", "to_json", "read_json", "to_parquet", "to_html", "to_latex"}
IN_MEMORY = ("io.StringIO(", "io.BytesIO(", "buffer")
# (module, callee as written) -> why it is not a results or CLI file
ALLOWED = {
    ("config/registry_facts.py", "path.read_bytes"): "the package's own source files, for the catalog's digest",
    ("config/registry_facts.py", "path.read_text"): "the catalog cache beside the package (package data)",
    ("analysis/reported.py", "REPORTED_SCHEMA.read_text"): "package data (the reported-results schema)",
    ("cluster/worker.py", "Path(f'/proc/{pid}/stat').read_text"): "the kernel's process table",
    ("cluster/head.py", "Path(f'/proc/{pid}/stat').read_text"): "the kernel's process table",
    ("kernels.py", "Path(cpuinfo).read_text"): "the kernel's /proc/cpuinfo",
    ("cluster/worker.py", "path.unlink"): "the worker's own socket in its private temporary folder",
    ("cluster/worker.py", "shutil.rmtree"): "the worker's private temporary folder",
    ("data/sources/mnist5k.py", "gzip.open"): "a data file shipped inside a package",
    ("data/sources/digits.py", "gzip.open"): "a data file shipped inside a package",
}


def _callee(node: ast.Call) -> str:
    return ast.unparse(node.func).replace('"', "'")


def file_calls() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == DOOR:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            if _opens_a_file(node):
                found.append((module, _callee(node), node.lineno))
    return found


def _opens_a_file(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "open"
    if not isinstance(func, ast.Attribute):
        return False
    name, receiver = func.attr, ast.unparse(func.value)
    if name in ("replace", "copy", "remove"):  # str.replace, dict.copy, list.remove; os/shutil's are files
        return receiver in ("os", "shutil")
    if name in MODULE_LOADERS:
        return receiver in LOADER_MODULES
    if name in BUFFERED:
        first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in (
            "path_or_buf", "fname", "filepath_or_buffer")), None)
        return first is not None and not ast.unparse(first).startswith(IN_MEMORY)
    return name in FILE_METHODS


def test_no_module_but_the_door_opens_a_file():
    offenders = [f"{module}:{line}: {callee}(...)" for module, callee, line in file_calls()
                 if (module, callee) not in ALLOWED]
    assert not offenders, "open these through introspect.io (the one door):\n" + "\n".join(offenders)


def test_the_scan_sees_each_kind_of_call():
    """The scanner itself: each way of opening a file is found (a scan that finds nothing proves nothing)."""
    opening = ["open(p)", "os.open(p, 0)", "Path(p).read_text()", "q.write_bytes(b'')", "torch.load(p)",
               "json.load(f)", "pd.read_csv(p)", "fig.savefig(p)", "q.mkdir()", "os.replace(a, b)", "gzip.open(p)",
               "frame.to_csv(path, index=False)"]
    harmless = ["s.replace('a', 'b')", "d.copy()", "frame.to_csv(index=False)", "pd.read_csv(io.StringIO(t))",
                "fig.savefig(buffer, format='png')", "checkpoint.save(p, s)", "json.loads(t)", "source.load(r)"]
    verdicts = {code: _opens_a_file(ast.parse(code).body[0].value) for code in opening + harmless}
    assert verdicts == {**dict.fromkeys(opening, True), **dict.fromkeys(harmless, False)}


def test_every_allowance_is_still_needed():
    present = {(module, callee) for module, callee, _ in file_calls()}
    stale = [key for key in ALLOWED if key not in present]
    assert not stale, f"remove these allowances, their call is gone: {stale}"
