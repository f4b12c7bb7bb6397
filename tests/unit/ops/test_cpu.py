"""CPU accounting of the bench: a process tree's time, reaped children included; cores and totals."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fraudstream.ops.cpu import LOAD_GENERATOR, TOTAL, CpuUse, CpuWindow, Tracked, cpu_seconds

# Waits for a line, runs a child that burns CPU and reports its own CPU seconds, reaps it, says so,
# then waits for another line before exiting.
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    sys.stdin.readline()
    child = "import os\\nx = 0\\nfor i in range(3_000_000): x += i\\nt = os.times()\\nprint(t.user+t.system)"
    burnt = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout
    print(burnt.strip(), flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def parent():
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    yield process
    process.kill()
    process.wait()


def test_a_tree_counts_the_children_it_reaped_and_a_lone_process_does_not(parent):
    tree = Tracked("tree", (parent.pid,))
    alone = Tracked("alone", (parent.pid,), tree=False)
    window = CpuWindow([tree, alone]).start()

    parent.stdin.write("go\n")
    parent.stdin.flush()
    child_seconds = float(parent.stdout.readline())
    use = window.stop()

    assert child_seconds > 0
    assert use.seconds["tree"] >= child_seconds - 0.02  # clock ticks of 10 ms on either side
    assert use.seconds["alone"] < child_seconds
    assert use.wall > 0


def test_a_process_that_is_gone_counts_nothing():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()

    assert cpu_seconds(Tracked("gone", (process.pid,))) == 0.0


def test_cores_and_the_stack_total_leave_the_load_generator_out():
    use = CpuUse({"broker": 3.0, "detector": 1.0, LOAD_GENERATOR: 2.0}, wall=4.0)

    assert use.cores() == {"broker": 0.75, "detector": 0.25, LOAD_GENERATOR: 0.5, TOTAL: 1.0}
    assert use.ms_per_message(2000) == 2.0  # 4 s of the stack over 2,000 messages
