"""Inference stands on its own: no import of `tf_resattn.training`, and no import cycle among its modules.

Every import is seen, also those inside functions (imported on first use).
"""

import ast

from conftest import REPO_ROOT
from test_import_layers import imported_units

INFERENCE = REPO_ROOT / "tf_resattn" / "inference"
MODULES = {path.stem: ast.parse(path.read_text()) for path in sorted(INFERENCE.glob("*.py")) if path.stem != "__init__"}


def inference_modules_imported(tree):
    """Names of the `tf_resattn.inference` modules (`"predict"`, ...) that a syntax tree imports, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tf_resattn.inference":
            yield from (alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tf_resattn.inference."):
            yield node.module.split(".")[2]
        elif isinstance(node, ast.Import):
            yield from (
                alias.name.split(".")[2] for alias in node.names if alias.name.startswith("tf_resattn.inference.")
            )


def import_cycle(graph):
    """One cycle of `graph` (module -> imported modules) as a list `[a, b, ..., a]`, or None."""
    done, path = set(), []

    def visit(module):
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    return next((cycle for cycle in map(visit, sorted(graph)) if cycle), None)


def test_inference_imports_nothing_from_training():
    found = [
        f"{name}.py line {line}"
        for name, tree in MODULES.items()
        for line, unit in imported_units(tree)
        if unit == "training"
    ]
    assert not found, f"tf_resattn.inference imports tf_resattn.training: {', '.join(found)}"


def test_the_walk_sees_an_import_inside_a_function():
    tree = ast.parse(
        "def f():\n    from tf_resattn.training.folds import make_splits\n    from tf_resattn.inference import predict\n"
    )
    assert list(imported_units(tree)) == [(2, "training"), (3, "inference")]
    assert list(inference_modules_imported(tree)) == ["predict"]


def test_no_import_cycle_among_inference_modules():
    graph = {name: set(inference_modules_imported(tree)) - {name} for name, tree in MODULES.items()}
    assert import_cycle(graph) is None, f"import cycle: {' -> '.join(import_cycle(graph))}"


def test_the_cycle_search_finds_a_cycle():
    assert import_cycle({"model_files": {"ensemble"}, "ensemble": {"errors", "model_files"}, "errors": set()}) == [
        "ensemble",
        "model_files",
        "ensemble",
    ]
    assert import_cycle({"predict": {"errors"}, "errors": set()}) is None
