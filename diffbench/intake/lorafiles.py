"""The LoRA files a suite names, checked before anything loads: each must be a regular file whose
safetensors header holds LoRA weights (rules/loras.py parses the setting itself)."""

from __future__ import annotations

from pathlib import Path

from ..models.checkpoints import CheckpointError, safetensors_keys
from ..rules.loras import parse_loras

# Tensor names LoRA trainers write (peft/diffusers lora_A/lora_B, kohya lora_down/lora_up and
# their alpha): a file with none of them is not a LoRA, whatever its name.
LORA_KEY_MARKS = ("lora", "alpha")


def file_problem(path: Path) -> str | None:
    """Why an existing LoRA file cannot be one (its header read, nothing loaded), or None."""
    try:
        keys = safetensors_keys(path)
    except CheckpointError as exc:
        return str(exc)
    if not any(mark in key.lower() for key in keys for mark in LORA_KEY_MARKS):
        return f"{path}: holds no LoRA weights ({len(keys)} tensors, none named lora_* or *alpha)"
    return None


def missing_files(text: str, base_dir: Path) -> list[str]:
    """The LoRA files of a setting that are not regular files (relative paths from the suite's folder)."""
    missing = []
    for use in parse_loras(text):
        path = Path(use.path) if Path(use.path).is_absolute() else base_dir / use.path
        if not path.is_file():
            missing.append(use.path)
    return missing
