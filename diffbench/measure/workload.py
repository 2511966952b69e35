"""The counted work of one image of a known architecture: a denoiser evaluation and the fixed part.

The published architectures (models/synthetic.py) are built on the meta device and run there
at the asked resolution, batch and dtype, with classifier-free guidance doubling the denoiser's
batch where the family does that. Text encoders and the VAE decode are the fixed part. Counts
are cached as JSON under the diffbench cache (a few seconds to count, milliseconds to read).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .opcount import CallCounts, OpCost, count_call

COUNT_VERSION = 7  # bump when the counting rules change: cached counts are then recounted

# The families whose denoiser batch is doubled by classifier-free guidance at guidance > 1
# (FLUX.1 dev takes its guidance as an embedding: one batch).
CFG_FAMILIES = frozenset({"sd", "sdxl", "sd3", "pixart"})
# Text tokens each family's encoders see (CLIP 77; T5 256 for SD3, 512 for FLUX, 300 for PixArt-Σ),
# and where a model of the family differs (PixArt-α: 120)
T5_TOKENS = {"sd3": 256, "flux": 512, "pixart": 300}
T5_TOKENS_OF_MODEL = {"pixart-alpha": 120}


@dataclass
class Workload:
    """One image: the denoiser's counts per evaluation, the fixed part's counts per image."""

    model: str
    resolution: str
    batch_size: int
    dtype: str
    guided: bool
    denoiser: CallCounts
    fixed: CallCounts
    # Memory, counted on the meta device: parameters of each component, and the activation peak of
    # each phase (what the tensors a call creates hold at once; analysis/memoryneed.py adds weights)
    parameters: dict[str, int] = field(default_factory=dict)
    text_peak_bytes: float = 0.0
    decode_peak_bytes: float = 0.0
    decode_dtype: str = ""  # the VAE decode's dtype (fp32 where the pipeline upcasts)
    linear_parameters: dict[str, int] = field(default_factory=dict)  # of nn.Linear layers (what quantization packs)
    largest_block_parameters: int = 0  # the denoiser's largest block (what block-level group offload moves at once)
    # Linear parameters a component keeps out of quantization and, at fp16, in fp32: transformers'
    # `_keep_in_fp32_modules` (T5's feed-forward output `wo`, a quarter of T5-XXL's weights)
    kept_parameters: dict[str, int] = field(default_factory=dict)

    @property
    def denoise_peak_bytes(self) -> float:
        return self.denoiser.peak_bytes

    def key(self) -> str:
        return f"{self.model} {self.resolution} batch {self.batch_size} {self.dtype}" + (" CFG" if self.guided else "")


def _dtype(name: str) -> Any:
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _denoiser_inputs(family: str, name: str, batch: int, height: int, width: int, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    import torch

    def noise(*shape: int) -> Any:
        return torch.randn(*shape, dtype=dtype)

    timestep = torch.full((batch,), 500.0)
    if family in ("sd", "sdxl"):
        # the text encoder's width: CLIP-L (SD 1.5), OpenCLIP-H (SD 2.1), CLIP-L and bigG joined (SDXL)
        context = noise(batch, 77, {"sd21": 1024}.get(name, 768 if family == "sd" else 2048))
        extra = {} if family == "sd" else {"added_cond_kwargs": {"text_embeds": noise(batch, 1280),
                                                                "time_ids": noise(batch, 6)}}
        return (noise(batch, 4, height // 8, width // 8), timestep, context), extra
    if family == "sd3":
        return (), {"hidden_states": noise(batch, 16, height // 8, width // 8), "timestep": timestep,
                    "encoder_hidden_states": noise(batch, 77 + T5_TOKENS["sd3"], 4096),
                    "pooled_projections": noise(batch, 2048)}
    if family == "flux":
        tokens = (height // 16) * (width // 16)
        kwargs = {"hidden_states": noise(batch, tokens, 64), "timestep": timestep / 1000,
                  "encoder_hidden_states": noise(batch, T5_TOKENS["flux"], 4096), "pooled_projections": noise(batch, 768),
                  "img_ids": torch.zeros(tokens, 3), "txt_ids": torch.zeros(T5_TOKENS["flux"], 3)}
        if name == "flux-dev":
            kwargs["guidance"] = torch.full((batch,), 3.5)
        return (), kwargs
    if family == "pixart":
        tokens = T5_TOKENS_OF_MODEL.get(name, T5_TOKENS["pixart"])
        conditions = {"resolution": torch.full((batch, 2), float(height)), "aspect_ratio": torch.ones(batch, 1)} \
            if name == "pixart-alpha" else {"resolution": None, "aspect_ratio": None}
        return (), {"hidden_states": noise(batch, 4, height // 8, width // 8), "timestep": timestep,
                    "encoder_hidden_states": noise(batch, tokens, 4096), "added_cond_kwargs": conditions}
    raise ValueError(f"no counted workload for family '{family}' (counted: sd, sdxl, sd3, flux, pixart)")


def _fixed_counts(family: str, modules: dict[str, Any], prompts: int, batch: int, height: int, width: int,
                  dtype: Any, channels_last: bool, name: str = "") -> tuple[CallCounts, float, float, str]:
    """Text encoders (once per prompt, negative prompt included with CFG) and the VAE decode; with
    the text encoders' and the decode's activation peaks and the decode's dtype."""
    import torch

    ops: list[OpCost] = []
    text_peak = 0.0
    for component in ("text_encoder", "text_encoder_2", "text_encoder_3"):
        encoder = modules.get(component)
        if encoder is None:
            continue
        is_t5 = type(encoder).__name__.startswith(("T5", "UMT5"))
        tokens = T5_TOKENS_OF_MODEL.get(name, T5_TOKENS.get(family, 77)) if is_t5 else 77
        with torch.device("meta"):
            ids = torch.zeros(prompts, tokens, dtype=torch.long)
        encoded = count_call(encoder.to(dtype), (ids,))
        ops += encoded.ops
        text_peak = max(text_peak, encoded.peak_bytes)
    from ..rules.families import counting_family as family_spec

    vae = modules["vae"]
    # The decode runs in fp32 where the family's pipeline upcasts an fp16 VAE (SDXL, force_upcast);
    # SD, SD3 and FLUX pipelines decode in their own dtype whatever the config says
    upcast = family_spec(family).vae_upcast and getattr(vae.config, "force_upcast", False)
    vae_dtype = torch.float32 if upcast and dtype == torch.float16 else dtype
    with torch.device("meta"):
        latents = torch.randn(batch, vae.config.latent_channels, height // 8, width // 8, dtype=vae_dtype)
    decoded = count_call(vae.to(vae_dtype).decode, (latents,), channels_last=channels_last)
    ops += decoded.ops
    name = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[vae_dtype]
    return CallCounts(ops), text_peak, decoded.peak_bytes, name


class CountError(ValueError):
    """A shape the counting cannot run (a resolution of 0, too large), or more fresh counts than one
    command may make: the projection that needed it is not made, and says so."""


# Fresh counts one process may make: each takes seconds, and a results file of 600 distinct
# resolutions once kept `recommend --gpu` counting past 300 s. Beyond it, a setting is not projected.
MAX_FRESH_COUNTS = 24
# Cached counts kept on disk (each a few KiB): the oldest go beyond it
MAX_CACHED_COUNTS = 512
_fresh_counts = 0


def count_workload(model: str, resolution: str = "", batch_size: int = 1, dtype: str = "fp16",
                   guided: bool | None = None, channels_last: bool = False) -> Workload:
    """Counts for `model` (a synthetic preset name: analysis/projection.COUNTED_PRESETS).
    A shape that cannot be counted is a CountError, remembered in the cache like a count (a report
    never recounts it)."""
    from ..models.synthetic import SYNTHETIC

    global _fresh_counts
    preset = SYNTHETIC.get(model)
    if preset is None:
        raise ValueError(f"no counted workload for '{model}' (counted: {', '.join(SYNTHETIC)})")
    resolution = resolution or str(preset.defaults["resolution"])
    guided = (preset.family in CFG_FAMILIES) if guided is None else guided
    key = json.dumps([COUNT_VERSION, model, resolution, batch_size, dtype, guided, channels_last])
    if key in _READ:
        return _READ[key]
    shipped = shipped_workloads().get(key)
    if shipped is not None:
        _READ[key] = _from_json(shipped)
        return _READ[key]
    cached = _cache_path(key)
    if cached.is_file():
        try:
            data = json.loads(cached.read_text())
            if isinstance(data, dict) and "error" in data:
                raise CountError(str(data["error"]))
            _READ[key] = _from_json(data)
            return _READ[key]
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, CountError):
                raise
            # a damaged cache entry is counted again
    if _fresh_counts >= MAX_FRESH_COUNTS:
        raise CountError(f"more than {MAX_FRESH_COUNTS} distinct shapes to count in one command: "
                         f"{model} at {resolution} was not counted")
    _fresh_counts += 1
    try:
        workload = _count(model, preset.family, resolution, batch_size, dtype, guided, channels_last)
    except (ValueError, RuntimeError, TypeError, NotImplementedError, ZeroDivisionError) as exc:
        reason = f"{model} at {resolution}, batch {batch_size}, cannot be counted ({type(exc).__name__})"
        _store(cached, {"error": reason})
        raise CountError(reason) from None
    _store(cached, _to_json(workload))
    _READ[key] = workload
    return workload


