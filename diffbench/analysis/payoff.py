"""Is torch.compile worth it for N images? From cells measured with and without compile, all
else equal: the cold call's compile time against the per-image saving of the warm calls."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .compare import context_groups
from .tables import measured, varying


@dataclass
class CompilePayoff:
    label: str
    host: str
    compile_s: float  # compiling inside the cold call(s) of the compiled cell
    eager_s: float  # median seconds per image without compile
    compiled_s: float  # median seconds per image with compile, warm
    break_even_images: float | None  # None: compile never pays off (not faster warm)

    def sentence(self) -> str:
        what = self.label if self.label != "all" else "the measured setting"
        if self.break_even_images is None:
            return (f"compile: {what} on {self.host}: not faster once warm ({self.compiled_s:.3f} vs "
                    f"{self.eager_s:.3f} s/image), so its {self.compile_s:.1f} s of compiling never pays off.")
        images = math.ceil(self.break_even_images - 1e-9)  # 30 s / 0.2 s is 150, not 150.00000000000003
        return (f"compile: {what} on {self.host}: {self.compile_s:.1f} s of compiling, then "
                f"{self.eager_s - self.compiled_s:.3f} s saved per image ({self.compiled_s:.3f} vs {self.eager_s:.3f}): "
                f"worth it from {images} images on.")


def compile_payoffs(frame: pd.DataFrame) -> list[CompilePayoff]:
    if frame.empty or "compile" not in frame or frame["compile"].nunique(dropna=True) < 2:
        return []
    data = measured(frame)
    others = [c for c in varying(data) if c not in {"compile"}]
    found = []
    for label, group in context_groups(data, others):
        compiled = group[group["compile"].astype(bool)]
        eager = group[~group["compile"].astype(bool)]
        if compiled.empty or eager.empty or "compile_s" not in frame:
            continue
        cells = set(compiled["cell_id"])
        # the compile happened in the cell's first generations, warm-ups included
        cold = frame[frame["cell_id"].isin(cells) & frame["hostname"].isin(group["hostname"].unique())
                     & (frame["status"] == "ok")]
        compile_s = float(cold["compile_s"].astype(float).fillna(0).sum())
        eager_s = float(eager["s_per_image"].median())
        compiled_s = float(compiled["s_per_image"].median())
        saving = eager_s - compiled_s
        found.append(CompilePayoff(label, str(group["hostname"].iloc[0]), compile_s, eager_s, compiled_s,
                                   compile_s / saving if saving > 0 else None))
    return found
