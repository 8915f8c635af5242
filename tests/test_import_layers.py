"""The package's imports point only downward: no module imports from a package above its own."""

import ast

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "tf_resattn"

# Lowest first. A module may import from its own unit and from units of lower levels only.
LEVELS = [
    {"arguments", "classes", "grey_levels", "optional", "version"},
    {"command_line", "ops", "jax_ffi", "io"},
    {"layers", "metrics", "data"},
    {"losses", "models"},
    {"training"},
    {"inference"},
    {"export", "tuning"},
    {"kernel_check"},
    {"__init__"},
]
LEVEL = {unit: level for level, units in enumerate(LEVELS) for unit in units}


def unit_of(parts):
    """The top-level unit of a module path inside tf_resattn (`("io", "dicom")` -> `"io"`; the package itself: `__init__`)."""
    return parts[0].removesuffix(".py") if parts and parts[0] != "__init__.py" else "__init__"


def imported_units(tree):
    """(line, unit) of every tf_resattn unit a module's syntax tree imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tf_resattn":
                    yield node.lineno, parts[1] if len(parts) > 1 else "__init__"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tf_resattn":
            parts = node.module.split(".")
            if len(parts) > 1:
                yield node.lineno, parts[1]
            else:  # `from tf_resattn import x`: a unit when x is one, else a name of the package itself
                for alias in node.names:
                    yield node.lineno, alias.name if alias.name in LEVEL else "__init__"


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_level():
    units = {unit_of(path.relative_to(PACKAGE).parts) for path in modules()}
    assert units <= set(LEVEL), f"give these a level in LEVELS: {sorted(units - set(LEVEL))}"


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    source = unit_of(path.relative_to(PACKAGE).parts)
    upward = [
        f"line {line}: {source} (level {LEVEL[source]}) imports {target} (level {LEVEL[target]})"
        for line, target in imported_units(ast.parse(path.read_text()))
        if target != source and LEVEL[target] >= LEVEL[source]
    ]
    assert not upward, "; ".join(upward)


def test_the_check_sees_an_upward_import():
    tree = ast.parse("from tf_resattn.training.folds import make_splits\nfrom tf_resattn import build_model\n")
    assert list(imported_units(tree)) == [(1, "training"), (2, "__init__")]
