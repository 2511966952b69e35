"""How the counted memory need meets every published and measured peak.

    python benchmarks/memory_check.py

Counts each figure's setup on the meta device (parameters, linear layers, activation peaks of
text encoding, one denoiser call and the VAE decode: measure/workload.py) and prints the counted
allocated peak (analysis/memoryneed.py) beside the figure of hardware/published_memory.py, with the
activation factor each figure alone would need. `fitted` rows set ACTIVATION_FACTOR; the others
are held out.
"""

from __future__ import annotations

import math

from diffbench.analysis.counted import counted_peak
from diffbench.analysis.memoryneed import ACTIVATION_FACTOR
from diffbench.hardware.published_memory import PUBLISHED_MEMORY

GIB = 2**30


def main() -> None:
    print(f"activation factor {ACTIVATION_FACTOR}")
    print(f"{'setting':62} {'figure':>7} {'counted':>8} {'ratio':>6} {'phase':>14}  source")
    fitted, held_out, disputed, missed = [], [], [], []
    for figure in PUBLISHED_MEMORY:
        need, counted = counted_peak(figure)
        ratio = counted / figure.allocated_gib
        group = disputed if figure.disputed else missed if figure.count_misses else fitted if figure.fitted else held_out
        group.append(math.log(ratio))
        label = (f"{figure.model} {figure.resolution} {figure.dtype} x{figure.batch_size}"
                 f"{' sliced' if figure.vae_slicing else ''} offload={figure.offload} quantize={figure.quantize}")
        phase = "load" if counted > need.allocated_gib else need.phase
        tag = ("fitted, " if figure.fitted else "DISPUTED, " if figure.disputed else
               "MISSED, " if figure.count_misses else "")
        print(f"{label:62} {figure.allocated_gib:7.2f} {counted:8.2f} {ratio:6.3f} {phase:>14}  "
              f"{tag}{figure.source.split(':')[0].split(',')[0]}")
    rms = math.sqrt(sum(x * x for x in held_out) / len(held_out))
    print(f"held-out figures: {len(held_out)}, ratio min {math.exp(min(held_out)):.3f} max "
          f"{math.exp(max(held_out)):.3f}, log RMS {rms:.3f}; fitted: {len(fitted)}; disputed: {len(disputed)} "
          f"(ratios {', '.join(f'{math.exp(x):.2f}' for x in disputed)}); known misses of the count: {len(missed)} "
          f"(ratios {', '.join(f'{math.exp(x):.2f}' for x in missed)})")


if __name__ == "__main__":
    main()
