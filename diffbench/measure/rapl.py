"""CPU package energy from Linux's RAPL counters (Intel, and AMD Zen through the same interface).

/sys/class/powercap/intel-rapl:N/energy_uj counts microjoules per CPU package and wraps at
max_energy_range_uj. It is package energy (cores, caches, memory controller), not the whole
machine's, and results say so. Many machines do not expose it (VMs, or only root may read it):
then there is no CPU energy, never an estimate.
"""

from __future__ import annotations

from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class RaplCounter:
    """Sums the package domains' counters between `start` and `stop`, wrap-around included."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self.domains = [d for d in sorted(root.glob("intel-rapl:*")) if d.name.count(":") == 1
                        and self._read(d / "energy_uj") is not None]
        self._start: list[int | None] = []

    @staticmethod
    def _read(path: Path) -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def start(self) -> None:
        self._start = [self._read(d / "energy_uj") for d in self.domains]

    def stop(self) -> float | None:
        """Joules used since `start` by every package, or None if a counter could not be read."""
        total = 0
        for domain, begin in zip(self.domains, self._start):
            end = self._read(domain / "energy_uj")
            if begin is None or end is None:
                return None
            if end < begin:  # the counter wrapped
                end += self._read(domain / "max_energy_range_uj") or 0
            total += end - begin
        return total / 1e6
