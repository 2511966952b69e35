"""The answer the report opens with: per model, each card's time per image at one step count,
whether it fits, and the setting that gets there.

The step count is the one the model was measured at most (the compared one); each setting's time
there comes from its cost fit (fixed + per evaluation x evaluations). A card the results measured
answers with its fastest measured setting; a common card they did not measure with the fastest
measured setting projected onto it that fits (analysis/costmodel.project, three fit states); where
none fits and the architecture is counted, with the fastest setting that fits from counts
(analysis/counted.py). Settings under `vram_limit` emulate another card and answer nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..hardware.gpus import GpuSpec, find_gpu
from .costmodel import CostFit, fit_costs, fit_state, project
from .othercards import COMMON_CARDS
from .projection import COUNTED_PRESETS
from .tables import key_text, measured, steps_text


@dataclass(frozen=True)
class AnswerRow:
    card: str
    vram_gib: float | None
    seconds: float | None
    fits: str  # yes, borderline, no; "measured" on the card that ran it
    setting: str
    source: str  # measured, projected, counts
    note: str = ""


@dataclass(frozen=True)
class ModelAnswer:
    model: str
    steps: int
    rows: tuple[AnswerRow, ...]
    note: str = ""  # said once for the whole table (why other cards are not answered)

    @property
    def title(self) -> str:
        return f"{self.model} at {steps_text(self.steps)}"


def model_answers(frame: pd.DataFrame, cards: tuple[str, ...] = COMMON_CARDS,
                  decomposed: list[CostFit] | None = None) -> list[ModelAnswer]:
    """One answer per model of `frame` (quiet generations with metrics); `decomposed` is
    fit_costs(frame, decompose=True) where the caller has it already."""
    data = measured(frame)
    if data.empty:
        return []
    every = decomposed if decomposed is not None else fit_costs(frame, decompose=True)
    answers = []
    for model, rows in data.groupby(key_text(data["model"]), sort=False):
        steps = _answer_steps(rows)
        fits = [f for f in every if str(f.settings.get("model")) == str(model)
                and not f.unreliable and not _emulated(f)]
        if not fits:
            continue
        projectable = any(f.architecture and find_gpu(str(f.settings["hardware"])) for f in fits)
        note = "" if projectable else _why_not_projected(str(model), fits)
        answers.append(ModelAnswer(str(model), steps, tuple(_rows(fits, steps, cards if projectable else ())), note))
    return answers


def _why_not_projected(model: str, fits: list[CostFit]) -> str:
    if any(f.architecture for f in fits):
        return (f"Other cards are not answered: {model} was measured on a CPU only, and the step model projects "
                f"from GPU measurements; diffbench estimate --model {fits[0].architecture} --gpu CARD answers "
                "any card from counted work.")
    return (f"Other cards are not answered: {model}'s architecture is not one whose work diffbench counts "
            f"(those are {', '.join(COUNTED_PRESETS)}).")


def _answer_steps(rows: pd.DataFrame) -> int:
    """The step count measured most (the larger of a tie: the one a user runs)."""
    counts = rows.groupby("steps")["cell_id"].nunique()
    return int(max(counts.index, key=lambda s: (counts[s], s)))


def _emulated(fit: CostFit) -> bool:
    limit = fit.settings.get("vram_limit")
    return isinstance(limit, str) and bool(limit)


def _rows(fits: list[CostFit], steps: int, cards: tuple[str, ...]) -> list[AnswerRow]:
    rows = []
    measured_on = list(dict.fromkeys(str(f.settings["hardware"]) for f in fits))
    for hardware in measured_on:
        here = [f for f in fits if str(f.settings["hardware"]) == hardware]
        at_steps = [f for f in here if steps in f.step_counts]  # measured at the answer's steps first
        # measured at the answer's steps: its measured median, the figure the settings table shows
        best = min(at_steps or here, key=lambda f: f.step_medians.get(steps, f.point(steps)))
        spec = find_gpu(hardware) if not hardware.startswith("CPU") else None
        note = "" if steps in best.step_counts else \
            f"measured at {', '.join(map(str, best.step_counts))} steps: {steps} by its fitted line"
        rows.append(AnswerRow(spec.name if spec else hardware, spec.vram_gib if spec else None,
                              best.step_medians.get(steps, best.point(steps)),
                              "yes", best.label_without("hardware"), "measured", note))
    targets = [spec for spec in (find_gpu(name) for name in cards) if spec is not None]
    seen = {find_gpu(h) for h in measured_on}
    for target in targets:
        if target not in seen:
            rows.append(_projected_row(fits, steps, target))
    return rows


def _projected_row(fits: list[CostFit], steps: int, target: GpuSpec) -> AnswerRow:
    usable = []
    projectable = False
    for fit in fits:
        projected = project(fit, target)
        if projected is not None:
            projectable = True
            state = fit_state(projected, target.vram_gib)
            if state != "no":
                usable.append((projected.point(steps), state, projected))
    if usable:
        seconds, state, projected = min(usable, key=lambda item: item[0])
        return AnswerRow(target.name, target.vram_gib, seconds, state, projected.label_without("hardware"),
                         "projected", f"from {projected.projected_from}")
    if not projectable:
        return AnswerRow(target.name, target.vram_gib, None, "-", "not projected: this architecture's work is not "
                         "counted (SD 1.5, SD 2.1, SDXL, SD3 and 3.5 Medium, FLUX.1 are), or it ran on a CPU", "-")
    counted = _from_counts(fits, steps, target)
    if counted is not None:
        return counted
    return AnswerRow(target.name, target.vram_gib, None, "no", "no measured setting fits", "projected")


def _from_counts(fits: list[CostFit], steps: int, target: GpuSpec) -> AnswerRow | None:
    """The fastest setting that fits `target` from counts, for a counted architecture."""
    from .counted import answers_with_fallbacks

    architecture = next((f.architecture for f in fits if f.architecture), None)
    if architecture is None:
        return None
    plain = next(f for f in fits if f.architecture)
    settings = {"resolution": plain.settings.get("resolution"), "dtype": plain.settings.get("runtime_dtype"),
                "guidance_scale": _number(plain.settings.get("guidance_scale"))}
    settings = {k: v for k, v in settings.items() if v is not None and v == v}
    if settings.get("dtype") not in (None, "fp16", "bf16", "fp32"):
        settings.pop("dtype")
    answers = [a for a in answers_with_fallbacks(architecture, steps, target, settings)[1:] if a.seconds is not None]
    if not answers:
        return None
    best = answers[0]
    # offloaded weights live in host RAM (FLUX in bf16: 31 GiB): the row says how much
    host = f"; its offloaded weights take {best.need.host_gib:.1f} GiB of host RAM" if best.need.host_gib else ""
    return AnswerRow(target.name, target.vram_gib, best.seconds, best.fits, best.label(), "counts",
                     f"no measured setting fits: the fastest that does, from counts{host}")


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number else None
