"""The Python versions and the types users' tools see.

``requires-python`` says 3.10: ``vermin`` checks that no module needs a later Python.
A user's script is type-checked with mypy against the package's own annotations
(``py.typed``): a correct script passes, and mistakes in the estimators' parameters are
reported, which they are only when the signatures are visible.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("vermin")
pytest.importorskip("mypy")

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

# Third-party packages are not what is checked here; skipping them keeps a cold run short.
MYPY_CONFIG = """\
[mypy]
follow_imports = silent
ignore_missing_imports = True
[mypy-torch.*,pytorch_lightning.*,lightning.*,lightning_fabric.*,lightning_utilities.*]
follow_imports = skip
[mypy-pandas.*,sklearn.*,scipy.*,torchmetrics.*]
follow_imports = skip
"""

# What a user writes, routed Trainer arguments included (they stay legal for type
# checkers; a misspelled parameter is refused when the estimator is built).
USER_SCRIPT = """\
import numpy as np

from skflash import FlashClassifier, FlashRegressor

X = np.random.default_rng(0).normal(size=(50, 3))
y = X.sum(axis=1)
predicted: np.ndarray = FlashRegressor(max_epochs=5).fit(X, y).predict(X)
clf = FlashClassifier(max_epochs=5, early_stopping=True, trainer__gradient_clip_val=1.0)
probabilities: np.ndarray = clf.fit(X, y > 0).predict_proba(X)
"""

MISTAKES = """\
from skflash import FlashClassifier, FlashRegressor

FlashRegressor(max_epochs="five")
FlashClassifier(early_stopping=True, learning_rate=[0.1])
FlashRegressor(5)
"""


def test_no_module_needs_a_python_later_than_requires_python():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(3\.\d+)", declared).group(1)
    # `long` is torch's Tensor.long() here, which vermin takes for Python 2's builtin.
    command = "import sys; from vermin import main; sys.argv[0] = 'vermin'; sys.exit(main())"
    options = ["--no-tips", "--violations", "--eval-annotations", f"-t={minimum}-"]
    found = subprocess.run(
        [sys.executable, "-c", command, *options, "--exclude", "long", str(ROOT / "skflash")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert f"Minimum required versions: {minimum}" in found.stdout


def test_py_typed_marks_the_package_as_typed():
    assert (ROOT / "skflash" / "py.typed").is_file()


def test_mypy_checks_a_user_script_and_sees_the_parameters(tmp_path):
    (tmp_path / "mypy.ini").write_text(MYPY_CONFIG)
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    (tmp_path / "mistakes.py").write_text(MISTAKES)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    options = ["--config-file", "mypy.ini", "--cache-dir", "cache", "--no-error-summary"]
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", *options, "user.py", "mistakes.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    report = checked.stdout + checked.stderr
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert not [line for line in errors if line.startswith("user.py")], report
    expected = {
        3: 'Argument "max_epochs" to "FlashRegressor" has incompatible type "Literal[',
        4: 'Argument "learning_rate" to "FlashClassifier" has incompatible type "list[float]"',
        5: 'Too many positional arguments for "FlashRegressor"',
    }
    for line, message in expected.items():
        assert any(e.startswith(f"mistakes.py:{line}:") and message in e for e in errors), report
    # no error elsewhere (mypy may say more than one thing about the positional call)
    assert {int(e.split(":")[1]) for e in errors} == set(expected), report


def test_every_lazily_loaded_name_is_exported_and_typed():
    import skflash

    source = (ROOT / "skflash" / "__init__.py").read_text()
    for name in skflash._LAZY:
        assert name in skflash.__all__
        assert f"import {name}" in source or f", {name}" in source  # imported for type checkers
