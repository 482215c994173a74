"""Draw one PNG per workload from a results JSON (run with the bench venv, where matplotlib lives).

Usage: bench/.venv-contenders/bin/python bench/charts.py RESULTS.json OUTPUT_DIR

Each chart shows the median of every contender as a bar with a min-max whisker;
the file names are printed one per line on stdout.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

# (workload, chart title, [(metric key, legend label)], x-axis label)
CHARTS = (
    (
        "rtt",
        "Push → reply round trip, one caller (Node server)",
        [("p50_us", "p50"), ("p99_us", "p99")],
        "µs (lower is better)",
    ),
    ("rtt8", "8 concurrent callers: replies per second", [("throughput", "replies/s")], "replies/s (higher is better)"),
    ("receive-100b", "Broadcast receive, 100 B messages", [("rate", "msgs/s")], "messages/s (higher is better)"),
    ("receive-4kb", "Broadcast receive, 4 KB messages", [("rate", "msgs/s")], "messages/s (higher is better)"),
    ("connect", "Connect + join", [("p50_ms", "p50"), ("p99_ms", "p99")], "ms (lower is better)"),
    (
        "memory",
        "Memory over the client's own imports",
        [("idle_over_imports_mb", "idle client"), ("channels_over_idle_mb", "+1,000 channels")],
        "MiB (lower is better)",
    ),
    ("fanout", "Fan-out: 200 clients in one process", [("rate", "msgs/s delivered")], "messages/s (higher is better)"),
    (
        "cpu",
        "CPU seconds per 100,000 received messages",
        [("100 B", "100 B"), ("4 KB", "4 KB")],
        "CPU s (lower is better)",
    ),
)
COLORS = ("#3b6ea8", "#e08a2c", "#5a9e5a")


def bar_label(value: float) -> str:
    """A bar's number: thousands separators for big values, a few digits for small ones."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def collect(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(workload, contender label) -> metric -> values, Node server only."""
    labels = {c["key"]: c["label"] for c in results["contenders"]}
    data: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in results["runs"]:
        metrics = run["result"].get("metrics")
        if run["server"] != "node" or not metrics:
            continue
        label = labels[run["contender"]]
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                data[(run["workload"], label)][key].append(float(value))
        if run["workload"].startswith("receive-") and "cpu_s_per_100k" in metrics and run["contender"] in labels:
            size = "100 B" if run["workload"] == "receive-100b" else "4 KB"
            if not run["contender"].endswith("sink"):
                data[("cpu", label)][size].append(float(metrics["cpu_s_per_100k"]))
    return data


def draw(
    workload: str, title: str, series: list[tuple[str, str]], xlabel: str, data: Any, order: list[str], out: Path
) -> str | None:
    """One horizontal grouped bar chart; returns the file name (None when nothing to draw)."""
    rows = [label for label in order if any(data.get((workload, label), {}).get(key) for key, _ in series)]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) * len(series) + 1.6))
    height = 0.8 / len(series)
    medians_all: list[float] = []
    for index, (key, legend) in enumerate(series):
        medians, lows, highs, positions = [], [], [], []
        for row, label in enumerate(rows):
            values = data.get((workload, label), {}).get(key)
            if not values:
                continue
            median = statistics.median(values)
            medians.append(median)
            lows.append(median - min(values))
            highs.append(max(values) - median)
            positions.append(row + index * height)
        ax.barh(
            positions,
            medians,
            height=height,
            xerr=[lows, highs],
            color=COLORS[index % len(COLORS)],
            label=legend,
            capsize=3,
        )
        medians_all += medians
        for y, value, high in zip(positions, medians, highs):
            ax.text(value + high, y, f"  {bar_label(value)}", va="center", fontsize=8)
    ax.set_yticks([row + (len(series) - 1) * height / 2 for row in range(len(rows))])
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    if workload.startswith("receive-"):
        # The sink rows are 10-100x faster than any client: a log axis keeps the clients readable.
        ax.set_xscale("log")
        ax.set_xlim(left=min(medians_all) / 2, right=ax.get_xlim()[1] * 3)
        xlabel += ", log scale"
    else:
        ax.set_xlim(0, ax.get_xlim()[1] * 1.12)  # room for the labels
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    ax.set_xlabel(f"{xlabel}; bars: median, whiskers: min-max")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1:
        ax.legend(loc="best")
    fig.tight_layout()
    name = f"{workload}.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    data = collect(results)
    order = [c["label"] for c in results["contenders"]]
    for workload, title, series, xlabel in CHARTS:
        name = draw(workload, title, series, xlabel, data, order, out)
        if name:
            print(name)


if __name__ == "__main__":
    main()
