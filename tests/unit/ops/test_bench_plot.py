"""`bench --plot`: the curve is drawn from a bench result, with one rate or several."""

from __future__ import annotations

import matplotlib.image
import pytest

from fraudstream.ops.bench_plot import plot_curve


def result(rates: list[str]) -> dict:
    return {
        "detectors": 1,
        "latency_ms": {r: {"p50": 10.0 * i, "p95": 20.0 * i, "p99": 30.0 * i, "max": 40.0 * i}
                       for i, r in enumerate(rates, 1)},
        "latency_parts_ms": {r: {"input_to_score": {"p50": 6.0 * i}, "score_to_row": {"p50": 4.0 * i}}
                             for i, r in enumerate(rates, 1)},
        "cpu_cores_at_rate": {r: {"broker": 0.1 * i, "detector": 0.2, "load_generator": 0.05, "total": 0.3}
                              for i, r in enumerate(rates, 1)},
        "cpu_ms_per_tx_at_rate": {r: 1.0 / i for i, r in enumerate(rates, 1)},
    }  # fmt: skip


@pytest.mark.parametrize("rates", [["1000"], ["5000", "100", "1000"]])
def test_the_curve_is_a_png_image(tmp_path, rates):
    path = tmp_path / "plots" / "curve.png"

    plot_curve(result(rates), path)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 500 and height > 500
