"""The large workload on a CUDA GPU: FlashRegressor(accelerator="gpu") against a
hand-written loop on the same GPU (data moved there once, Adam, the same network and
batches), in rows per second. Target: at least 0.95x the hand loop.

Skips (returns no rows) without CUDA. Run by ``benchmarks/gpu_check.sh``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import r2_score

from benchmarks import peers, workloads
from benchmarks.threaded_predict import FLASH


def _timed_on_gpu(fn: Any) -> tuple[float, Any]:
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, out


def run(quick: bool = False) -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device, skipped")
        return []
    n, epochs, repeats = (20_000, 1, 1) if quick else (200_000, 2, 3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 50)).astype(np.float32)
    y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)).astype(np.float32)
    head = slice(0, 20_000)

    def flash() -> float:
        reg = workloads.large_flash(epochs, accelerator="gpu", devices=1).fit(X, y)
        return reg.score(X[head], y[head])

    def hand() -> float:
        torch.manual_seed(0)
        model = peers.hand_loop(peers.mlp(50, (128, 128)), X, y, epochs, 256, device="cuda")
        return r2_score(y[head], peers.predict(model, X[head]))

    tools = {f"{FLASH}, accelerator='gpu'": flash, "hand-written loop on the GPU": hand}
    times: dict[str, list[float]] = {name: [] for name in tools}
    scores: dict[str, float] = {}
    for _ in range(repeats):  # interleaved
        for name, fn in tools.items():
            elapsed, scores[name] = _timed_on_gpu(fn)
            times[name].append(elapsed)
    workload = f"gpu large: {n // 1000}k x 50, MLP 128-128, batch 256, {epochs} epochs"
    rows = []
    for name in tools:
        t = statistics.median(times[name])
        rows.append(
            {
                "workload": workload,
                "tool": name,
                "quality": scores[name],
                "metric": "R2 (first 20k rows)",
                "time_s": t,
                "throughput": n * epochs / t,
            }
        )
    flash_rate, hand_rate = rows[0]["throughput"], rows[1]["throughput"]
    rows[0]["note"] = f"{flash_rate / hand_rate:.2f}x the hand loop's rows/s (target >= 0.95x)"
    return rows


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['workload']}: {row['tool']}: {row['throughput']:,.0f} rows/s, "
            f"R2 {row['quality']:.3f} {row.get('note', '')}"
        )
