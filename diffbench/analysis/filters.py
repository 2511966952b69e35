"""--filter AXIS=VALUE[,VALUE...] on results frames."""

from __future__ import annotations

import pandas as pd

from ..errors import DiffbenchError
from .tables import key_text
from .values import UnknownValue, resolve_axis, resolve_value


class FilterError(DiffbenchError, ValueError):
    """A filter that names no column or has no '='."""


def apply_filters(frame: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    """Keep rows whose AXIS has one of the given values, each understood as every command
    understands it (sampler by any name, steps as 8 or '8 steps', GPU by part of its name)."""
    for text in filters:
        if "=" not in text:
            raise FilterError(f"filter '{text}': expected AXIS=VALUE (e.g. model=sdxl or steps=20,30)")
        axis, values = text.split("=", 1)
        if frame.empty:
            continue
        try:
            column = resolve_axis(axis, frame)
            wanted = {match for value in values.split(",") if value.strip()
                      for match in resolve_value(axis, value, frame)}
        except UnknownValue as exc:
            raise FilterError(f"filter '{text}': {exc}") from None
        frame = frame[key_text(frame[column]).isin(wanted)]
    return frame
