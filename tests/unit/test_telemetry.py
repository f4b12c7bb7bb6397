"""Progress lines sum the batches of an interval and start again from zero."""

from __future__ import annotations

from fraudstream.telemetry import ProgressWindow


def test_a_progress_window_sums_its_batches_and_resets_when_drained() -> None:
    window = ProgressWindow(interval_s=3600)
    window.add(consumed=100, written=98, dead=2)
    window.add(consumed=50, written=50, dead=0)

    assert not window.due()
    assert window.drain() == {"batches": 2, "consumed": 150, "written": 148, "dead": 2}
    assert window.drain() == {"batches": 0, "consumed": 0, "written": 0, "dead": 0}


def test_a_window_is_due_once_its_interval_has_passed() -> None:
    assert ProgressWindow(interval_s=0).due()
