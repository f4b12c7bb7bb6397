"""`bench --repeat`: medians of every figure, nested ones too, with every run kept."""

from __future__ import annotations

from fraudstream.ops.bench import medians, rate_key


def run(e2e: float, p99: float, broker: float) -> dict:
    return {
        "e2e_tps": e2e,
        "detector_tps": 2 * e2e,
        "sink_tps": 3 * e2e,
        "baseline_tps": 10.0,
        "ratio_vs_baseline": e2e / 10.0,
        "latency_ms": {"1000": {"p50": 1.0, "p99": p99}},
        "cpu_cores_at_rate": {"1000": {"broker": broker, "total": broker + 0.5}},
        "cpu_ms_per_tx_at_rate": {"1000": broker},
        "limits": {
            "transport": {"message_bytes": 400.0, "producer_tps": 1000.0, "consumer_tps": 2000.0},
            "pass_through_tps": 500.0,
            "predict_tps": 4000.0,
        },
        "peer_quixstreams_tps": e2e / 4,
        "peer_quixstreams_latency_ms": {"1000": {"p50": 5.0, "p99": 3 * p99}},
        "peer_quixstreams_cpu_ms_per_tx": {"1000": 2 * broker},
    }


def test_medians_of_nested_figures_and_the_runs_kept():
    runs = [run(100.0, 9.0, 0.3), run(300.0, 5.0, 0.1), run(200.0, 7.0, 0.2)]

    result = medians(runs)

    assert result["e2e_tps"] == 200.0
    assert result["latency_ms"] == {"1000": {"p50": 1.0, "p99": 7.0}}
    assert result["cpu_cores_at_rate"]["1000"] == {"broker": 0.2, "total": 0.7}
    assert result["ratio_vs_baseline"] == 20.0
    assert result["ratios"] == {
        "e2e_vs_baseline": 20.0,
        "detector_vs_baseline": 40.0,
        "detector_vs_transport": 0.4,  # the slower of Kafka's producer and consumer
        "sink_vs_transport": 0.6,
        "e2e_vs_transport": 0.2,
        "pass_through_vs_transport": 0.5,
        "detector_vs_pass_through": 0.8,
        "detector_vs_predict": 0.1,
        "e2e_vs_peer": 4.0,
        "detector_vs_peer": 8.0,
        "peer_p99_vs_p99": 3.0,
        "peer_cpu_ms_per_tx_vs_cpu_ms_per_tx": 2.0,
    }
    assert result["runs"] == runs


def test_rate_keys_are_short():
    assert [rate_key(rate) for rate in (1000.0, 100.0, 2.5)] == ["1000", "100", "2.5"]
