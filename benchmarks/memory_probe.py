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


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    Linux's ``VmHWM`` belongs to the process image alone. ``ru_maxrss`` is not used where
    VmHWM exists: it keeps the high-water mark of the process that started this one
    (fork and exec carry it over), so a probe started by a benchmark runner holding 900 MB
    would report at least 900 MB.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    print(
        json.dumps(
            {
                "input_mb": X.nbytes / 2**20,
                "peak_rss_mb": peak_rss_mb(),
                "fit_s": fit_s,
                "r2": float(r2),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
