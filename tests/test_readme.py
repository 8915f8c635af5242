"""The README's model example runs as written."""

import re

from conftest import REPO_ROOT


def test_model_example_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## The model") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["probabilities"].shape == (2, 64, 64, 4)
    assert namespace["labels"].shape == (2, 64, 64)
