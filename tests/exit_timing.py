"""The duration of a child process's exit alone, without its interpreter start-up or its work.

The child prints ``EXITING <time.monotonic()>`` as its last act (``print("EXITING",
time.monotonic(), flush=True)``); the parent reads ``time.monotonic()`` once the process is
over. The monotonic clock is system-wide (CLOCK_MONOTONIC on Linux), so the two readings
compare across processes on one machine. On a loaded machine, start-up and imports alone can
take seconds: an exit budget is not charged with them.
"""

from __future__ import annotations

import subprocess


def exit_seconds(result: subprocess.CompletedProcess[str], ended: float) -> float:
    """Seconds from the child's last ``EXITING`` line to ``ended``, when its process was over."""
    marks = [line for line in result.stdout.splitlines() if line.startswith("EXITING ")]
    assert marks, result.stdout + result.stderr
    return ended - float(marks[-1].split()[1])
