"""The public surface: curated names, docstrings, import rules, and a light `import otelite`."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import otelite
import otelite.store
import otelite.testing
from otelite import _env

SRC = Path(otelite.__file__).parent
DOCS = Path(__file__).parent.parent / "docs"

# Layers, lowest first; a module may import only from its own layer or below,
# and feature modules (each top-level name in "features") never import each other.
# An entry is a module or package below otelite; a module belongs to its longest entry
# (the store package's schema, writer and pruning are utilities the runtime writes
# through; its records and reader are the feature).
LAYERS = {
    "leaves": {"_version", "_exceptions", "_semconv", "_env", "_plural", "_units"},
    "utilities": {
        "_guard",
        "_content",
        "store._schema",
        "store._writer",
        "store._prune",
        "store._rollup",
        "_tokens",
        "_pricing",
        "_jsonl",
        "_delivery",
        "_template",
        "_messages",
    },
    # Online checks and scores run inside the call path (an LLM call's checks, a score's
    # span), so they belong to the runtime; the cycle test keeps the layer free of loops.
    "runtime": {
        "_state",
        "_settings",
        "_registries",
        "_providers",
        "_llm",
        "_context",
        "_export",
        "_exits",
        "_outbox",
        "_config",
        "_spans",
        "_scores",
        "_checks",
        "_metrics",
    },
    "features": {
        "_decorators",
        "_integrations",
        "store",
        "prompts",
        "datasets",
        "evals",
        "_drift",
    },
    "surfaces": {
        "__init__",
        "__main__",
        "cli",
        # Canary runs compose two features (evals' evaluators and client, prompts).
        "canary",
        "testing",
        "_pytest_plugin",
        "instrumentation",
        "tokens",
        "ui",
    },
}
# Metric dimensions and Prometheus pull (docs/grafana.md); the shipped Grafana artefacts.
LAYERS["utilities"].add("_dimensions")
LAYERS["runtime"].add("_prometheus")
LAYERS["features"].add("integrations")
ORDER = list(LAYERS)


def layer_of(module: str) -> int:
    """Index of the layer a module (dotted path below otelite) belongs to: that of the
    longest entry of LAYERS that is the module or a package holding it."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        for i, name in enumerate(ORDER):
            if prefix in LAYERS[name]:
                return i
    raise AssertionError(f"module {module!r} is in no layer; add it to LAYERS")


def otelite_imports(path: Path) -> set[str]:
    """The otelite modules a file imports, as dotted paths below otelite."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("otelite"):
            rest = node.module[len("otelite") :].lstrip(".")
            if rest:
                # `from otelite.store import _schema` imports the submodule store._schema.
                folder = SRC.joinpath(*rest.split("."))
                for alias in node.names:
                    is_module = (folder / f"{alias.name}.py").is_file() or (
                        folder / alias.name / "__init__.py"
                    ).is_file()
                    found.add(f"{rest}.{alias.name}" if is_module else rest)
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("otelite."):
                    found.add(alias.name[len("otelite.") :])
    return found


def source_modules() -> dict[str, Path]:
    """Every module of the package, by dotted path below otelite."""
    modules = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and every name in it exists."""
    assert otelite.__all__ == sorted(otelite.__all__)
    for name in otelite.__all__:
        assert hasattr(otelite, name), name


def test_every_public_name_has_a_docstring_with_example() -> None:
    """Every public function and class says what it does and shows an example."""
    for name in otelite.__all__:
        if name == "__version__":
            continue
        obj = getattr(otelite, name)
        doc = obj.__doc__ or ""
        assert doc.strip(), f"otelite.{name} has no docstring"
        if not issubclass(obj, Exception) if isinstance(obj, type) else True:
            assert "Example" in doc or ">>>" in doc, f"otelite.{name} docstring has no example"


def test_public_objects_show_public_module() -> None:
    """Users see otelite.configure, not otelite._config.configure."""
    assert otelite.configure.__module__ == "otelite"
    assert otelite.ConfigurationError.__module__ == "otelite"


