"""The package's import graph, read from its source (every import statement, at module level or inside
a function, type-checking ones included): no cycle between any two modules, and the methods import
nothing of the planning layer."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "introspect"
PLANNING = {"introspect.config", "introspect.plan", "introspect.cluster.resources"}  # packages and their modules


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports, and the sub-packages whose ``__init__`` that runs."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    edges = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        parts = target.split(".")
        # importing a.b.c runs the __init__ of a.b too (the root package's lazy exports excepted; a
        # module's own packages are initialised before it, so they are no dependency of it)
        edges |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
    return {e for e in edges if e in modules and e != name and e not in own}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imported(f, modules) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_and_type_checking_imports(tmp_path):
    graph = import_graph()
    assert "introspect.methods.le" in graph["introspect.methods"]  # lazy, inside __getattr__
    assert "introspect.methods" in graph["introspect.config.registry_facts"]  # inside _from_registries
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_the_methods_import_nothing_of_the_planning_layer():
    graph = import_graph()
    methods = [m for m in graph if m == "introspect.methods" or m.startswith("introspect.methods.")]
    assert len(methods) > 10
    for module in methods:
        planning = {m for m in graph[module] if any(m == p or m.startswith(p + ".") for p in PLANNING)}
        assert not planning, (module, planning)
    assert graph["introspect.methods.hyperparameters"] == set()  # a leaf
