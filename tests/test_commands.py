"""Every command line sets up the process (`tf_resattn_process.configure_process`) before TensorFlow starts."""

import ast

import pytest
import tomllib
from conftest import REPO_ROOT

from tf_resattn_process import commands

COMMANDS = ("cv", "predict", "export", "tune", "robustness")
SCRIPTS = sorted((REPO_ROOT / "scripts").glob("*.py"))


def test_console_scripts_are_the_commands():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    names = ("cv", "predict", "export", "tune")
    assert scripts == {f"tf-resattn-{name}": f"tf_resattn_process.commands:{name}" for name in names}


@pytest.mark.parametrize("name", COMMANDS)
def test_command_sets_up_the_process_then_runs_main(monkeypatch, capsys, name):
    calls = []
    monkeypatch.setattr(commands, "configure_process", lambda: calls.append("configured"))
    with pytest.raises(SystemExit) as done:
        getattr(commands, name)(["--help"])
    assert done.value.code == 0 and calls == ["configured"]
    assert "usage:" in capsys.readouterr().out


def _imports_tf_resattn(node):
    return (isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "tf_resattn" for alias in node.names)) or (
        isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tf_resattn"
    )


def _sets_up(node):
    """A call of `configure_process()` or an import of `tf_resattn_process.commands` (whose functions call it)."""
    name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", None))
    call = isinstance(node, ast.Call) and name == "configure_process"
    return call or (isinstance(node, ast.ImportFrom) and node.module == "tf_resattn_process.commands")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_sets_up_the_process_before_importing_the_package(script):
    tree = ast.parse(script.read_text())
    if not any(_imports_tf_resattn(node) for node in ast.walk(tree)):
        return  # e.g. plain_unet.py: TensorFlow's own settings, on purpose
    set_up = [node.lineno for node in ast.walk(tree) if _sets_up(node)]
    assert set_up, f"{script.name} imports tf_resattn without tf_resattn_process"
    top_level = [node.lineno for node in tree.body if _imports_tf_resattn(node)]
    assert all(line > min(set_up) for line in top_level), f"{script.name} imports tf_resattn before the set-up"
