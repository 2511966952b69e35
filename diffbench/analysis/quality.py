"""Where more steps stop paying: each step count's image against the image at a reference step count.

Images of the same model, sampler, prompt, seed, resolution and hardware differ only by their step
count, so their structural similarity (SSIM, scikit-image) to the image at the most steps measured
shows how fast the picture converges. Computed from the thumbnails stored with the results (at most
256 px), so it judges composition and structure, not fine texture. Each picture is also compared
with its own sampler's most-steps picture (`ssim_own`): an ancestral sampler converges elsewhere.
Across models, pixels say nothing: the CLIP score (measure/clipscore.py) compares those.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..rules import axes
from .tables import key_text

# A LoRA changes the picture on purpose, so each LoRA setting is a picture of its own; a step
# cache only approximates it, so cached and uncached settings share one.


def _image(source: tuple[str, str]) -> np.ndarray | None:
    """A stored thumbnail as RGB floats, read only through the results file's checked image folder."""
    from PIL import Image

    from ..contract.files import safe_image

    data = safe_image(Path(source[0]), source[1])
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two RGB images in [0, 1] (1 = identical)."""
    from skimage.metrics import structural_similarity

    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    window = min(7, min(a.shape[:2]) - (1 - min(a.shape[:2]) % 2))
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0, win_size=max(3, window)))


def image_paths(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, host) with a stored image: its settings and the image's path."""
    if "image" not in frame:
        return pd.DataFrame()
    rows = frame[frame["image"].notna()].drop_duplicates(["cell_id", "hostname"]).copy()
    rows["image_path"] = list(zip(rows["file"], rows["image"].astype(str)))  # opened by _image
    return rows


REFERENCE_SAMPLERS = ("default", "euler")  # preferred as the reference among equally many steps


def _named_reference(group: pd.DataFrame, named: str) -> pd.Series | None:
    """The row a suite named as its quality reference ('sampler=euler,steps=50'), or None when
    this picture was not measured at that setting (then it gets no quality figure at all)."""
    from .values import UnknownValue, resolve_value

    chosen = group
    for part in named.split(","):
        axis, _, value = part.partition("=")
        if axis not in chosen:
            return None
        try:
            matches = resolve_value(axis, value, chosen)
        except UnknownValue:
            return None
        chosen = chosen[key_text(chosen[axis]).isin(matches)]
    return chosen.iloc[0] if not chosen.empty else None


def _reference(group: pd.DataFrame) -> pd.Series | None:
    """The suite's named reference where it gave one; else the most expensive setting of the
    picture: the most steps, the model's own sampler first."""
    if "quality_reference" in group:
        named = group["quality_reference"].dropna()
        if not named.empty:
            return _named_reference(group, str(named.iloc[0]))
    if "cache" in group:  # a step cache approximates: the reference is the picture computed in full
        uncached = group[key_text(group["cache"]).isin(["none", "-"])]
        group = uncached if not uncached.empty else group
    steps = group["steps"].astype(int)
    best = group[steps == steps.max()]
    preferred = best[best["sampler"].astype(str).isin(REFERENCE_SAMPLERS)] if "sampler" in best else best
    return (preferred if not preferred.empty else best).iloc[0]


def step_quality(frame: pd.DataFrame) -> pd.DataFrame:
    """For every stored image: SSIM against one common reference image of the same picture.

    A picture is a model, prompt, seed and resolution (with everything else that changes the
    image but not the sampler or the step count); its reference is the most expensive setting
    measured for it: the most steps, the model's own sampler first. Every sampler and step count
    is compared with that one image, never with a best of its own. Columns: cell_id, hostname,
    steps, sampler, reference_steps, reference_sampler, ssim (1.0 for the reference itself;
    missing where the picture has no other setting to compare with), is_reference. The reference is
    the same model's: across models, pixels say nothing (another model draws another picture).
    """
    rows = image_paths(frame)
    columns_out = ["cell_id", "hostname", "steps", "sampler", "reference_steps", "reference_sampler", "ssim",
                   "is_reference", "ssim_own", "own_reference_steps"]
    if rows.empty:
        return pd.DataFrame(columns=columns_out)
    columns = [c for c in axes.PICTURE_COLUMNS if c in rows and c != "sampler"]
    keyed = rows.assign(**{f"_k_{c}": key_text(rows[c]) for c in columns})
    out = []
    for _, group in keyed.groupby([f"_k_{c}" for c in columns] + ["hostname"], sort=False):
        reference_row = _reference(group)
        if reference_row is None:  # the named reference was not measured for this picture
            for _, row in group.iterrows():
                out.append({"cell_id": row["cell_id"], "hostname": row["hostname"], "steps": int(row["steps"]),
                            "sampler": row.get("sampler"), "reference_steps": None, "reference_sampler": None,
                            "ssim": None, "is_reference": False, **_own_convergence(group, row)})
            continue
        reference = _image(reference_row["image_path"]) if len(group) > 1 else None
        for _, row in group.iterrows():
            value = None
            if reference is not None:
                image = _image(row["image_path"])
                value = ssim(image, reference) if image is not None and image.shape == reference.shape else None
            out.append({"cell_id": row["cell_id"], "hostname": row["hostname"], "steps": int(row["steps"]),
                        "sampler": row.get("sampler"), "reference_steps": int(reference_row["steps"]),
                        "reference_sampler": reference_row.get("sampler"), "ssim": value,
                        # a reference only where something was compared with it (not a picture alone)
                        "is_reference": len(group) > 1 and row["cell_id"] == reference_row["cell_id"],
                        **_own_convergence(group, row)})
    return pd.DataFrame(out, columns=columns_out)


def _own_convergence(group: pd.DataFrame, row: pd.Series) -> dict[str, Any]:
    """SSIM of a picture to its own sampler's most-steps picture: a sampler that converges to
    another image than the common reference (an ancestral one) is judged against one it reaches,
    shown beside the common figure. None where the sampler was measured at one step count only."""
    if "sampler" not in group:
        return {"ssim_own": None, "own_reference_steps": None}
    same = group[group["sampler"].astype(str) == str(row.get("sampler"))]
    if len(same) < 2:
        return {"ssim_own": None, "own_reference_steps": None}
    steps = same["steps"].astype(int)
    own = same[steps == steps.max()].iloc[0]
    reference, image = _image(own["image_path"]), _image(row["image_path"])
    value = ssim(image, reference) if image is not None and reference is not None and \
        image.shape == reference.shape else None
    return {"ssim_own": value, "own_reference_steps": int(own["steps"])}