def test_import_rules() -> None:
    """Imports point down the layers; features stay apart; nothing imports the top-level package."""
    for module, path in source_modules().items():
        for imported in otelite_imports(path):
            assert imported != "__init__", f"{module} imports the top-level package"
            assert layer_of(imported) <= layer_of(module), f"{module} imports {imported} (upward)"
            if ORDER[layer_of(module)] == "features" == ORDER[layer_of(imported)]:
                assert imported.split(".")[0] == module.split(".")[0], (
                    f"feature {module} imports feature {imported}"
                )
        if module == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert all(a.name != "otelite" for a in node.names), f"{module} imports otelite"
            if isinstance(node, ast.ImportFrom) and node.module == "otelite":
                assert all(a.name.startswith("_") for a in node.names), (
                    f"{module} imports public names from the top-level package"
                )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imports never executed)."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None) if isinstance(child, ast.If) else None
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                pending.extend(child.orelse)  # type: ignore[attr-defined]
                continue
            if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
                pending.extend(child.orelse)  # type: ignore[attr-defined]
                continue
            pending.append(child)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the otelite modules it imports when it runs: at import time or lazily inside
    a function (imports only type checkers see, under ``if TYPE_CHECKING:``, are left out)."""
    modules = source_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            named: list[str] = []
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("otelite")
            ):
                rest = node.module[len("otelite") :].lstrip(".")
                for alias in node.names:
                    # ``from otelite.pkg import name``: a submodule, or a name of pkg itself.
                    sub = f"{rest}.{alias.name}" if rest else alias.name
                    named.append(sub if sub in modules else rest)
            elif isinstance(node, ast.Import):
                named = [
                    a.name[len("otelite.") :] for a in node.names if a.name.startswith("otelite.")
                ]
            targets.update(t for t in named if t in modules and t != module)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or through others, even lazily."""
    assert cycles(import_graph()) == []


def test_cycle_finder_sees_a_lazy_cycle() -> None:
    """The cycle test is not vacuous: a loop closed by a function-level import is found."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
        "def f():\n    import c\n"
    )
    imported = {
        alias.name
        for node in _runtime_nodes(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported == {"b", "c"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_openai_adapter_mentions_openai_imports() -> None:
    """No module but the OpenAI adapter imports openai."""
    for module, path in source_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "openai" or n.startswith("openai.") for n in names), module


def test_only_export_module_imports_exporters() -> None:
    """OTLP exporter modules are imported by the _export package only."""
    for module, path in source_modules().items():
        text = path.read_text()
        if "opentelemetry.exporter" in text:
            assert module.split(".")[0] == "_export", module


def test_attribute_names_spelled_only_in_semconv() -> None:
    """No module other than _semconv writes a gen_ai.* name as a literal."""
    for path in source_modules().values():
        if path.name == "_semconv.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith(
                    ("gen_ai.", "otelite.metadata", "user.id", "session.id")
                ), f"{path.name} spells {node.value!r}"


def test_import_is_light() -> None:
    """`import otelite` imports no optional dependency, no exporter and no tokenizer."""
    code = (
        "import sys, otelite\n"
        "heavy = ['openai', 'tiktoken', 'grpc', 'requests', 'httpx', 'httpx2', 'pydantic',\n"
        "         'opentelemetry.sdk', 'opentelemetry.exporter']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_and_instrument_load_only_the_hot_path() -> None:
    """`import otelite` + `instrument_openai()` load neither the store (sqlite3), the pricing
    module, the prompt registry, the online checks nor the evaluators: they load on first use
    (import time is a benchmark target; this keeps it from creeping back)."""
    code = (
        "import sys, otelite\n"
        "otelite.instrument_openai()\n"
        "later = ['sqlite3', 'otelite.store', 'otelite._pricing', 'otelite.prompts',\n"
        "         'otelite._checks', 'otelite.evals', 'otelite._scores', 'otelite.cli']\n"
        "print(','.join(m for m in later if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELITE"))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""


def test_every_environment_variable_documented() -> None:
    """docs/configuration.md lists every variable otelite reads."""
    text = (DOCS / "configuration.md").read_text()
    for var in _env.ALL:
        assert f"`{var.name}`" in text, f"{var.name} missing from docs/configuration.md"


def test_pytest_plugin_fixture(capture_spans: otelite.testing.Captured) -> None:
    """The capture_spans fixture from the pytest11 entry point collects spans in memory."""
    with otelite.span("from-fixture"):
        pass
    assert [s.name for s in capture_spans.spans] == ["from-fixture"]


def test_every_attribute_documented() -> None:
    """docs/attributes.md names every attribute and metric that _semconv spells."""
    from otelite import _semconv

    text = (DOCS / "attributes.md").read_text()
    names = [
        value
        for key, value in vars(_semconv).items()
        if key.isupper()
        and isinstance(value, str)
        and "." in value
        and not value.startswith("https://")
        and not key.startswith(("OP_", "PROVIDER_", "TOKEN_TYPE"))
    ]
    missing = [n for n in names if f"`{n}" not in text]
    assert missing == []


def test_big_modules_say_why() -> None:
    """A module over ~500 lines states in its docstring why it is not split."""
    unexplained = []
    for module, path in source_modules().items():
        text = path.read_text()
        if text.count("\n") <= 550:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Size: over 500 lines because" not in doc:
            unexplained.append(f"{module} ({text.count(chr(10))} lines)")
    assert unexplained == [], "split these or state why in the docstring: " + ", ".join(unexplained)
