"""CPU time a benchmark's processes spend, per item."""

from __future__ import annotations

import contextlib

import psutil


class CpuMeter:
    """CPU seconds each process of the pipeline spends, between start and stop."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self._processes = processes
        self._start = {name: self._cpu(p) for name, p in processes.items()}
        self._last = dict(self._start)

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    def read(self) -> None:
        """Take each process's CPU time now: one that exits later keeps what was read last."""
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                self._last[name] = self._cpu(process)

    def per_item(self, items: int) -> dict[str, float]:
        """CPU microseconds per item, by process, since the meter was made."""
        self.read()
        return {
            name: (self._last[name] - self._start[name]) * 1e6 / items for name in self._processes
        }


def temporal_server() -> psutil.Process | None:
    """The Temporal dev server this process started, if any."""
    for child in psutil.Process().children(recursive=True):
        if "temporal" in child.name():
            return child
    return None


def cpu_line(cpu: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {micros:,.1f}" for name, micros in cpu.items())
    return f"  CPU per item (µs): {parts}; total {sum(cpu.values()):,.1f}"
