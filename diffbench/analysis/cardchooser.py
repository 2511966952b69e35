"""The card chooser: every card of the spec table ranked for one model's work, with no results.

For each card: the plain setting's time from counts, whether it fits (analysis/memoryneed.py), and
where it does not, the fastest setting that does (analysis/counted.py's fallbacks); energy per image
as the card's board power times the time (an upper bound: a card rarely draws its whole board power).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..hardware.gpus import GPUS, GpuSpec
from .counted import CountedAnswer, answers_with_fallbacks


@dataclass
class CardChoice:
    card: GpuSpec
    plain: CountedAnswer
    best: CountedAnswer | None  # the plain setting where it fits, else the fastest that does; None: nothing fits

    @property
    def energy_wh(self) -> float | None:
        """Watt-hours per image at the card's board power (an upper bound)."""
        return None if self.best is None or self.best.seconds is None else \
            self.card.board_power_w * self.best.seconds / 3600

    def to_json(self) -> dict[str, Any]:
        return {"card": self.card.name, "vram_gib": self.card.vram_gib, "plain": self.plain.to_json(),
                "best": None if self.best is None else self.best.to_json(),
                "energy_wh_per_image_at_most": self.energy_wh}


def choose_cards(preset: str, steps: int, settings: dict[str, Any],
                 cards: tuple[GpuSpec, ...] = GPUS) -> list[CardChoice]:
    """Every card for `preset` at `steps` under `settings`: fastest usable first, then those on which
    nothing fits."""
    choices = []
    for card in cards:
        plain, *fitting = answers_with_fallbacks(preset, steps, card, settings)  # fallbacks only where it does not fit
        timed = [a for a in fitting if a.seconds is not None]
        best: CountedAnswer | None = plain if not fitting and plain.fits == "yes" and plain.seconds is not None \
            else (timed[0] if timed else None)
        choices.append(CardChoice(card, plain, best))
    return sorted(choices, key=lambda c: (c.best is None, c.best.seconds if c.best and c.best.seconds else 0.0))
