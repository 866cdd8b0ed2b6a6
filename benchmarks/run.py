"""Run the benchmark suite and write a table (markdown, CSV) and a plot to benchmarks/results.

python -m benchmarks.run            # the full suite (about 14 minutes on 2 cores)
python -m benchmarks.run --quick    # every workload, small, in about a minute
python -m benchmarks.run --only tutorial large
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
from pathlib import Path
from typing import Any

import torch

from benchmarks.tabular import plot_quality_against_time
from benchmarks.workloads import FLASH, WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "workload",
    "tool",
    "metric",
    "quality",
    "time_s",
    "throughput",
    "ratio_to_flash",
    "ratio_to_boosting",
    "log_loss",
    "brier",
    "peak_rss_mb",
    "budget_mb",
    "note",
]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )


def _fmt(value: Any, column: str) -> str:
    if value is None or value == "":
        return ""
    if column == "throughput":
        return f"{value:,.0f} rows/s"
    if column in ("log_loss", "brier"):
        return f"{value:.4f}"
    if column in ("ratio_to_flash", "ratio_to_boosting"):
        return f"{value:.2f}x"
    if column in ("peak_rss_mb", "budget_mb"):
        return f"{value:,.0f} MB"
    if column == "time_s":
        return f"{value * 1000:.3f} ms" if value < 0.01 else f"{value:.3f} s"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The performance targets, checked on the rows measured."""

    def find(prefix: str, tool: str) -> dict[str, Any] | None:
        return next(
            (r for r in rows if r["workload"].startswith(prefix) and r["tool"] == tool), None
        )

    checks = []
    flash, hand, skorch = (find("tutorial", t) for t in (FLASH, "hand-written loop", "skorch"))
    if flash and hand and skorch:
        a, b = flash["time_s"] / skorch["time_s"], flash["time_s"] / hand["time_s"]
        checks.append(
            (
                "1. tutorial: fit time <= 0.5x skorch and <= 1.5x hand loop",
                f"{a:.2f}x skorch, {b:.2f}x hand loop",
                a <= 0.5 and b <= 1.5,
            )
        )
    flash, hand, skorch = (find("large", t) for t in (FLASH, "hand-written loop", "skorch"))
    if flash and hand and skorch:
        a, b = flash["throughput"] / hand["throughput"], flash["throughput"] / skorch["throughput"]
        checks.append(
            (
                "2. large: rows/s >= 0.95x hand loop and >= 2x skorch",
                f"{a:.2f}x hand loop, {b:.2f}x skorch",
                a >= 0.95 and b >= 2,
            )
        )
    once = find("large", "hand-written loop, permute once")
    if flash and once:
        a = flash["throughput"] / once["throughput"]
        checks.append(
            ("8. large: rows/s >= 0.95x the permute-once hand loop", f"{a:.2f}x", a >= 0.95)
        )
    scaled = find("large, scaling on", f"{FLASH}, input and target scaling on")
    by_hand = find("large, scaling on", "hand-written loop, permute once, scaling by hand")
    plain = find("large, scaling on", "hand-written loop, permute once, no scaling")
    if scaled and by_hand and plain:
        a, b = (scaled["throughput"] / r["throughput"] for r in (plain, by_hand))
        checks.append(
            (
                "18. large, 1 epoch, scaling on: rows/s >= 0.95x the permute-once loop",
                f"{a:.2f}x the loop without scaling, {b:.2f}x scaling by hand",
                a >= 0.95,
            )
        )
    flash, skorch = find("GridSearchCV", FLASH), find("GridSearchCV", "skorch")
    if flash and skorch:
        a = flash["time_s"] / skorch["time_s"]
        checks.append(("3. GridSearchCV wall <= 0.5x skorch", f"{a:.2f}x skorch", a <= 0.5))
    mem = find("memory", FLASH)
    if mem:
        checks.append(
            (
                "4. peak RSS <= input + float32 copy + 500 MB",
                f"{mem['peak_rss_mb']:,.0f} MB of {mem['budget_mb']:,.0f} MB",
                mem["peak_rss_mb"] <= mem["budget_mb"],
            )
        )
    flash, lightning = find("import", FLASH), find("import", "pytorch_lightning")
    if flash and lightning:
        a = flash["time_s"] / lightning["time_s"]
        checks.append(("5. import skflash <= 1.1x import pytorch_lightning", f"{a:.2f}x", a <= 1.1))
    flash = find("estimator import", FLASH)
    reference = find("estimator import", "pytorch_lightning + sklearn.base")
    if flash and reference:
        a = flash["time_s"] / reference["time_s"]
        label = "5. (estimators) from skflash import FlashRegressor <= 1.1x PL + sklearn.base"
        checks.append((label, f"{a:.2f}x", a <= 1.1))
    quiet = find("busy machine: diabetes default fit, quiet", FLASH)
    busy = find("busy machine: diabetes default fit, beside", FLASH)
    before = find("busy machine: diabetes default fit, beside", "FlashRegressor(num_threads=None)")
    if quiet and busy and before:
        a = busy["time_s"] / quiet["time_s"]
        checks.append(
            (
                "6. busy machine: default fit <= 3x its quiet time",
                f"{a:.1f}x (torch's own thread setting: {before['time_s'] / quiet['time_s']:.1f}x)",
                a <= 3,
            )
        )
    f64 = find("float64 vs float32", f"{FLASH}, float64 input")
    f32 = find("float64 vs float32", f"{FLASH}, float32 input")
    if f64 and f32:
        a = f64["time_s"] / f32["time_s"]
        checks.append(("7. float64 input fit <= 1.1x float32 input", f"{a:.2f}x", a <= 1.1))
    flash, pipeline = (
        find("latency: one-row", t) for t in (FLASH, "StandardScaler + MLPRegressor")
    )
    if flash and pipeline:
        checks.append(
            (
                "9. one-row predict <= StandardScaler + MLPRegressor",
                f"{flash['time_s'] * 1000:.3f} ms vs {pipeline['time_s'] * 1000:.3f} ms",
                flash["time_s"] <= pipeline["time_s"],
            )
        )
    flash = find("latency: partial_fit", FLASH)
    hand = find("latency: partial_fit", "hand-written epoch (same network and work)")
    if flash and hand:
        cost = (flash["time_s"] - hand["time_s"]) * 1000
        checks.append(
            (
                "10. partial_fit fixed cost <= 2 ms per call (1,000 rows)",
                f"{cost:.1f} ms",
                cost <= 2,
            )
        )
    streamed = find("out of core", FLASH)
    if streamed:
        checks.append(
            (
                "15. out of core: 1-epoch fit on a 2 GiB Dask array, peak RSS < 1 GB",
                f"{streamed['peak_rss_mb']:,.0f} MB",
                streamed["peak_rss_mb"] < streamed["budget_mb"],
            )
        )
    for n_rows in (1, 100):
        workload = f"threaded predict: {n_rows}-row"
        one, two = (find(workload, f"{FLASH}, {t}") for t in ("1 thread", "2 threads"))
        if one and two:
            a = two["throughput"] / one["throughput"]
            target = f"16. 2 threads calling {n_rows}-row predict >= 1x one's calls/s"
            checks.append((target, f"{a:.2f}x", a >= 1))
    checks += _tabular_targets([r for r in rows if r["workload"].startswith("tabular:")])
    return checks


