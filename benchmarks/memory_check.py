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

from diffbench.analysis.counted import FAMILY_OF_PRESET
from diffbench.analysis.memoryneed import ACTIVATION_FACTOR, memory_need
from diffbench.hardware.published_memory import PUBLISHED_MEMORY
from diffbench.measure.workload import CFG_FAMILIES, count_workload
from diffbench.models.synthetic import SYNTHETIC

GIB = 2**30


def main() -> None:
    print(f"activation factor {ACTIVATION_FACTOR}")
    print(f"{'setting':52} {'figure':>7} {'counted':>8} {'ratio':>6} {'phase':>14}  source")
    logs, held_out = [], []
    for figure in PUBLISHED_MEMORY:
        family = FAMILY_OF_PRESET[figure.model]
        guidance = SYNTHETIC[figure.model].defaults["guidance_scale"] if figure.guidance_scale is None \
            else figure.guidance_scale
        workload = count_workload(figure.model, figure.resolution, 1, figure.dtype,
                                  guided=guidance > 1 and family in CFG_FAMILIES)
        need = memory_need(workload, family, figure.offload, figure.quantize)
        ratio = need.allocated_gib / figure.allocated_gib
        (logs if figure.fitted else held_out).append(math.log(ratio))
        label = f"{figure.model} {figure.resolution} {figure.dtype} offload={figure.offload} quantize={figure.quantize}"
        print(f"{label:52} {figure.allocated_gib:7.2f} {need.allocated_gib:8.2f} {ratio:6.3f} {need.phase:>14}  "
              f"{'fitted, ' if figure.fitted else ''}{figure.source.split(',')[0]}")
    rms = math.sqrt(sum(x * x for x in held_out) / len(held_out))
    print(f"held-out figures: {len(held_out)}, ratio min {math.exp(min(held_out)):.3f} max "
          f"{math.exp(max(held_out)):.3f}, log RMS {rms:.3f}; fitted: {len(logs)}")


if __name__ == "__main__":
    main()
