"""Command-line arguments the documentation build gives each gallery example."""

from __future__ import annotations

from pathlib import Path


def gallery_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """``--quiet`` for the tutorial: a page shows no progress bar redrawn 1000 times."""
    return ["--quiet"] if Path(script_vars["src_file"]).name == "custom_task.py" else []
