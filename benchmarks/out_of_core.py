"""Out-of-core fit: a float32 Dask array stored on disk, streamed through one epoch.

The data (2 GiB; 40 MiB in quick mode) is written as a Dask npy stack, one file per block
of 20,000 rows, then a fresh process fits FlashRegressor on ``da.from_npy_stack`` for one
epoch and predicts the first blocks back. Its peak RSS shows the fit never holds the
data whole. Run ``python -m benchmarks.out_of_core DIR`` to probe a stack already
written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.memory_probe import peak_rss_mb

FEATURES = 100
BLOCK_ROWS = 20_000
FLASH = "FlashRegressor"


def write(directory: Path, rows: int) -> None:
    """``X`` (rows x FEATURES float32, normal) and ``y`` (a smooth function of four
    columns, with noise) as Dask npy stacks, block by block."""
    import dask.array as da

    rng = da.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES), chunks=(BLOCK_ROWS, FEATURES), dtype=np.float32)
    noise = rng.standard_normal(rows, chunks=BLOCK_ROWS, dtype=np.float32)
    y = da.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3] + 0.1 * noise
    da.to_npy_stack(str(directory / "X"), X)
    da.to_npy_stack(str(directory / "y"), y.astype(np.float32))


def probe(directory: Path) -> dict[str, Any]:
    """Fit one epoch on the stack in ``directory``; peak RSS and times of this process."""
    import dask
    import dask.array as da

    from skflash import FlashRegressor

    dask.config.set(scheduler="synchronous")  # one block in flight: the memory a user sees
    X = da.from_npy_stack(str(directory / "X"), mmap_mode=None)
    y = da.from_npy_stack(str(directory / "y"), mmap_mode=None)
    baseline = peak_rss_mb()
    reg = FlashRegressor(max_epochs=1, random_state=0)
    start = time.perf_counter()
    reg.fit(X, y)
    fit_s = time.perf_counter() - start
    head = slice(0, min(len(y), 10 * BLOCK_ROWS))
    truth = y[head].compute()
    r2 = 1 - np.mean((reg.predict(X[head]) - truth) ** 2) / np.var(truth)
    return {
        "input_mb": X.nbytes / 2**20,
        "rows": int(X.shape[0]),
        "blocks": int(X.numblocks[0]),
        "import_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "fit_s": fit_s,
        "r2": float(r2),
    }


def run(quick: bool) -> list[dict[str, Any]]:
    rows = 100_000 if quick else 2**31 // (4 * FEATURES)  # 40 MiB or 2 GiB of float32
    root = str(Path(__file__).resolve().parents[1])  # importable from any directory
    with tempfile.TemporaryDirectory(prefix="skflash-out-of-core-") as directory:
        write(Path(directory), rows)
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.out_of_core", directory],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        {
            "workload": (
                f"out of core: {result['input_mb'] / 1024:.2f} GiB float32 Dask array on disk "
                f"({result['rows']:,} x {FEATURES}, {result['blocks']} blocks), 1 epoch"
            ),
            "tool": FLASH,
            "metric": "R2 (first 10 blocks)",
            "quality": result["r2"],
            "time_s": result["fit_s"],
            "throughput": result["rows"] / result["fit_s"],
            "peak_rss_mb": result["peak_rss_mb"],
            "budget_mb": 1024.0,
            "note": f"{result['import_rss_mb']:,.0f} MB after imports; never loaded whole",
        }
    ]


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]))))
