"""The documentation: the site builds without warnings, the HTML repr links into it, and
the user-facing docstrings pass numpydoc's validation in full."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skflash.estimators.base import DOCS_URL

ROOT = Path(__file__).resolve().parents[1]

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="needs the docs extra")

# The estimators' own methods and the display: every check but the optional sections.
USER_FACING = [
    "skflash.FlashRegressor",
    "skflash.FlashRegressor.fit",
    "skflash.FlashRegressor.partial_fit",
    "skflash.FlashRegressor.predict",
    "skflash.FlashRegressor.to_onnx",
    "skflash.FlashClassifier",
    "skflash.FlashClassifier.fit",
    "skflash.FlashClassifier.partial_fit",
    "skflash.FlashClassifier.predict",
    "skflash.FlashClassifier.predict_proba",
    "skflash.FlashClassifier.predict_log_proba",
    "skflash.FlashClassifier.decision_function",
    "skflash.plotting.LossCurveDisplay.from_estimator",
    "skflash.plotting.LossCurveDisplay.plot",
]
OPTIONAL = {"ES01", "EX01", "SA01", "SS05", "GL01", "RT02"}  # RT02: scikit-learn names `self`


@pytest.mark.parametrize("name", USER_FACING)
def test_user_facing_docstrings_pass_numpydoc_validation(name):
    errors = [
        f"{code}: {message}"
        for code, message in numpydoc_validate.validate(name)["errors"]
        if code not in OPTIONAL
    ]
    assert errors == []


def test_docs_build_without_warnings(tmp_path):
    """The whole site (API reference, user guide, gallery pages) builds with ``-W``;
    the gallery examples themselves are run by ``make docs``, not here."""
    pytest.importorskip("sphinx_gallery", reason="needs the docs extra")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    html = tmp_path / "html"
    # The HTML repr's "?" links land on the estimators' pages of the built site.
    from skflash import FlashClassifier, FlashRegressor

    for cls in (FlashRegressor, FlashClassifier):
        page = html / cls()._get_doc_link().removeprefix(DOCS_URL)
        assert f'id="skflash.{cls.__name__}.fit"' in page.read_text()
    for page in ("user_guide/parameters.html", "auto_examples/index.html", "architecture.html"):
        assert (html / page).exists(), page


def test_documentation_url_is_the_one_the_html_repr_links_to():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Documentation"] == DOCS_URL
