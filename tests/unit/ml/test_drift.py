"""Reference distributions and PSI: the same data gives ~0, data shifted on purpose gives > 0.2."""

from __future__ import annotations

import numpy as np
import pytest

from fraudstream.ml.drift import MIN_ROWS, DriftMonitor, psi, reference, worst


@pytest.fixture
def training() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"amount": rng.lognormal(3.5, 0.8, 20_000), "hour_num": rng.integers(0, 24, 20_000)}


def test_the_reference_holds_decile_edges_and_the_training_shares(training):
    ref = reference(training, ["amount", "hour_num"], training["amount"] / 1000)
    amount = ref["distributions"]["amount"]
    assert len(amount["edges"]) == 9 and sum(amount["expected"]) == pytest.approx(1.0)
    assert all(share == pytest.approx(0.1, abs=0.001) for share in amount["expected"])
    assert set(ref["distributions"]) == {"amount", "hour_num", "score"}


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift(training):
    ref = reference(training, ["amount"], np.zeros(len(training["amount"])))["distributions"]["amount"]
    rng = np.random.default_rng(1)
    same = rng.lognormal(3.5, 0.8, 5_000)
    edges = np.asarray(ref["edges"])
    counts = lambda values: np.bincount(np.searchsorted(edges, values, side="right"), minlength=10)  # noqa: E731
    assert psi(ref["expected"], counts(same)) < 0.02
    assert psi(ref["expected"], counts(same * 5)) > 1.0


def test_the_monitor_keeps_an_hour_and_a_day_and_needs_enough_rows(training):
    ref = reference(training, ["amount", "hour_num"], training["amount"] / 1000)
    monitor = DriftMonitor(ref)
    now = 1_000_000 * 60.0
    normal = {"amount": training["amount"][:5000], "hour_num": training["hour_num"][:5000]}
    monitor.observe(normal, normal["amount"] / 1000, now=now - 2 * 3600)  # two hours ago: in the day only
    shifted = {"amount": training["amount"][:MIN_ROWS] * 5, "hour_num": np.full(MIN_ROWS, 2)}
    assert monitor.psi(60, now=now) == {}
    monitor.observe(shifted, shifted["amount"] / 1000, now=now)

    hour, day = monitor.psi(60, now=now), monitor.psi(24 * 60, now=now)
    assert hour["amount"] > 0.2 and hour["hour_num"] > 0.2 and hour["score"] > 0.2
    assert day["amount"] < hour["amount"]
    assert worst(hour)[1] == max(hour.values())
    assert monitor.psi(60, now=now + 2 * 3600) == {}  # that hour has passed
