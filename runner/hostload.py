"""How busy the machine was with work other than the cell: a loaded 2-core box slows backends unequally.

CPU time the whole machine spent busy (/proc/stat: user, nice, system, irq, softirq; not idle or iowait, and not
steal, which is the hypervisor's, reported apart) minus what belongs to the measurement itself, as a share of all
cores over the cell's wall time:
- the cell: the larger of the worker's own count and the rusage of reaped children (the latter includes the
  interpreter's teardown after the worker counted: 0.75 s of CPU for a TensorFlow smoke cell here, 0.43 s for
  JAX, 4-5 % of a 2-core machine over a 10 s cell);
- the runner's own CPU while it waited (its polling and progress display);
- kernel threads (kworkers, ksoftirqd, RCU: children of kthreadd), busy on behalf of everyone's I/O.
What remains is other processes. Before these corrections an idle 2-core VM showed 10-15 % "other CPU" on
smoke cells; the kernel threads measured 0.6 % and steal 1.3 % of the machine here. BUSY_THRESHOLD (20 %: more
than 0.4 of a core on 2 cores) leaves a wide margin above that residue and flags what matters: one competing
busy process takes 50 % of a 2-core machine. Reading the counters costs a few milliseconds per cell.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

from common.results import BUSY_THRESHOLD

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) seconds of the whole machine since boot."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return None
    fields += [0] * (8 - len(fields))
    steal = fields[7]
    return (sum(fields[:8]) - fields[3] - fields[4] - steal) / _TICK, steal / _TICK


def _kernel_threads_cpu() -> float:
    """CPU seconds of kthreadd (pid 2) and its children: the kernel's own threads."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                rest = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name == "2" or rest[1] == "2":
            total += int(rest[11]) + int(rest[12])
    return total / _TICK


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoadProbe:
    wall0: float
    cpu0: tuple[float, float] | None
    child0: float
    self0: float
    kernel0: float
    loadavg: list[float]

    @classmethod
    def start(cls) -> LoadProbe:
        return cls(time.perf_counter(), _cpu_seconds(), _children_cpu(), _self_cpu(), _kernel_threads_cpu(),
                   list(os.getloadavg()))

    def finish(self, cell_cpu_s: float | None = None) -> dict[str, object]:
        """`cell_cpu_s`: the worker's own count of its CPU time (any executor); reaped children's rusage is used
        where it is larger (a local worker, its teardown included)."""
        wall = time.perf_counter() - self.wall0
        cpu1 = _cpu_seconds()
        children = _children_cpu() - self.child0
        cell_cpu = children if cell_cpu_s is None else max(cell_cpu_s, children)
        ours = cell_cpu + (_self_cpu() - self.self0) + (_kernel_threads_cpu() - self.kernel0)
        other = steal = None
        if self.cpu0 is not None and cpu1 is not None and wall > 0:
            capacity = wall * (os.cpu_count() or 1)
            other = max(0.0, (cpu1[0] - self.cpu0[0] - ours) / capacity)
            steal = max(0.0, (cpu1[1] - self.cpu0[1]) / capacity)
        return {
            "other_cpu_share": None if other is None else round(other, 4),
            "steal_share": None if steal is None else round(steal, 4),
            "cell_cpu_s": round(cell_cpu, 3),
            "loadavg_before": [round(x, 2) for x in self.loadavg],
            "busy": other is not None and other > BUSY_THRESHOLD,
        }
