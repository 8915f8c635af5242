"""The README as written: its model example runs, its quick start is `scripts/quickstart.sh`'s, its links resolve."""

import re

from conftest import REPO_ROOT

QUICK_START_SCRIPT = REPO_ROOT / "scripts" / "quickstart.sh"
SAMPLE = "sample_ct.nii.gz"
SAMPLE_IS = "three synthetic slices of 160x144"


def _first_block(text, heading, language):
    """The first ```language block after `heading` (a line of its own)."""
    section = text[re.search(rf"^{re.escape(heading)}$", text, re.M).start() :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def _script_block():
    """The quick-start block held by `scripts/quickstart.sh` (its `<<'EOF'` here-document)."""
    return re.search(r"<<'EOF'\n(.*?\n)EOF\n", QUICK_START_SCRIPT.read_text(), re.S).group(1)


def _commands(block):
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_model_example_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    code = _first_block(readme, "## The model", "python")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["probabilities"].shape == (2, 64, 64, 4)
    assert namespace["labels"].shape == (2, 64, 64)


def test_quick_start_block_is_the_script():
    """The README and the docs' home page show the commands that the script (and CI) runs, comments included."""
    script_block = _script_block()
    for page in ("README.md", "docs/index.md"):
        assert _first_block((REPO_ROOT / page).read_text(), "## Quick start", "bash") == script_block, page


def test_quick_start_script_has_one_step_per_command():
    steps = re.search(r"^STEPS=\((.*)\)$", QUICK_START_SCRIPT.read_text(), re.M).group(1).split()
    assert steps == ["train", "test", "predict"]
    assert len(_commands(_script_block())) == len(steps)


def test_the_sample_is_called_synthetic_wherever_it_is_shown():
    """The predict command's sample is three synthetic slices, not a scan: every page that shows it says so."""
    pages = [REPO_ROOT / "README.md", QUICK_START_SCRIPT, *sorted((REPO_ROOT / "docs").glob("*.md"))]
    showing = [page for page in pages if SAMPLE in page.read_text()]
    assert REPO_ROOT / "README.md" in showing
    for page in showing:
        assert SAMPLE_IS in " ".join(page.read_text().split()), page.name


def test_readme_fits_and_its_links_resolve():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    anchors = {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
        for heading in re.findall(r"^#+ (.*)$", readme, re.M)
    }
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (REPO_ROOT / path).exists(), target
        elif anchor:
            assert anchor in anchors, target
