"""Drift of what the detector scores, as Prometheus gauges ``fraudstream_psi{feature, window}``.

The detector counts each batch's features and scores in the champion's reference bins (``ml.drift``):
the features are in its hands already, computed once per batch, and counting them costs one
``searchsorted`` per feature. Another process could not do it without recomputing every customer's
history. The PSI of the last hour and day is recomputed every ``interval_s`` (not per batch), in the
detector's own thread; each detector measures the partitions it owns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from numpy.typing import ArrayLike
from prometheus_client import Gauge

from fraudstream.ml.drift import WINDOWS, DriftMonitor, worst

PSI = Gauge("fraudstream_psi", "population stability index against the training data", ["feature", "window"])


class DriftGauges:
    """Feeds the champion's ``DriftMonitor`` and publishes its PSI per window."""

    def __init__(self, warning: float, interval_s: float = 10.0) -> None:
        self.warning = warning
        self.interval_s = interval_s
        self._monitor: DriftMonitor | None = None
        self._updated = 0.0
        self._psi: dict[str, dict[str, float]] = {}

    def forget(self) -> None:
        """A new champion: its own reference (or none), so the gauges start over."""
        self._monitor, self._updated, self._psi = None, 0.0, {}
        PSI.clear()

    def observe(self, monitor: DriftMonitor, features: Mapping[str, ArrayLike], scores: ArrayLike) -> None:
        self._monitor = monitor
        monitor.observe(features, scores)
        if time.monotonic() - self._updated >= self.interval_s:
            self.update()

    def update(self) -> None:
        """Recompute the PSI of every window now."""
        if self._monitor is None:
            return
        self._updated = time.monotonic()
        self._psi = {window: self._monitor.psi(minutes) for window, minutes in WINDOWS.items()}
        for window, values in self._psi.items():
            for feature, value in values.items():
                PSI.labels(feature, window).set(value)

    def summary(self) -> dict[str, object]:
        """For /healthz: each window's PSI by feature, the largest, and whether any passes the warning."""
        if self._monitor is None:
            return {"psi": {}, "warning": None}
        warnings = []
        for window, values in self._psi.items():
            largest = worst(values)
            if largest is not None and largest[1] > self.warning:
                warnings.append(
                    f"PSI {largest[1]:.2f} of {largest[0]} over the last {window} > {self.warning}"
                )
        rounded = {w: {f: round(v, 4) for f, v in values.items()} for w, values in self._psi.items()}
        return {"psi": rounded, "warning": "; ".join(warnings) or None}
