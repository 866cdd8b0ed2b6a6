"""The distributions: what the wheel and the sdist hold, and what an installed wheel reports.

The builds and the fresh virtual environment are made once for the module (about 20 s
on two busy cores); every step runs offline: the build uses this environment's setuptools
(``--no-isolation``) and the wheel is installed with ``--no-index --no-deps``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.version import Version

import skflash
from skflash.estimators.base import DOCS_URL

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT = 180  # seconds for any one build, venv or import step (each takes a few)

# Not part of a source checkout's distributions, or not wanted in the copy that is built.
_NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "lightning_logs",
)

# The build must read the version without importing skflash (which imports these).
_POISONED = ("torch", "pytorch_lightning")

_PROBE = """
import importlib.metadata, importlib.resources, json, sys
import skflash
meta = importlib.metadata.metadata("skflash")
print(json.dumps({
    "version": skflash.__version__,
    "metadata_version": importlib.metadata.version("skflash"),
    "file": skflash.__file__,
    "prefix": sys.prefix,
    "py_typed": importlib.resources.files("skflash").joinpath("py.typed").is_file(),
    "urls": meta.get_all("Project-URL"),
}))
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT, **kwargs)
    if done.returncode:
        pytest.fail(
            f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def _quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """An sdist and a wheel (built from that sdist) of a copy of the working tree."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_COPIED)  # the checkout itself stays untouched
    poison = base / "poison"
    poison.mkdir()
    for name in _POISONED:
        (poison / f"{name}.py").write_text(f"raise ImportError('the build imported {name}')\n")
    out = base / "dist"
    _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        cwd=base,
        env=_quiet_env(PYTHONPATH=str(poison)),
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"src": src, "wheel": wheel, "sdist": sdist, "base": base}


@pytest.fixture(scope="module")
def installed(built) -> dict[str, object]:
    """What skflash reports when imported from the wheel installed in a fresh venv."""
    venv = built["base"] / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=_quiet_env())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    wheel = str(built["wheel"])
    _run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        env=_quiet_env(),
    )
    new_site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        env=_quiet_env(),
    ).stdout.strip()
    # torch, Lightning and the rest come from this environment, after the wheel's own copy.
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    probe = _run(
        [str(python), "-c", _PROBE],
        cwd=built["base"],  # not the source tree, so `import skflash` cannot find it there
        env=_quiet_env(PYTHONPATH=os.pathsep.join([new_site, *ours])),
    )
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    report["venv"] = venv
    return report


def _wheel_names(built) -> list[str]:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        return wheel.namelist()


def test_wheel_holds_the_package_typed_and_licensed_and_nothing_else(built):
    names = _wheel_names(built)
    dist_info = f"skflash-{skflash.__version__}.dist-info/"
    assert "skflash/py.typed" in names
    with zipfile.ZipFile(built["wheel"]) as wheel:
        assert wheel.read(f"{dist_info}licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert [n for n in names if not n.startswith(("skflash/", dist_info))] == []
    assert not [n for n in names if n.split("/")[0] in {"tests", "benchmarks", "examples"}]
    # Every module of the package is shipped (no subpackage missed by package discovery).
    sources = {p.relative_to(built["src"]).as_posix() for p in built["src"].glob("skflash/**/*.py")}
    assert sources == {n for n in names if n.endswith(".py")}


def test_wheel_metadata(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        meta = HeaderParser().parsestr(wheel.read(metadata).decode())
    # Built while torch and Lightning could not be imported: the version was read statically.
    assert meta["Version"] == skflash.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "Typing :: Typed" in meta.get_all("Classifier")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Documentation", "Changelog"}
    requires = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in requires if r.startswith("torchmetrics")]  # skflash never imports it


def test_sdist_holds_the_sources_license_and_changelog(built):
    with tarfile.open(built["sdist"]) as sdist:
        top = f"skflash-{skflash.__version__}/"
        names = {n.removeprefix(top) for n in sdist.getnames()}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "skflash/py.typed"} <= names
    assert not [n for n in names if n.split("/")[0] in {"tests", "benchmarks", ".git", ".venv"}]


def test_installed_wheel_reports_its_own_version(installed):
    assert installed["version"] == installed["metadata_version"] == skflash.__version__
    venv = Path(installed["venv"]).resolve()
    assert Path(installed["prefix"]).resolve() == venv
    assert Path(installed["file"]).resolve().is_relative_to(venv)
    assert not Path(installed["file"]).resolve().is_relative_to(ROOT)
    assert installed["py_typed"]
    assert f"Documentation, {DOCS_URL}" in installed["urls"]  # where the HTML repr links


def test_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "skflash.__version__"}
    # A plain string literal, which setuptools reads without importing skflash.
    tree = ast.parse((ROOT / "skflash" / "__init__.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
    ]
    assert isinstance(value, ast.Constant) and value.value == skflash.__version__
    written = [
        path.relative_to(ROOT).as_posix()
        for path in [ROOT / "pyproject.toml", ROOT / "MANIFEST.in", *ROOT.glob("skflash/**/*.py")]
        if path.is_file() and skflash.__version__ in path.read_text()
    ]
    assert written == ["skflash/__init__.py"]
    # The changelog's newest section is the version being developed.
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert Version(skflash.__version__).base_version in newest


def test_import_loads_neither_scikit_learn_nor_pandas_until_an_estimator_is_used():
    # Lightning's own import is most of `import skflash`; scikit-learn (and the pandas it
    # loads) would add about as much again for users of the Task and DataModule alone.
    probe = (
        "import sys, skflash\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas'}))\n"
        "skflash.FlashRegressor\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split("\n")
    assert out[:2] == ["[]", "['pandas', 'sklearn']"]
