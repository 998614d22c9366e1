"""How busy the machine was with work other than the cell: a loaded 2-core box slows backends unequally.

CPU time the whole machine spent busy (/proc/stat) minus the CPU time of the cell's own processes (as the
worker counted it, else rusage of reaped children), as a share of all cores over the cell's wall time.
Reading two counters costs nothing the cell would notice.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

BUSY_THRESHOLD = 0.10  # more than a tenth of the machine used by others: the figure is suspect
_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoadProbe:
    wall0: float
    busy0: float | None
    child0: float
    loadavg: list[float]

    @classmethod
    def start(cls) -> LoadProbe:
        return cls(time.perf_counter(), _busy_seconds(), _children_cpu(), list(os.getloadavg()))

    def finish(self, cell_cpu_s: float | None = None) -> dict[str, object]:
        """`cell_cpu_s`: the cell's CPU time where it is not a reaped child of this process (a container, a
        scheduler's job, or the worker's own count); by default the rusage of reaped children."""
        wall = time.perf_counter() - self.wall0
        busy1 = _busy_seconds()
        cell_cpu = _children_cpu() - self.child0 if cell_cpu_s is None else cell_cpu_s
        other = None
        if self.busy0 is not None and busy1 is not None and wall > 0:
            other = max(0.0, (busy1 - self.busy0 - cell_cpu) / (wall * (os.cpu_count() or 1)))
        return {
            "other_cpu_share": None if other is None else round(other, 4),
            "cell_cpu_s": round(cell_cpu, 3),
            "loadavg_before": [round(x, 2) for x in self.loadavg],
            "busy": other is not None and other > BUSY_THRESHOLD,
        }
