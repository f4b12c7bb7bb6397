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
    peer_rows=2000,
    transport_rows=20_000,
)
STACK = {"broker", "postgres", "detector", "sink"}


AT_RATE = (
    "latency_ms",
    "latency_parts_ms",
    "achieved_tps_at_rate",
    "cpu_cores_at_rate",
    "cpu_ms_per_tx_at_rate",
    "detector_transactions_per_s_at_rate",
    "detector_cpu_ms_per_batch_at_rate",
)


def assert_cores(cores: dict[str, float], names: set[str]) -> None:
    """Every process of the stack measured, and the total theirs (the load generator left out)."""
    assert set(cores) == names | {"total"}
    assert all(value >= 0 for value in cores.values())
    assert cores["total"] == pytest.approx(sum(cores[name] for name in STACK), abs=0.003)
    assert cores["total"] > 0


def pop_peer(result: dict) -> dict:
    """The peer's figures, without their prefix, taken out of ``result``."""
    prefix = "peer_quixstreams_"
    return {key.removeprefix(prefix): result.pop(key) for key in [k for k in result if k.startswith(prefix)]}


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
    limits, ratios, peer = result.pop("limits"), result.pop("ratios"), pop_peer(result)
    assert result.pop("rules") == 0
    assert set(result) == {
        "rows", "detectors", "sinks", "brokers", "replication_factor",
        "e2e_tps", "detector_tps", "sink_tps", "baseline_tps", "ratio_vs_baseline"
    }  # fmt: skip
    assert all(value > 0 for value in result.values())
    assert set(limits) == {"transport", "pass_through_tps", "predict_tps"}
    assert set(limits["transport"]) == {"message_bytes", "producer_tps", "consumer_tps"}
    assert all(value > 0 for value in [*limits["transport"].values(), *list(limits.values())[1:]])
    transport = min(limits["transport"]["producer_tps"], limits["transport"]["consumer_tps"])
    assert ratios["detector_vs_transport"] == pytest.approx(result["detector_tps"] / transport, rel=1e-3)
    assert ratios["detector_vs_pass_through"] == pytest.approx(
        result["detector_tps"] / limits["pass_through_tps"], rel=1e-3
    )
    assert ratios["detector_vs_predict"] == pytest.approx(
        result["detector_tps"] / limits["predict_tps"], rel=1e-3
    )
    assert ratios["e2e_vs_peer"] == pytest.approx(result["e2e_tps"] / peer["tps"], rel=1e-3)
    assert peer["max_score_diff"] < 1e-6  # the same features and model as offline scoring
    (peer_latency,) = peer["latency_ms"].values()
    assert set(peer["latency_ms"]) == {"500"}  # the highest rate up to 1,000 tx/s
    assert 0 < peer_latency["p50"] <= peer_latency["p95"] <= peer_latency["p99"] <= peer_latency["max"]
    assert set(peer["cpu_cores"]["500"]) == {"broker", "peer", "total"}
    assert ratios["peer_p99_vs_p99"] == pytest.approx(
        peer_latency["p99"] / at_rate["latency_ms"]["500"]["p99"], rel=1e-2
    )
    ratio = result["e2e_tps"] / result["baseline_tps"]  # of the rounded figures
    assert result["ratio_vs_baseline"] == pytest.approx(ratio, rel=1e-3)
    for figures in at_rate.values():
        assert set(figures) == {"200", "500"}
    for key, latency in at_rate["latency_ms"].items():
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        # Each part is a share of every row's latency, so each of its percentiles is within the total's.
        for part in at_rate["latency_parts_ms"][key].values():
            assert 0 <= part["p50"] <= part["p95"] <= part["p99"]
            assert all(part[percentile] <= latency[percentile] for percentile in ("p50", "p95", "p99"))
        assert at_rate["achieved_tps_at_rate"][key] > 0
        assert_cores(at_rate["cpu_cores_at_rate"][key], STACK | {"load_generator"})
        assert at_rate["cpu_ms_per_tx_at_rate"][key] > 0
        # The detectors' own batch counters: at least a transaction a second, at most one per message.
        transactions = at_rate["detector_transactions_per_s_at_rate"][key]
        assert 1 <= transactions <= at_rate["achieved_tps_at_rate"][key]
        assert at_rate["detector_cpu_ms_per_batch_at_rate"][key] > 0
    assert_cores(idle, STACK)
    assert result["rows"] == SMALL.rows
    assert any(line.startswith("baseline") for line in progress)
    topics = kafka.admin(stack_settings).list_topics(timeout=10).topics
    assert [topic for topic in topics if "bench-" in topic] == []
    assert row_count(stack_settings) == rows_before
