"""Peak memory of FlashRegressor on a large float64 array; prints one JSON line.

Run as ``python -m benchmarks.memory_probe ROWS FEATURES`` in a fresh process, so that the
peak (``ru_maxrss``) belongs to this fit alone.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def main(rows: int, features: int) -> None:
    from skflash import FlashRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=rows)
    reg = FlashRegressor(max_epochs=1, batch_size=1024, random_state=0)
    start = time.perf_counter()
    reg.fit(X, y)
    fit_s = time.perf_counter() - start
    predictions = reg.predict(X)
    r2 = 1 - np.mean((predictions - y) ** 2) / np.var(y)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "input_mb": X.nbytes / 2**20,
                "peak_rss_mb": peak_kb / 1024,
                "fit_s": fit_s,
                "r2": float(r2),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