def _store(path: Path, data: dict[str, Any]) -> None:
    """Write one cache entry whole, and keep the cache bounded (the oldest entries go)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(data))
        scratch.replace(path)
        entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_CACHED_COUNTS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs a recount


def _count(model: str, family: str, resolution: str, batch: int, dtype_name: str, guided: bool,
           channels_last: bool) -> Workload:
    from ..models.quiet import quiet_libraries

    quiet_libraries()  # counting imports torch, diffusers and transformers: their notices are not answers
    import torch

    from ..models.synthetic import build_modules
    from ..rules.families import counting_family as family_spec

    width, height = (int(v) for v in resolution.lower().split("x"))
    dtype = _dtype(dtype_name)
    modules = build_modules(model)
    denoiser = modules[family_spec(family).denoiser]
    calls = batch * (2 if guided and family in CFG_FAMILIES else 1)
    with torch.device("meta"):
        args, kwargs = _denoiser_inputs(family, model, calls, height, width, dtype)
    counts = count_call(denoiser.to(dtype), args, kwargs, channels_last=channels_last)
    fixed, text_peak, decode_peak, decode_dtype = _fixed_counts(family, modules, calls, batch, height, width, dtype,
                                                                channels_last, model)
    parameters = {component: sum(p.numel() for p in module.parameters()) for component, module in modules.items()}
    linear = {component: sum(p.numel() for sub in module.modules() if isinstance(sub, torch.nn.Linear)
                             for p in sub.parameters(recurse=False)) for component, module in modules.items()}
    kept = {component: _kept_linear(module) for component, module in modules.items()}
    return Workload(model, resolution, batch, dtype_name, guided, counts, fixed, parameters, text_peak, decode_peak,
                    decode_dtype, linear, _largest_block(denoiser), {c: n for c, n in kept.items() if n})


def kept_module_names(module: Any) -> tuple[str, ...]:
    """The names transformers keeps in fp32 at fp16 and out of every quantizer: the model class's
    `_keep_in_fp32_modules` (T5: 'wo'); none for diffusers models."""
    return tuple(getattr(type(module), "_keep_in_fp32_modules", None) or ())


def is_kept(qualified_name: str, kept_names: tuple[str, ...]) -> bool:
    """Whether a submodule (by its dotted name) is one transformers keeps, as transformers matches
    them: any dotted part equal to a kept name."""
    return any(part in kept_names for part in qualified_name.split("."))


def _kept_linear(module: Any) -> int:
    import torch

    names = kept_module_names(module)
    if not names:
        return 0
    return sum(p.numel() for name, sub in module.named_modules() if isinstance(sub, torch.nn.Linear) and is_kept(name, names)
               for p in sub.parameters(recurse=False))


def _largest_block(denoiser: Any) -> int:
    """Parameters of the denoiser's largest block, as diffusers' block-level group offload groups
    it: each entry of a top-level ModuleList (down_blocks[i], transformer_blocks[i]), or a top-level
    module that is not a list."""
    import torch

    blocks = [block for child in denoiser.children()
              for block in (child if isinstance(child, torch.nn.ModuleList) else [child])]
    return max((sum(p.numel() for p in block.parameters()) for block in blocks), default=0)


SHIPPED = "counted_workloads.json"


def _shipped_setups() -> tuple[tuple[str, str, str, bool], ...]:
    """What a fresh install answers at once (estimate, recommend and gpus with no results, the
    report's other cards): each counted architecture (models/synthetic.py) at its own resolution,
    batch 1, its GPU dtype, with and without classifier-free guidance; SDXL also at SDXL Turbo's
    512x512. scripts/ship_counts.py writes them; a test recounts each and compares."""
    from ..models.synthetic import COUNTED, SYNTHETIC
    from ..rules.families import counting_family

    setups = [(name, SYNTHETIC[name].defaults["resolution"], counting_family(SYNTHETIC[name].family).gpu_dtype, guided)
              for name in COUNTED for guided in ((True, False) if SYNTHETIC[name].family in CFG_FAMILIES else (False,))]
    return (*setups, ("sdxl", "512x512", "fp16", False))  # SDXL Turbo's


SHIPPED_SETUPS = _shipped_setups()


def shipped_key(model: str, resolution: str, dtype: str, guided: bool) -> str:
    return json.dumps([COUNT_VERSION, model, resolution, 1, dtype, guided, False])


_SHIPPED: dict[str, Any] | None = None
_READ: dict[str, Workload] = {}  # shipped counts already read in this process


def shipped_workloads() -> dict[str, Any]:
    """The counts shipped with the package, by cache key (empty when the file is missing or from
    another COUNT_VERSION: they are then counted as any other)."""
    global _SHIPPED
    if _SHIPPED is None:
        from importlib import resources

        try:
            data = json.loads(resources.files("diffbench.hardware").joinpath(SHIPPED).read_text(encoding="utf-8"))
            _SHIPPED = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            _SHIPPED = {}
    return _SHIPPED


def count_fresh(model: str, resolution: str, dtype: str, guided: bool) -> dict[str, Any]:
    """A count made now, never read from the shipped file or the cache (scripts/ship_counts.py, its test)."""
    from ..models.synthetic import SYNTHETIC

    return _to_json(_count(model, SYNTHETIC[model].family, resolution, 1, dtype, guided, False))


def _cache_path(key: str) -> Path:
    from ..models.builtin import cache_root

    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_root() / "workloads" / f"{digest}.json"


def _to_json(workload: Workload) -> dict[str, Any]:
    def ops(counts: CallCounts) -> list[list[Any]]:
        # a call repeats a few dozen distinct operators thousands of times: stored once each, with a count
        grouped: dict[tuple[str, float, float, bool], int] = {}
        for op in counts.ops:
            key = (op.kind, op.flops, op.bytes, op.single)
            grouped[key] = grouped.get(key, 0) + 1
        return [[*key, count] for key, count in grouped.items()]

    return {"model": workload.model, "resolution": workload.resolution, "batch_size": workload.batch_size,
            "dtype": workload.dtype, "guided": workload.guided, "denoiser": ops(workload.denoiser),
            "fixed": ops(workload.fixed), "denoise_peak_bytes": workload.denoiser.peak_bytes,
            "parameters": workload.parameters, "text_peak_bytes": workload.text_peak_bytes,
            "decode_peak_bytes": workload.decode_peak_bytes, "decode_dtype": workload.decode_dtype,
            "linear_parameters": workload.linear_parameters,
            "largest_block_parameters": workload.largest_block_parameters,
            "kept_parameters": workload.kept_parameters}


def _from_json(data: dict[str, Any]) -> Workload:
    def counts(rows: list[list[Any]], peak: float = 0.0) -> CallCounts:
        return CallCounts([OpCost(str(kind), float(flops), float(size), bool(single))
                           for kind, flops, size, single, times in rows for _ in range(int(times))], peak)

    return Workload(str(data["model"]), str(data["resolution"]), int(data["batch_size"]), str(data["dtype"]),
                    bool(data["guided"]), counts(data["denoiser"], float(data["denoise_peak_bytes"])),
                    counts(data["fixed"]), {str(k): int(v) for k, v in data["parameters"].items()},
                    float(data["text_peak_bytes"]), float(data["decode_peak_bytes"]), str(data["decode_dtype"]),
                    {str(k): int(v) for k, v in data["linear_parameters"].items()}, int(data["largest_block_parameters"]),
                    {str(k): int(v) for k, v in data.get("kept_parameters", {}).items()})
