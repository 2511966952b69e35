"""Values typed by users, understood the same way by every command and option.

A sampler by any of its names (A1111, ComfyUI, diffusers), a model by its label or its
source, steps as `8` or `8 steps`, a GPU by part of its name. A value that matches nothing
is an error that lists what the results hold, with a "did you mean" where one is close.
"""

from __future__ import annotations

import difflib

import pandas as pd

from ..errors import DiffbenchError
from ..rules import axes
from .tables import AXIS_COLUMNS, axis_column, key_text


def axis_names() -> list[str]:
    """What users may name: the setting columns, and the names people compare by (gpu, host, dtype)."""
    return sorted(set(AXIS_COLUMNS) | {c for c in axes.SETTING_COLUMNS if not c.startswith("runtime_")} | {"host"})


class UnknownValue(DiffbenchError, ValueError):
    """An axis or a value that is not in the results: the message lists what is."""


def _suggest(given: str, known: list[str]) -> str:
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[c] for c in difflib.get_close_matches(given.lower(), list(lowered), n=1, cutoff=0.6)]
    return f"; did you mean '{close[0]}'?" if close else ""


def _listing(values: list[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def resolve_axis(axis: str, frame: pd.DataFrame) -> str:
    """The column of a user-named axis, or UnknownValue naming the axes there are."""
    column = axis_column(axis.strip())
    if column in frame.columns:
        return column
    known = sorted(name for name in axis_names() if axis_column(name) in frame.columns)
    raise UnknownValue(f"unknown axis '{axis}' (these results have: {_listing(known, 40)}){_suggest(axis, known)}")


def _sampler_keys(name: str) -> set[str]:
    from ..rules import samplers
    from ..rules.families import FAMILIES

    keys = set()
    for family in FAMILIES:
        try:
            keys.add(samplers.resolve(name, family).key)
        except samplers.SamplerError:
            continue
    return keys


def resolve_value(axis: str, given: str, frame: pd.DataFrame, unique: bool = False) -> list[str]:
    """The values (as text, as the results hold them) that `given` names on `axis`.

    `unique`: exactly one must match (a baseline); several is an error naming them.
    """
    column = resolve_axis(axis, frame)
    present = list(dict.fromkeys(key_text(frame[column]))) if not frame.empty else []
    text = given.strip()
    matches = [v for v in present if v == text] or [v for v in present if v.lower() == text.lower()]
    if not matches and column == "steps":
        number = text.lower().removesuffix("steps").strip()
        matches = [v for v in present if v == number]
    if not matches and column == "sampler":
        keys = _sampler_keys(text)
        matches = [v for v in present if v in keys]
    if not matches and column == "model" and "source" in frame:
        # by source: in full (builtin:tiny-sd, owner/name) or by its last part (tiny-sd, name)
        sources = key_text(frame["source"])
        tails = sources.str.rsplit("/", n=1).str[-1].str.rsplit(":", n=1).str[-1]
        by_source = frame[(sources == text) | (tails.str.lower() == text.lower())]
        matches = list(dict.fromkeys(key_text(by_source["model"])))
    if not matches and column in {"hardware", "hostname"}:
        matches = [v for v in present if text.lower() in v.lower()]
    if not matches:
        raise UnknownValue(f"{axis} '{given}' is not in these results (they have: {_listing(present)})"
                           f"{_suggest(text, present)}")
    if unique and len(matches) > 1:
        raise UnknownValue(f"{axis} '{given}' matches several values ({_listing(matches)}): name one")
    return matches
