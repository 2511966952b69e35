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

import hashlib
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
    importing torch (plan and validate call it). A folder, and a cached Hub checkpoint alike, must
    pass the loader policy (models/foreignfolder): no code of its own, safetensors only, a config
    and tokenizer files a real CLIP model could have."""
    if name == RANDOM_WEIGHTS:
        return None
    if name.startswith(BUILTIN_PREFIX):
        return f"CLIP checkpoint '{name}': the built-in one is '{RANDOM_WEIGHTS}'"
    from ..models.foreignfolder import folder_problem

    folder = (base_dir / name).expanduser()
    if folder.is_dir():
        return folder_problem(folder, "CLIP checkpoint folder")
    if not looks_like_hub_id(name):
        return f"CLIP checkpoint '{name}': no such folder (relative to {base_dir}), and not a Hub id (owner/name)"
    cached = _cached_snapshot(name)
    if cached is not None:
        return folder_problem(cached, f"CLIP checkpoint '{name}', cached at")
    from ..models.sources import hub_reachable, offline

    if offline():
        return (f"CLIP checkpoint '{name}' is not in the Hugging Face cache, and HF_HUB_OFFLINE is set: download it "
                f"first (huggingface-cli download {name})")
    if not hub_reachable():  # said in seconds, not after a minute of the Hub client's retries
        return (f"CLIP checkpoint '{name}' is not in the Hugging Face cache, and the Hub cannot be reached from here: "
                f"download it where it can (huggingface-cli download {name}) and copy the cache")
    return None


def _cached_snapshot(name: str) -> Path | None:
    """The local snapshot folder of a Hub checkpoint, when its config.json is cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # a malformed id or cache: treated as not cached  # noqa: BLE001
        return None
    return Path(found).parent if isinstance(found, str) else None


def checkpoint_identity(name: str, base_dir: Path) -> str:
    """How a CLIP checkpoint is known in quality lines: a folder by its resolved absolute path (so
    `f/c`, `./f/c` and the absolute path are one checkpoint, and another folder of the same relative
    name elsewhere is another), a Hub id or the built-in one by its name."""
    folder = (base_dir / name).expanduser()
    if not name.startswith(BUILTIN_PREFIX) and folder.is_dir():
        return str(folder.resolve())
    return name


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
        from ..models.quiet import quiet_libraries
        from ..models.sources import offline

        quiet_libraries()  # before transformers is imported: its import notices too
        from transformers import CLIPModel, CLIPProcessor

        if name == RANDOM_WEIGHTS:
            from ..models.tinyclip import tiny_clip_path

            where, local = str(tiny_clip_path()), True
        elif (base_dir / name).expanduser().is_dir():
            where, local = str((base_dir / name).expanduser()), True
        else:
            where, local = name, offline()
        # A downloaded Hub checkpoint passes the same policy before it is read.
        try:
            if not local:
                from huggingface_hub import snapshot_download

                where = snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors"])
                problem = checkpoint_problem(name, base_dir)
                if problem:
                    raise ClipError(problem)
            # trust_remote_code=False: transformers never asks, and never runs the folder's code.
            model = CLIPModel.from_pretrained(where, local_files_only=True, use_safetensors=True,
                                              trust_remote_code=False)
            model.train(False)  # inference: no dropout
            processor = CLIPProcessor.from_pretrained(where, local_files_only=True, trust_remote_code=False)
        except ClipError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a foreign folder makes a loader raise is one line
            raise ClipError(f"CLIP checkpoint '{name}' cannot be loaded: "
                            f"{type(exc).__name__}: {one_line(str(exc))[:300]}") from None
        return cls(checkpoint_identity(name, base_dir), model, processor)

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
                      done: set[str] | None = None, skipped: list[str] | None = None) -> Iterable[dict[str, Any]]:
    """A quality line for every cell whose full-resolution picture is stored with `results_file`
    (the first measured generation that kept one), skipping cells in `done`.

    A picture that is not there, not a regular PNG within the limits, or cannot be decoded is not
    scored, and `skipped` is told why (one line each); the pictures after it are still scored. A
    checkpoint that loaded but cannot score a picture is a ClipError: it would fail on all of them."""
    from PIL import Image

    from ..contract.files import full_image

    seen = set(done or ())
    unusable: dict[str, str] = {}
    for record in records:
        if record.get("type") != "generation" or not record.get("image_full") or record["cell_id"] in seen:
            continue
        prompt = (record.get("cell") or {}).get("prompt")
        data = full_image(results_file, record["image_full"])
        if data is None or not isinstance(prompt, str):
            unusable[record["cell_id"]] = (f"{one_line(str(record['image_full']))[:120]}: not a stored PNG picture "
                                           "within the size limits (missing, a link, not a regular file, not PNG, "
                                           "or too large)" if data is None else "the cell has no text prompt")
            continue
        digest = record.get("image_full_sha256")
        if isinstance(digest, str) and hashlib.sha256(data).hexdigest() != digest:
            unusable[record["cell_id"]] = (f"{one_line(str(record['image_full']))[:120]}: not the picture the run "
                                           "stored (its digest differs: replaced since)")
            continue
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()  # decoded now: a truncated or bomb-sized picture fails here, not in CLIP
                rgb = picture.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for a damaged file
            unusable[record["cell_id"]] = (f"{one_line(str(record['image_full']))[:120]}: cannot be decoded "
                                           f"({type(exc).__name__}: {one_line(str(exc))[:120]})")
            continue
        try:
            value = scorer.score(rgb, prompt)
        except Exception as exc:  # noqa: BLE001
            raise ClipError(f"CLIP checkpoint '{scorer.name}' cannot score a picture: "
                            f"{type(exc).__name__}: {one_line(str(exc))[:200]}") from None
        seen.add(record["cell_id"])
        unusable.pop(record["cell_id"], None)
        yield quality_line(record, scorer, value)
    if skipped is not None:
        skipped.extend(f"{cell_id}: {why}" for cell_id, why in unusable.items() if cell_id not in seen)
