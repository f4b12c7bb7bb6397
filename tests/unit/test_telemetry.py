"""Progress lines sum the batches of an interval and start again from zero; a process of several
consumers is ready only when all are."""

from __future__ import annotations

from fraudstream import telemetry
from fraudstream.telemetry import ProgressWindow, Readiness, ReadinessGroup


def test_a_progress_window_sums_its_batches_and_resets_when_drained() -> None:
    window = ProgressWindow(interval_s=3600)
    window.add(consumed=100, written=98, dead=2)
    window.add(consumed=50, written=50, dead=0)

    assert not window.due()
    assert window.drain() == {"batches": 2, "consumed": 150, "written": 148, "dead": 2}
    assert window.drain() == {"batches": 0, "consumed": 0, "written": 0, "dead": 0}


def test_a_window_is_due_once_its_interval_has_passed_and_again_after_a_drain(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(telemetry.time, "monotonic", lambda: clock[0])
    window = ProgressWindow(interval_s=10, started=clock[0])

    due = []
    for now in (1009.9, 1010.0, 1015.0):
        clock[0] = now
        due.append(window.due())
    window.drain()
    for now in (1024.9, 1025.0):
        clock[0] = now
        due.append(window.due())

    assert due == [False, True, True, False, True]


def test_a_readiness_group_is_ready_only_when_every_part_is() -> None:
    sink, labels = Readiness(), Readiness()
    group = ReadinessGroup(sink, {"labels": labels})
    sink.batch_done()

    report = group.report()
    assert report["ready"] is False and report["detail"] == "ok"
    assert report["labels"] == {
        "ready": False, "assigned_partitions": [], "last_batch_age_s": None, "detail": "starting"
    }  # fmt: skip

    labels.batch_done()
    assert group.report()["ready"] is True
