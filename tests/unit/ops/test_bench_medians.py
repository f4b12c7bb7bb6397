"""`bench --repeat`: medians of every figure, nested ones too, with every run kept."""

from __future__ import annotations

from fraudstream.ops.bench import medians, rate_key


def run(e2e: float, p99: float, broker: float) -> dict:
    return {
        "e2e_tps": e2e,
        "baseline_tps": 10.0,
        "ratio_vs_baseline": e2e / 10.0,
        "latency_ms": {"1000": {"p50": 1.0, "p99": p99}},
        "cpu_cores_at_rate": {"1000": {"broker": broker, "total": broker + 0.5}},
    }


def test_medians_of_nested_figures_and_the_runs_kept():
    runs = [run(100.0, 9.0, 0.3), run(300.0, 5.0, 0.1), run(200.0, 7.0, 0.2)]

    result = medians(runs)

    assert result["e2e_tps"] == 200.0
    assert result["latency_ms"] == {"1000": {"p50": 1.0, "p99": 7.0}}
    assert result["cpu_cores_at_rate"]["1000"] == {"broker": 0.2, "total": 0.7}
    assert result["ratio_vs_baseline"] == 20.0
    assert result["runs"] == runs


def test_rate_keys_are_short():
    assert [rate_key(rate) for rate in (1000.0, 100.0, 2.5)] == ["1000", "100", "2.5"]
