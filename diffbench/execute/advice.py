"""Typed warnings about results, each saying what to change (after hyperfine's habit).

The checks on one cell's repeats are shared by the runner (which stores them with the
results as they happen) and the report (which recomputes them for any merged set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

# A CPU worker getting less than this share of the cores it runs on was crowded out. Measured on
# the 2-core CI VM (tiny SD and SDXL, 8 steps): alone, a worker gets 0.985-0.99 of its cores (torch's
# threads spin in serial stretches); beside one busy process 0.63-0.64 (2.5-4.6x slower), and a
# single-thread worker beside two 0.65 (1.7x slower), all of which the old cut-off of 0.6 missed.
# At 0.85 a CPU-bound cell slowed by about 1.2x or more is flagged, with room below a quiet 0.985.
CPU_SHARE = 0.85
HIGH_VARIATION = 0.10  # coefficient of variation of seconds per image across repeats
SLOW_FIRST = 1.5  # first measured generation this many times the median of the rest


# The kinds `advise` computes from the data of any merged set: a report says these from the data,
# not from the lines a run stored (which an older version may have worded otherwise).
RECOMPUTED_KINDS = frozenset({"few repeats", "high variation", "slow first run", "drift", "clock states", "throttling"})


# What each kind means and what to do, said once where a report groups a kind's warnings.
KIND_EXPLANATIONS = {
    "throttling": "the GPU slowed itself (power or thermal limits) during these settings' generations: improve "
                  "cooling, raise the power limit, or pause between cells",
    "high variation": "repeats varied by more than 10%: close other programs, check for throttling, or add repeats",
    "slow first run": "the first measured generation was much slower than the rest: raise warmup, or set warmup_steady",
    "drift": "the repeats got steadily slower or faster in the order they ran: their unpaired comparisons are "
             "withheld; interleaved order pairs turns that ran side by side",
    "clock states": "the repeats came in long runs of fast and slow ones (the GPU held clock states): their unpaired "
                    "comparisons are withheld; interleaved order pairs turns that ran side by side",
    "noisy": "other work competed with the measurement: compare will not judge these without --allow-noisy",
}


@dataclass(frozen=True)
class Advice:
    kind: str
    subject: str
    message: str

    def text(self) -> str:
        return f"{self.kind}: {self.subject}: {self.message}"


def check_noise(subject: str, records: Sequence[dict[str, Any]], cores: int) -> list[Advice]:
    """'noisy' when something else competed with the measurement: the machine's load above its
    cores, the worker getting a small share of the CPU it asked for (CPU runs), or another
    process on the GPU. Such a cell's numbers are right for that moment, wrong for the question;
    `compare` will not judge them unless asked to."""
    loads = [r["load_avg_1m"] for r in records if r.get("load_avg_1m") is not None]
    found: list[str] = []
    if loads and max(loads) > cores + 1:
        found.append(f"load average up to {max(loads):.1f} on {cores} cores")
    runtime = (records[0].get("runtime") or {}) if records else {}
    threads = runtime.get("torch_threads")
    if str(runtime.get("device", "")).startswith("cpu") and threads:
        shares = [r["cpu_s"] / r["wall_s"] for r in records if r.get("cpu_s") is not None and r.get("wall_s")]
        usable = min(int(threads), cores)
        if shares and float(np.median(shares)) < CPU_SHARE * usable:
            cores_text = "the 1 core" if usable == 1 else f"the {usable} cores"
            found.append(f"the worker got {float(np.median(shares)):.2f} of {cores_text} it runs on")
    others = max((len(r.get("gpu_other_processes") or []) for r in records), default=0)
    if others:
        found.append(f"{others} other process(es) used the GPU")
    if not found:
        return []
    return [Advice("noisy", subject, "; ".join(found) + ": other work competed with the measurement; rerun on a "
                   "quiet machine (compare will not judge this cell without --allow-noisy)")]


def check_repeats(subject: str, seconds: Sequence[float], warmup: int = 0,
                  pilot: Sequence[float] = ()) -> list[Advice]:
    """Warnings from one cell's measured times, in repeat order (after `warmup` warm-ups; repeats:
    auto's `pilot` before them, seen by the slow-first check only)."""
    from ..rules.repeats import FEW_REPEATS, MIN_DECIDING
    from ..stats.timedependence import time_dependence

    times = np.asarray(seconds, dtype=float)
    found: list[Advice] = []
    if len(times) < MIN_DECIDING:
        found.append(Advice("few repeats", subject, f"only {len(times)} measured generation(s): {FEW_REPEATS}"))
    if len(times) < 3:  # too few to judge their spread at all
        return found
    variation = float(np.std(times) / np.mean(times)) if np.mean(times) else 0.0
    if variation > HIGH_VARIATION:
        found.append(Advice("high variation", subject,
                            f"repeats vary by {100 * variation:.0f}% (coefficient of variation): close other "
                            "programs, check for throttling, or add repeats"))
    every = np.concatenate([np.asarray(pilot, dtype=float), times])
    rest = float(np.median(every[1:]))
    if rest > 0 and every[0] > SLOW_FIRST * rest:
        remedy = (f"even after {warmup} warm-up(s): raise warmup, or set warmup_steady" if warmup
                  else "add a warm-up generation (warmup: 1)")
        where = "(of the pilot) " if len(pilot) else ""
        found.append(Advice("slow first run", subject, f"the first measured generation {where}took "
                                                       f"{every[0] / rest:.1f}x the others: {remedy}"))
    finding = time_dependence(times)
    if finding is not None:
        found.append(Advice(finding.kind, subject, finding.text() + ": its unpaired comparisons are withheld; "
                            "interleaved order (the default) pairs turns that ran side by side, which cancels this"))
    return found


def check_throttling(subject: str, telemetry: Sequence[dict[str, Any] | None]) -> list[Advice]:
    """A warning if the GPU slowed itself (power or thermal limits) during the cell."""
    reasons = sorted({r for t in telemetry if t for r in t.get("throttle_reasons", []) if t.get("throttled")})
    if not reasons:
        return []
    hottest = max((t.get("temperature_c_max") or 0 for t in telemetry if t), default=0)
    return [Advice("throttling", subject, f"the GPU slowed itself ({', '.join(reasons)}; up to {hottest:.0f} °C): "
                                          "improve cooling, raise the power limit, or pause between cells")]
