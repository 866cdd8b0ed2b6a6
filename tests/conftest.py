"""Every test runs in its own temporary directory, so no test leaves files in the tree."""

from __future__ import annotations

import os

# Lets scikit-learn run its array-API check too (with NumPy inputs, for estimators that
# do not declare array-API support); it must be set before scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
import tempfile

import pytest
import torch
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# No example database, and hypothesis's own files in a temporary directory: the tests
# leave nothing behind in the working tree. The examples are the same on every run (a
# test run's verdict does not depend on luck); SKFLASH_FUZZ=explore draws new ones.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="skflash-hypothesis-"))
settings.register_profile("skflash", database=None, derandomize=True)
settings.register_profile("explore", database=None, max_examples=200)
settings.load_profile("explore" if os.environ.get("SKFLASH_FUZZ") == "explore" else "skflash")

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # one thread per test worker: no oversubscription of the cores

QUIET = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _sigint_untouched():
    """No test may leave Ctrl+C changed (a fit that did would break users' Ctrl+C)."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    assert after is before, f"SIGINT handler changed from {before!r} to {after!r}"


@pytest.fixture(scope="module")
def diabetes():
    """The diabetes regression data as arrays, shared by a module's tests."""
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)