def _tabular_targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """Targets of the tabular benchmark: skflash's defaults against the usual tools."""
    from benchmarks.tabular import BOOSTING, LINEAR, MLP

    by_set: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_set.setdefault(row["workload"], {})[row["tool"]] = row
    real = {k: v for k, v in by_set.items() if "real" in next(iter(v.values()))["note"]}
    toy = {k: v for k, v in by_set.items() if k not in real}

    def flash_row(tools: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return next(r for t, r in tools.items() if t.startswith("Flash"))

    def flash(tools: dict[str, dict[str, Any]]) -> float:
        return flash_row(tools)["quality"]

    checks = []
    if real:
        above = [k for k, v in real.items() if flash(v) >= v[LINEAR]["quality"]]
        close = [k for k, v in real.items() if flash(v) >= v[BOOSTING]["quality"] - 0.01]
        checks += [
            (
                "11. real tables: score >= one-hot + linear on every set",
                f"{len(above)} of {len(real)}",
                len(above) == len(real),
            ),
            (
                f"12. real tables: within 0.01 of {BOOSTING} on at least half",
                f"{len(close)} of {len(real)}",
                2 * len(close) >= len(real),
            ),
        ]
        level = [k for k, v in real.items() if flash(v) >= v[BOOSTING]["quality"]]
        checks.append(
            (
                f"19. real tables: within 0.01 of {BOOSTING} on each, at or above on three",
                f"within on {len(close)} of {len(real)}, at or above on {len(level)}",
                len(close) == len(real) and len(level) >= 3,
            )
        )
        ratios = [flash_row(v)["ratio_to_boosting"] for v in real.values()]
        checks.append(
            (
                f"16. real tables: fit time <= 10x {BOOSTING} on half, <= 25x on every one",
                f"{sum(r <= 10 for r in ratios)} of {len(ratios)} <= 10x, max {max(ratios):.1f}x",
                2 * sum(r <= 10 for r in ratios) >= len(ratios) and max(ratios) <= 25,
            )
        )
    classified = {k: v for k, v in by_set.items() if "log_loss" in v[BOOSTING]}
    if classified:
        lower = [
            k for k, v in classified.items() if flash_row(v)["log_loss"] <= v[BOOSTING]["log_loss"]
        ]
        checks.append(
            (
                f"17. classification: log-loss <= {BOOSTING}'s on each set",
                f"{len(lower)} of {len(classified)}",
                len(lower) == len(classified),
            )
        )
    if toy:
        best = [
            k for k, v in toy.items() if flash(v) >= max(v[LINEAR]["quality"], v[MLP]["quality"])
        ]
        checks.append(
            (
                "13. toy sets: score >= the best of linear and scaled MLP on each",
                f"{len(best)} of {len(toy)}",
                len(best) == len(toy),
            )
        )
    if rows:
        wall = sum(r.get("wall_s", 0.0) for r in rows)
        checks.append(
            ("14. tabular benchmark wall time <= 15 min", f"{wall / 60:.1f} min", wall <= 900)
        )
    return checks


def write(rows: list[dict[str, Any]], quick: bool, out: Path = RESULTS) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    shown = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in rows)]
    lines = [
        f"Measured {datetime.date.today()} on {machine()}"
        + (" (quick mode: small sizes, not the targets' workloads)" if quick else "")
        + ".",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c), c) for c in shown) + " |" for r in rows]
    checks = targets(rows)
    if checks:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in checks]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    plot(rows, out)
    plot_quality_against_time(
        [r for r in rows if r["workload"].startswith("tabular:")], out / "tabular.png"
    )
    loss_curve(out)
    return text


