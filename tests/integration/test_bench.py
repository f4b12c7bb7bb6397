"""`fraudstream bench` on the real stack: every figure measured, and nothing of the run left behind."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from fraudstream.config import Settings
from fraudstream.ops import bench
from fraudstream.pipeline import kafka

pytestmark = pytest.mark.integration

SMALL = bench.BenchPlan(
    rows=50_000,
    latency_rates=(200.0, 500.0),
    latency_seconds=2,
    warm_up_seconds=1,
    baseline_rows=50,
    idle_seconds=1,
)
STACK = {"broker", "postgres", "detector", "sink"}


AT_RATE = ("latency_ms", "achieved_tps_at_rate", "cpu_cores_at_rate", "cpu_ms_per_tx_at_rate")


def assert_cores(cores: dict[str, float], names: set[str]) -> None:
    """Every process of the stack measured, and the total theirs (the load generator left out)."""
    assert set(cores) == names | {"total"}
    assert all(value >= 0 for value in cores.values())
    assert cores["total"] == pytest.approx(sum(cores[name] for name in STACK), abs=0.003)
    assert cores["total"] > 0


def row_count(settings: Settings) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetchval("SELECT count(*) FROM fraud_scores")
        finally:
            await connection.close()

    return asyncio.run(count())


def test_bench_measures_every_figure_and_leaves_nothing_behind(stack_settings):
    rows_before = row_count(stack_settings)
    progress: list[str] = []

    result = bench.run(stack_settings, SMALL, progress.append)

    at_rate = {key: result.pop(key) for key in AT_RATE}
    idle = result.pop("idle_cpu_cores")
    assert result.pop("rules") == 0
    assert set(result) == {
        "rows", "detectors", "e2e_tps", "detector_tps", "sink_tps", "baseline_tps", "ratio_vs_baseline"
    }  # fmt: skip
    assert all(value > 0 for value in result.values())
    ratio = result["e2e_tps"] / result["baseline_tps"]  # of the rounded figures
    assert result["ratio_vs_baseline"] == pytest.approx(ratio, rel=1e-3)
    for figures in at_rate.values():
        assert set(figures) == {"200", "500"}
    for key, latency in at_rate["latency_ms"].items():
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        assert at_rate["achieved_tps_at_rate"][key] > 0
        assert_cores(at_rate["cpu_cores_at_rate"][key], STACK | {"load_generator"})
        assert at_rate["cpu_ms_per_tx_at_rate"][key] > 0
    assert_cores(idle, STACK)
    assert result["rows"] == SMALL.rows
    assert any(line.startswith("baseline") for line in progress)
    topics = kafka.admin(stack_settings).list_topics(timeout=10).topics
    assert [topic for topic in topics if "bench-" in topic] == []
    assert row_count(stack_settings) == rows_before
