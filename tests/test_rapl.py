"""CPU package energy from RAPL, against a powercap tree laid out as Linux lays it out (CI has none)."""

from __future__ import annotations

from pathlib import Path

from diffbench.measure.rapl import RaplCounter


def _domain(root: Path, name: str, energy: int, wrap: int = 262_143_328_850) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "energy_uj").write_text(f"{energy}\n")
    (folder / "max_energy_range_uj").write_text(f"{wrap}\n")
    return folder


def test_package_energy_sums_packages_and_survives_a_wrap(tmp_path: Path) -> None:
    first = _domain(tmp_path, "intel-rapl:0", 1_000_000)
    second = _domain(tmp_path, "intel-rapl:1", 262_143_000_000)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a sub-domain (cores): part of package 0, not counted twice
    counter = RaplCounter(tmp_path)
    assert counter.available and [d.name for d in counter.domains] == ["intel-rapl:0", "intel-rapl:1"]
    counter.start()
    (first / "energy_uj").write_text("3500000\n")  # +2.5 J
    (second / "energy_uj").write_text("171150\n")  # wrapped: +(262_143_328_850 - 262_143_000_000 + 171_150) uJ
    assert abs(counter.stop() - (2.5 + 0.5)) < 1e-9


def test_no_readable_counter_means_no_energy(tmp_path: Path) -> None:
    assert not RaplCounter(tmp_path).available
    unreadable = _domain(tmp_path, "intel-rapl:0", 1)
    (unreadable / "energy_uj").write_text("not a number")
    assert not RaplCounter(tmp_path).available
