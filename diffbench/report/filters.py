"""--filter AXIS=VALUE[,VALUE...] on results frames."""

from __future__ import annotations

import pandas as pd

from ..analysis.frames import axis_column, key_text


class FilterError(ValueError):
    """A filter that names no column or has no '='."""


def apply_filters(frame: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    """Keep rows whose column equals one of the given values (compared as text)."""
    for text in filters:
        if "=" not in text:
            raise FilterError(f"filter '{text}': expected AXIS=VALUE (e.g. model=sdxl or steps=20,30)")
        axis, values = text.split("=", 1)
        column = axis_column(axis.strip())
        if frame.empty:
            continue
        if column not in frame:
            known = ", ".join(sorted(c for c in frame.columns if not c.startswith(("phase_", "step_s"))))
            raise FilterError(f"filter '{text}': no column '{axis}' in these results (known: {known})")
        wanted = {v.strip() for v in values.split(",")}
        if column == "sampler":  # 'Euler' or 'DPM++ 2M Karras' select the canonical names results hold
            wanted |= _sampler_keys(wanted)
        frame = frame[key_text(frame[column]).isin(wanted)]
    return frame


def _sampler_keys(names: set[str]) -> set[str]:
    from .. import samplers

    keys = set()
    for name in names:
        for family in samplers.MODEL_FAMILY_KIND:
            try:
                keys.add(samplers.resolve(name, family).key)
            except samplers.SamplerError:
                continue
    return keys
