"""The report's answer for cards the results did not measure: each measured GPU setting projected
onto a few common cards by the step model, or refused where its memory does not fit the card."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..hardware.gpus import find_gpu
from .costmodel import CostFit, fit_costs, fit_state, need_range, project

# From a 12 GB desktop card to the data centre: the cards people weigh a purchase or a rental between.
COMMON_CARDS = ("RTX 3060", "RTX 4070", "RTX 4090", "A100 80GB", "H100")
MOST_ROWS = 24  # a report of hundreds of settings shows the first ones; `estimate --gpu` answers for any


@dataclass(frozen=True)
class CardAnswer:
    card: str
    vram_gib: float
    seconds: float | None  # None when refused or not projectable
    bound: str | None
    refusal: str | None


@dataclass(frozen=True)
class ProjectedSetting:
    label: str
    measured_on: str
    steps: int
    measured_s: float
    answers: tuple[CardAnswer, ...]


def other_cards(frame: pd.DataFrame, cards: tuple[str, ...] = COMMON_CARDS,
                decomposed: list[CostFit] | None = None) -> list[ProjectedSetting]:
    """Every measured GPU setting of a counted architecture, at its most-measured step count,
    projected onto `cards` (the card it was measured on is left as measured)."""
    if frame.empty:
        return []
    targets = [spec for spec in (find_gpu(name) for name in cards) if spec is not None]
    rows = []
    for fit in decomposed if decomposed is not None else fit_costs(frame, decompose=True):
        if fit.architecture is None or find_gpu(str(fit.settings["hardware"])) is None or not fit.step_medians:
            continue
        steps = max(fit.step_medians, key=lambda n: (list(fit.step_counts).count(n), n))
        answers = []
        for target in targets:
            if find_gpu(str(fit.settings["hardware"])) == target:
                answers.append(CardAnswer(target.name, target.vram_gib, fit.step_medians[steps], "measured", None))
                continue
            if fit.unsupported_on(target) is not None:
                answers.append(CardAnswer(target.name, target.vram_gib, None, None, "no bf16 tensor cores"))
                continue
            projected = project(fit, target)
            state = fit_state(projected, target.vram_gib) if projected is not None else "unknown"
            if projected is None:
                answers.append(CardAnswer(target.name, target.vram_gib, None, None, "not projectable"))
            elif state == "no":
                answers.append(CardAnswer(target.name, target.vram_gib, None, None, f"needs {need_range(projected)} GiB"))
            else:
                bound = projected.bound if state != "borderline" else f"{projected.bound}; memory borderline"
                answers.append(CardAnswer(target.name, target.vram_gib, projected.point(steps), bound, None))
        rows.append(ProjectedSetting(fit.label_without("hardware"), str(fit.settings["hardware"]), steps,
                                     fit.step_medians[steps],
                                     tuple(answers)))
        if len(rows) == MOST_ROWS:
            break
    return rows

