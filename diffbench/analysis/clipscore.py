"""CLIP score: how well a picture agrees with its prompt, comparable across models.

The score is 100 x max(0, cosine) of CLIP's image and text embeddings (Hessel et al. 2021,
"CLIPScore", with the scale that torchmetrics' `clip_score` and diffusers' evaluation guide
use). It needs no reference picture, so Turbo at 4 steps and SDXL at 30 can be put side by side,
which pixel similarity cannot do (another model draws another picture from the same seed).

It is computed on the full-resolution picture of a cell (the suite's `quality: {clip: ...}`
makes the run keep it beside the thumbnail), on the CPU, after the last cell has been measured:
the CLIP model never shares a process, a device or a memory meter with a measured generation.
The checkpoint is a folder, `builtin:tiny-clip` (random weights, for tests and tiny suites), or a
Hub id read from the local Hugging Face cache (downloaded first when online, as models are).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DiffbenchError, one_line

CLIP_SCALE = 100.0
BUILTIN_PREFIX = "builtin:"
RANDOM_WEIGHTS = "builtin:tiny-clip"  # its scores exercise the tool and say nothing about pictures


class ClipError(DiffbenchError):
    """A CLIP checkpoint that cannot be used here (missing folder, not cached offline, unreadable)."""


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def checkpoint_problem(name: str, base_dir: Path) -> str | None:
    """Why the CLIP checkpoint `name` cannot be loaded here, in one line, or None; without
    importing torch (plan and validate call it)."""
    if name == RANDOM_WEIGHTS:
        return None
    if name.startswith(BUILTIN_PREFIX):
        return f"CLIP checkpoint '{name}': the built-in one is '{RANDOM_WEIGHTS}'"
    folder = (base_dir / name).expanduser()
    if folder.is_dir():
        return None if (folder / "config.json").is_file() else \
            f"CLIP checkpoint folder '{folder}' holds no config.json (a transformers CLIPModel folder is needed)"
    if not looks_like_hub_id(name):
        return f"CLIP checkpoint '{name}': no such folder (relative to {base_dir}), and not a Hub id (owner/name)"
    from ..models.sources import offline

    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    if isinstance(try_to_load_from_cache(name, "config.json"), str) or not offline():
        return None
    return (f"CLIP checkpoint '{name}' is not in the Hugging Face cache, and HF_HUB_OFFLINE is set: download it "
            f"first (huggingface-cli download {name})")


@dataclass
class ClipScorer:
    """A loaded CLIP checkpoint that scores pictures against prompts, on the CPU."""

    name: str
    model: Any
    processor: Any

    @classmethod
    def load(cls, name: str, base_dir: Path) -> ClipScorer:
        problem = checkpoint_problem(name, base_dir)
        if problem:
            raise ClipError(problem)
        from ..models.sources import offline
        from ..quiet import quiet_libraries

        quiet_libraries()  # before transformers is imported: its import notices too
        from transformers import CLIPModel, CLIPProcessor

        if name == RANDOM_WEIGHTS:
            from ..models.tinyclip import tiny_clip_path

            where, local = str(tiny_clip_path()), True
        elif (base_dir / name).expanduser().is_dir():
            where, local = str((base_dir / name).expanduser()), True
        else:
            where, local = name, offline()
        try:
            model = CLIPModel.from_pretrained(where, local_files_only=local, use_safetensors=True)
            model.train(False)  # inference: no dropout
            processor = CLIPProcessor.from_pretrained(where, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise ClipError(f"CLIP checkpoint '{name}' cannot be loaded: {one_line(str(exc))[:300]}") from None
        return cls(name, model, processor)

    def cosine(self, picture: Any, prompt: str) -> float:
        """The cosine of one PIL picture's and its prompt's CLIP embeddings (-1 to 1)."""
        import torch

        inputs = self.processor(text=[prompt], images=picture.convert("RGB"), return_tensors="pt", padding=True,
                                truncation=True)  # CLIP reads 77 tokens: a longer prompt is cut, as it is in SD
        with torch.no_grad():
            output = self.model(**inputs)
        image = output.image_embeds / output.image_embeds.norm(dim=-1, keepdim=True)
        text = output.text_embeds / output.text_embeds.norm(dim=-1, keepdim=True)
        return float((image * text).sum())

    def score(self, picture: Any, prompt: str) -> float:
        """The CLIP score of one PIL picture against its prompt (0-100; higher agrees more)."""
        return CLIP_SCALE * max(0.0, self.cosine(picture, prompt))


def quality_line(record: dict[str, Any], scorer: ClipScorer, value: float) -> dict[str, Any]:
    """The results line that stores one cell's CLIP score (schema: records.QualityLine)."""
    return {"type": "quality", "run_id": record["run_id"], "cell_id": record["cell_id"], "metric": "clip_score",
            "value": value, "checkpoint": scorer.name, "image": record["image_full"]}


def score_generations(records: Iterable[dict[str, Any]], results_file: Path, scorer: ClipScorer,
                      done: set[str] | None = None) -> Iterable[dict[str, Any]]:
    """A quality line for every cell whose full-resolution picture is stored with `results_file`
    (the first measured generation that kept one), skipping cells in `done`."""
    from PIL import Image

    from ..files import full_image

    seen = set(done or ())
    for record in records:
        if record.get("type") != "generation" or not record.get("image_full") or record["cell_id"] in seen:
            continue
        data = full_image(results_file, record["image_full"])
        prompt = (record.get("cell") or {}).get("prompt")
        if data is None or not isinstance(prompt, str):
            continue
        seen.add(record["cell_id"])
        with Image.open(io.BytesIO(data)) as picture:
            yield quality_line(record, scorer, scorer.score(picture, prompt))