def loss_curve(out: Path) -> None:
    """The loss curves of a default fit with early stopping on diabetes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_diabetes

    from skflash import FlashRegressor
    from skflash.plotting import LossCurveDisplay

    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(early_stopping=True, random_state=0).fit(X, y)
    display = LossCurveDisplay.from_estimator(reg)
    display.ax_.set_title("FlashRegressor on diabetes, early stopping (patience 10)")
    display.figure_.savefig(out / "loss_curve.png", dpi=90)
    plt.close(display.figure_)


def plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    timed = [
        r for r in rows if r.get("time_s") and not r["workload"].startswith(("import", "memory"))
    ]
    workloads = list(dict.fromkeys(r["workload"] for r in timed))
    fig, axes = plt.subplots(
        len(workloads), 2, figsize=(12, 2.2 * len(workloads) + 1), squeeze=False
    )
    for (ax_time, ax_quality), workload in zip(axes, workloads, strict=True):
        block = [r for r in timed if r["workload"] == workload]
        names = [r["tool"] for r in block]
        colors = ["tab:orange" if n == FLASH else "tab:blue" for n in names]
        times = [r["time_s"] for r in block]
        ax_time.barh(names, times, color=colors)
        ax_time.set_xscale("log")
        ax_time.set_xlim(left=min(times) / 10)  # bars start a decade below the fastest
        ax_time.xaxis.set_minor_formatter(NullFormatter())
        ax_time.set_xlabel("time (s, log)")
        ax_time.set_title(workload[:70], fontsize=8, loc="left")
        quality = [r.get("quality") or 0.0 for r in block]
        ax_quality.barh(names, quality, color=colors)
        ax_quality.set_xlabel(block[0].get("metric") or "quality")
        ax_quality.set_xlim(min(0.0, *quality), 1.0)
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes; checks the suite runs")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="run only these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for name in args.only or WORKLOADS:
        print(f"running {name}...", flush=True)
        rows += WORKLOADS[name](args.quick)
    print(write(rows, args.quick, args.out))
    return rows


if __name__ == "__main__":
    main()
