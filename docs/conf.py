"""Sphinx configuration of skflash's documentation.

The site builds offline: no inventory is fetched, and every warning is an error
(``make docs`` passes ``-W``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]
# Workers of the gallery's Dask example and of the examples' Trainers import skflash too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

import skflash  # noqa: E402

project = "skflash"
author = "The skflash developers"
copyright = "2026, the skflash developers"
release = skflash.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/sg_execution_times.rst", "auto_examples/*.ipynb"]
root_doc = "index"

# --- API reference -------------------------------------------------------------------
autosummary_generate = True
autodoc_inherit_docstrings = False  # overrides of Lightning hooks are not re-documented
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Every docstring the API reference renders is checked; a failure fails the build.
# "all" followed by codes: every check except those listed.
numpydoc_validation_checks = {
    "all",
    "ES01",  # an extended summary is welcome, not required
    "EX01",  # examples live in the user guide and the gallery
    "SA01",  # See Also sections are optional
    "GL01",  # summary may start on the first line of the docstring
    "RT02",  # the Returns type may be named
    "SS05",  # a summary may describe rather than command ("Train the Task", "The ...")
    # Lightning's hooks and the Flash core's short methods say what they take and return
    # in their summary; the estimators' methods are held to these too, by
    # tests/test_docs.py.
    "PR01",
    "PR02",
    "RT01",
    "YD01",
}
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\._[a-z]",  # private members
    r"\.(pre|post)process_cls$",  # class attributes, documented by a comment
}

# --- user guide (Markdown) ---------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # every example runs at build time
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": True,
    "show_memory": False,
    "min_reported_time": 1e9,
    "matplotlib_animations": False,
    "write_computation_times": False,
    "reset_argv": "gallery_argv.gallery_argv",
}

# --- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skflash {version}"
html_static_path: list[str] = []
html_theme_options = {
    "github_url": "https://github.com/skflash/skflash",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
# Nothing is fetched at build time: sphinx.ext.intersphinx is not loaded, so no inventory
# is downloaded; other projects' names stay plain text.


def _defined_outside_skflash(obj: object) -> bool:
    """Whether ``obj`` (a method, property or attribute) comes from another library."""
    target = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    module = getattr(target, "__module__", None)
    return module is not None and not module.startswith("skflash")


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document what skflash defines; Lightning's and torch's members live in their docs."""
    if what == "class" and _defined_outside_skflash(obj):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
