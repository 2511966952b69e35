"""LoRAs as a setting: `lora: [none, style.safetensors@0.8, a.safetensors@0.7+b.safetensors@0.5]`.

A value is `none` or one or more `FILE[@scale]` joined by `+` (several LoRAs at once), optionally
after `fuse:` (merged into the weights, as people deploy a LoRA they keep: no extra work per
step). Files are .safetensors only (never a pickle), relative to the suite's folder. This module
parses and checks; execute/axes/lora.apply_lora loads them onto a pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LORAS = 8


@dataclass(frozen=True)
class LoraUse:
    path: str
    scale: float

    @property
    def text(self) -> str:
        return f"{self.path}@{self.scale:g}"


class LoraSpecError(ValueError):
    pass


FUSE_PREFIX = "fuse:"


def is_fused(text: str | None) -> bool:
    """Whether a setting merges its LoRAs into the weights (`fuse:...`)."""
    return bool(text) and str(text).strip().lower().startswith(FUSE_PREFIX)


def parse_loras(text: str) -> tuple[LoraUse, ...]:
    """'a.safetensors@0.8+b.safetensors' (or 'fuse:' and that) -> the LoRAs with their scales;
    'none' -> ()."""
    text = text.strip()
    if is_fused(text):
        text = text[len(FUSE_PREFIX):].strip()
        if text.lower() in {"none", ""}:
            raise LoraSpecError("'fuse:' needs LoRA files after it (e.g. fuse:style.safetensors@0.8)")
    if text.lower() in {"none", ""}:
        return ()
    uses = []
    for part in text.split("+"):
        path, at, raw = part.strip().rpartition("@")
        if not at:
            path, raw = part.strip(), "1"
        if not path.lower().endswith(".safetensors"):
            raise LoraSpecError(f"'{part.strip()}': a LoRA is a .safetensors file, optionally @scale "
                                "(e.g. style.safetensors@0.8); several are joined with '+'")
        try:
            scale = float(raw)
        except ValueError:
            raise LoraSpecError(f"'{part.strip()}': the scale after @ must be a number") from None
        if not -10 <= scale <= 10:  # NaN fails this too
            raise LoraSpecError(f"'{part.strip()}': the scale must be between -10 and 10")
        uses.append(LoraUse(path, scale))
    if len(uses) > MAX_LORAS:
        raise LoraSpecError(f"at most {MAX_LORAS} LoRAs at once")
    if len({u.path for u in uses}) < len(uses):
        raise LoraSpecError("a LoRA file is named twice")
    return tuple(uses)


def canonical_loras(text: str) -> str:
    """One spelling per setting: 'none', or the LoRAs with their scales written out."""
    uses = parse_loras(text)
    return (FUSE_PREFIX if is_fused(text) else "") + "+".join(u.text for u in uses) if uses else "none"
