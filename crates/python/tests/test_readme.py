"""The README's Python section runs as written: each ```python block, in a
fresh interpreter in an empty directory (its stores are created there)."""

import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[3] / "README.md"


def _python_blocks():
    text = README.read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_python_examples():
    assert len(_python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_example_runs(index, tmp_path):
    code = _python_blocks()[index]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    # A print's comment shows what it prints (before any ": " note;
    # "commit" stands for a commit id).
    expected = [
        line.split("#", 1)[1].strip().split(": ")[0]
        for line in code.splitlines()
        if line.lstrip().startswith("print(") and "#" in line
    ]
    printed = done.stdout.splitlines()
    assert len(printed) == len(expected), (printed, expected)
    for got, want in zip(printed, expected):
        pattern = re.escape(want).replace("commit", "[0-9a-f]{64}")
        assert re.fullmatch(pattern, got), (got, want)
