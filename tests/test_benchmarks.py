"""The benchmark suite's quick mode runs end to end (its times are not asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("skorch")


def test_quick_benchmarks_write_table_csv_and_plot(tmp_path):
    from benchmarks.run import main

    rows = main(["--quick", "--out", str(tmp_path)])
    workloads = {row["workload"].split(":")[0] for row in rows}
    assert {
        "tutorial",
        "defaults",
        "classification defaults",
        "large",
        "GridSearchCV",
        "memory",
        "import time",
        "busy machine",
        "float64 vs float32",
        "latency",
        "threaded predict",
        "out of core",
        "tabular",
    } <= workloads
    assert all(row["time_s"] > 0 for row in rows)
    table = (tmp_path / "results.md").read_text()
    assert "FlashRegressor" in table and "| target |" in table
    assert (tmp_path / "results.csv").read_text().startswith("workload,tool")
    assert (tmp_path / "results.png").stat().st_size > 0
    assert (tmp_path / "loss_curve.png").stat().st_size > 0
    assert (tmp_path / "tabular.png").stat().st_size > 0  # quality against fit time
    tabular = [row for row in rows if row["workload"].startswith("tabular")]
    assert {"credit_data", "nlswork"} <= {row["workload"].split()[1] for row in tabular}
    assert all(row["ratio_to_boosting"] > 0 for row in tabular)
    assert all("brier" in row for row in tabular if row["metric"] in ("roc_auc", "accuracy"))


def test_a_probes_peak_memory_is_its_own_not_its_parents():
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    held = np.ones(40_000_000)  # 305 MB in this process when the probe starts
    code = "from benchmarks.memory_probe import peak_rss_mb; print(peak_rss_mb())"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert float(done.stdout) < 200 < held.nbytes / 2**20


def test_the_gpu_benchmark_skips_without_cuda():
    import torch

    from benchmarks import gpu

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: benchmarks/gpu_check.sh runs the benchmark")
    assert gpu.run(quick=True) == []
