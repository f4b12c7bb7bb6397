"""`bench --plot FILE.png`: latency and CPU cost against the offered rate, from a bench result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fraudstream.ops.bench import PERCENTILES
from fraudstream.ops.cpu import LOAD_GENERATOR, TOTAL


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """Two panels sharing the rate axis: latency percentiles (ms) with the median of each of its parts
    (dashed), and the CPU of the stack (cores, by process and in total, the load generator apart) with
    its CPU milliseconds per transaction."""
    keys = sorted(result["latency_ms"], key=float)
    rates = [float(key) for key in keys]
    figure = Figure(figsize=(7, 6.5))  # no pyplot: nothing global, no display needed
    latency, cpu = figure.subplots(2, 1, sharex=True)
    for percentile in PERCENTILES:
        values = [result["latency_ms"][key][percentile] for key in keys]
        latency.plot(rates, values, marker="o", label=percentile)
    for part in result["latency_parts_ms"][keys[0]]:  # where the median row's time goes
        values = [result["latency_parts_ms"][key][part]["p50"] for key in keys]
        latency.plot(rates, values, marker=".", linestyle="--", label=f"p50 {part.replace('_', ' ')}")
    latency.set_ylabel("produce to committed row (ms)")
    latency.set_title(f"fraudstream at offered load ({result['detectors']} detector(s))")
    latency.legend()
    latency.grid(True, alpha=0.3)
    cores = result["cpu_cores_at_rate"]
    for name in cores[keys[0]]:
        values = [cores[key][name] for key in keys]
        if name == TOTAL:
            cpu.plot(rates, values, marker="o", linewidth=2.5, color="black", label="stack total")
        else:  # the load generator dotted: not part of the stack's total
            cpu.plot(rates, values, marker="o", linestyle=":" if name == LOAD_GENERATOR else "-", label=name)
    cpu.set_ylabel("CPU (cores)")
    cpu.set_xlabel("offered rate (transactions/s)")
    cpu.grid(True, alpha=0.3)
    per_tx = cpu.twinx()
    per_tx.plot(rates, [result["cpu_ms_per_tx_at_rate"][key] for key in keys], "k--", marker="x")
    per_tx.set_ylabel("stack CPU ms per transaction (dashed)")
    cpu.legend(fontsize="small", loc="upper left")
    if len(rates) > 1:
        cpu.set_xscale("log")
    cpu.set_xticks(rates, [f"{rate:,.0f}" for rate in rates])
    cpu.minorticks_off()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
