"""Turning a cell's settings into a configured pipeline on a device (worker side; imports torch)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .. import samplers
from ..applicability import quantization_problem, setting_problem

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class NotApplicable(Exception):
    """A setting that cannot apply on this host or device: recorded as not_applicable, not run."""


@dataclass
class Runtime:
    """Where and how a load group runs on this host, after 'auto' is resolved."""

    device: Any  # torch.device
    dtype_name: str
    gpu_name: str | None = None
    gpu_uuid: str | None = None
    vram_cap: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    quantization: dict[str, Any] | None = None  # what apply_quantization did (components, bytes, seconds)
    denoiser_bytes: int | None = None  # the denoiser's weights as held in memory (quantized or not)
    total_memory: int | None = None  # the CUDA card's memory (what a cell's memory floor is held against)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"device": str(self.device), "dtype": self.dtype_name, "gpu_name": self.gpu_name,
                                     "gpu_uuid": self.gpu_uuid}
        if self.notes:
            described["notes"] = list(self.notes)
        if self.device.type == "cpu":
            import torch

            described["torch_threads"] = torch.get_num_threads()
        if self.vram_cap:
            described.update(self.vram_cap)
        if self.quantization:
            described["quantization"] = dict(self.quantization)
        if self.denoiser_bytes is not None:
            described["denoiser_bytes"] = self.denoiser_bytes
        return described


def resolve_runtime(settings: dict[str, Any], family: str, placed_by_cluster: bool = False) -> Runtime:
    """Resolve device 'auto', the gpu name filter and dtype 'auto' on this host.

    On a cluster the gpu setting already chose this node (by the resource it declares), so it
    only narrows the choice among this node's CUDA devices and never makes a cell inapplicable.
    """
    import torch

    wanted = settings["device"]
    if wanted == "auto":
        if torch.cuda.is_available():
            wanted = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            wanted = "mps"
        else:
            wanted = "cpu"
    device = torch.device(wanted)
    gpu_name = gpu_uuid = None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NotApplicable("device cuda was asked for but this host has no usable CUDA GPU")
        indices = [device.index] if device.index is not None else list(range(torch.cuda.device_count()))
        if settings["gpu"]:
            matching = [i for i in indices if settings["gpu"].lower() in torch.cuda.get_device_name(i).lower()]
            indices = matching or (indices if placed_by_cluster else [])
            if not indices:
                names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
                raise NotApplicable(f"no GPU matching '{settings['gpu']}' on this host (it has: {names})")
        if indices[0] >= torch.cuda.device_count():
            raise NotApplicable(f"{device} does not exist on this host")
        device = torch.device("cuda", indices[0])
        props = torch.cuda.get_device_properties(device)
        gpu_name = props.name
        gpu_uuid = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
    problem = setting_problem(settings, device.type, placed_by_cluster)  # the rules plan applies too
    if problem:
        raise NotApplicable(problem)
    dtype = settings["dtype"]
    if dtype == "auto":
        from ..families import family as family_spec

        dtype = "fp32" if device.type == "cpu" else family_spec(family).gpu_dtype
    total = int(torch.cuda.get_device_properties(device).total_memory) if device.type == "cuda" else None
    return Runtime(device, dtype, gpu_name, gpu_uuid, total_memory=total)


def cap_cuda_memory(device: Any, limit: str, gpu_uuid: str | None = None) -> dict[str, Any]:
    """Make this process see at most `limit` of VRAM, as a smaller card would (see `vram_budget`).

    Only capacity is emulated: bandwidth and compute stay those of the card in the machine.
    """
    import torch

    from ..hardware import nvml
    from ..hardware.memsize import vram_limit_bytes

    torch.zeros(1, device=device)  # create the CUDA context so that its size is counted
    free, total = torch.cuda.mem_get_info(device)
    info = vram_budget(limit, vram_limit_bytes(limit), free, total, torch.cuda.memory_reserved(device),
                       nvml.own_usage(nvml.handle_for_uuid(gpu_uuid or "")))
    if "note" not in info:
        torch.cuda.set_per_process_memory_fraction(info["vram_allocator_cap_bytes"] / total, device)
    return info


def vram_budget(limit: str, limit_bytes: int, free: int, total: int, reserved: int,
                own: int | None) -> dict[str, Any]:
    """How much torch's allocator may take so that this process uses at most `limit_bytes`.

    This process's CUDA context and its other memory outside the allocator (`own` - `reserved`,
    `own` being NVML's per-process figure) are charged against the limit. Memory that other
    processes hold on the same GPU is not (a smaller card would not hold it), but a cap that the
    free memory cannot honour is refused. Where NVML cannot say what this process holds
    (`own` None), everything outside the allocator is charged, and the record says so.
    """
    if own is not None:
        outside, others = max(0, own - reserved), max(0, (total - free) - own)
    else:
        outside, others = (total - free) - reserved, None
    budget = limit_bytes - outside
    info: dict[str, Any] = {
        "vram_limit": limit, "vram_limit_bytes": limit_bytes, "vram_outside_allocator_bytes": int(outside),
        "vram_other_processes_bytes": None if others is None else int(others),
        "vram_outside_measured_by": "nvml_process" if own is not None else "device_free_memory",
        "vram_allocator_cap_bytes": int(min(budget, total)), "speed_emulated": False}
    if budget <= 0:
        raise NotApplicable(f"vram_limit {limit} is smaller than this process's CUDA context and other use "
                            f"({outside / 2**30:.2f} GiB) on this GPU")
    if limit_bytes >= total:
        info["note"] = "the limit is at least this GPU's memory: no cap applied"
    elif budget > free + reserved:
        held = f"other processes hold {others / 2**30:.2f} GiB" if others is not None else "it is in use"
        raise NotApplicable(f"vram_limit {limit} cannot be emulated: only {(free + reserved) / 2**30:.2f} GiB of "
                            f"this GPU is free ({held})")
    return info


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, DTYPES[name])


def place(pipe: Any, settings: dict[str, Any], runtime: Runtime) -> None:
    """Move the pipeline to its device, or set up offloading, as the cell asks."""
    import torch

    offload = settings["offload"]
    device = runtime.device
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        level = "block_level" if offload == "group-block" else "leaf_level"
        extra: dict[str, Any] = {"num_blocks_per_group": 1} if level == "block_level" else {}
        vae = getattr(pipe, "vae", None)
        if vae is not None and _vae_upcasts(pipe, vae):
            # The pipeline casts an upcasting VAE to fp32 around decode; diffusers' group-offload
            # hooks keep the fp16 copies and decode then fails ("mixed dtype"). The VAE is small:
            # it stays on the device, and the runtime description says so.
            import inspect

            if "exclude_modules" not in inspect.signature(pipe.enable_group_offload).parameters:
                raise NotApplicable("group offload of a pipeline whose VAE decodes in fp32 needs diffusers "
                                    "with enable_group_offload(exclude_modules=...)")
            extra["exclude_modules"] = ["vae"]
            vae.to(device)
            runtime.notes.append("group offload: the VAE (upcast to fp32 for decoding) stays on the device")
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type=level, use_stream=device.type == "cuda", **extra)


def _vae_upcasts(pipe: Any, vae: Any) -> bool:
    """True when the pipeline will cast its fp16 VAE to fp32 for decoding (SDXL's force_upcast)."""
    import torch

    return bool(getattr(vae.config, "force_upcast", False)) and vae.dtype == torch.float16 and \
        "upcast_vae" in dir(pipe)


def set_attention(denoiser: Any, backend: str) -> None:
    if backend == "default":
        return
    if not hasattr(denoiser, "set_attention_backend"):
        raise NotApplicable("this diffusers version cannot choose an attention backend (needs >= 0.35)")
    try:
        denoiser.set_attention_backend(backend)
    except (ValueError, RuntimeError, ImportError) as exc:
        raise NotApplicable(f"attention backend '{backend}' is unavailable here: {exc}") from None


def scheduler_for(pipe: Any, base_config: dict[str, Any], sampler_name: str, family: str) -> tuple[Any, str]:
    """A fresh scheduler for the sampler, built from the model's own scheduler config."""
    sampler = samplers.resolve(sampler_name, family)
    if sampler.key == "default":
        cls = type(pipe.scheduler)
        return cls.from_config(base_config), cls.__name__
    module = importlib.import_module("diffusers")
    cls = getattr(module, sampler.scheduler_class, None)
    if cls is None:
        raise NotApplicable(f"this diffusers version has no {sampler.scheduler_class}")
    return cls.from_config(base_config, **sampler.kwargs), sampler.scheduler_class


def set_vae_options(pipe: Any, settings: dict[str, Any]) -> None:
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    (vae.enable_tiling if settings["vae_tiling"] else vae.disable_tiling)()
    (vae.enable_slicing if settings["vae_slicing"] else vae.disable_slicing)()


def call_arguments(pipe: Any, settings: dict[str, Any], base_dir: str = ".") -> dict[str, Any]:
    """Keyword arguments for pipe(...) for one generation of this cell."""
    import inspect

    import torch

    from .. import tasks
    from .inputs import init_image, mask_image

    width, height = (int(v) for v in settings["resolution"].split("x"))
    task = settings.get("task") or "text-to-image"
    video = task in tasks.VIDEO_TASKS
    kwargs: dict[str, Any] = {
        "prompt": settings["prompt"], "num_inference_steps": settings["steps"], "width": width, "height": height,
        "guidance_scale": settings["guidance_scale"],
        # A CPU generator gives the same starting noise on every device: images compare across GPUs.
        "generator": torch.Generator("cpu").manual_seed(settings["seed"]),
        # video stays an array: turning every frame into a PIL image is not part of making it
        "output_type": "np" if video else "pil",
    }
    kwargs["num_videos_per_prompt" if video else "num_images_per_prompt"] = settings["batch_size"]
    parameters = inspect.signature(pipe.__call__).parameters
    if video:
        kwargs["num_frames"] = settings["frames"]
        if "frame_rate" in parameters:  # LTX conditions on the frame rate
            kwargs["frame_rate"] = settings["fps"]
    if task in tasks.IMAGE_INPUT_TASKS:
        kwargs["image"] = init_image(settings, base_dir)
    if task == "inpainting":
        kwargs["mask_image"] = mask_image(settings, base_dir)
    if task in tasks.STRENGTH_TASKS:
        kwargs["strength"] = settings["strength"]
    if settings.get("negative_prompt") and "negative_prompt" in parameters:
        kwargs["negative_prompt"] = settings["negative_prompt"]
    if "callback_on_step_end_tensor_inputs" in parameters:
        # Only the latents, handed over by reference (no copy, no synchronisation): the probe keeps
        # the last step's to check them for NaN once the generation is timed.
        allowed = getattr(pipe, "_callback_tensor_inputs", ["latents"])
        kwargs["callback_on_step_end_tensor_inputs"] = ["latents"] if "latents" in allowed else []
    return kwargs


def task_pipeline(pipe: Any, settings: dict[str, Any]) -> Any:
    """The pipeline that runs the cell's task on the loaded weights (`from_pipe` shares every
    component: nothing is loaded or copied)."""
    import diffusers

    from ..families import family

    wanted = family(settings["family"]).pipeline_for(settings.get("task") or "text-to-image")
    if type(pipe).__name__ == wanted:
        return pipe
    cls = getattr(diffusers, wanted, None)
    if cls is None:
        raise NotApplicable(f"task '{settings['task']}' needs {wanted}, which this diffusers version lacks")
    return cls.from_pipe(pipe)


def stored_bytes(module: Any) -> int:
    """Bytes a module's weights and buffers occupy, counted inside quantized tensor subclasses
    (an int8 weight with its scales), not at the float size they present."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    def size(tensor: Any) -> int:
        if is_traceable_wrapper_subclass(tensor):
            names, _ = tensor.__tensor_flatten__()
            return sum(size(getattr(tensor, name)) for name in names)
        return int(tensor.numel() * tensor.element_size())

    return sum(size(p) for p in module.parameters()) + sum(size(b) for b in module.buffers())


def check_quantization_device(wanted: str | None, device: Any) -> None:
    """NotApplicable, before anything is loaded, for a quantization this cell's device cannot run."""
    problem = quantization_problem(wanted, getattr(device, "type", str(device or "cpu")))
    if problem:
        raise NotApplicable(problem)


def check_frames(pipe: Any, settings: dict[str, Any]) -> None:
    """NotApplicable where a clip is longer than the denoiser's positions reach (Wan's rotary
    embedding covers `rope_max_seq_len` latent frames): said as the limit, not as a reshape error
    from deep inside the transformer."""
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    positions = getattr(config, "rope_max_seq_len", None)
    temporal = getattr(pipe, "vae_scale_factor_temporal", None)
    if not isinstance(positions, int) or not isinstance(temporal, int) or temporal < 1:
        return
    latent_frames = (int(settings["frames"]) - 1) // temporal + 1
    if latent_frames > positions:
        most = (positions - 1) * temporal + 1
        raise NotApplicable(f"frames {settings['frames']}: this model's positional embedding covers at most {most} "
                            f"frames ({positions} latent frames of {temporal})")


def apply_quantization(pipe: Any, wanted: str | None, device: Any = None) -> dict[str, Any] | None:
    """Quantize the weights of the denoiser (and with @all the text encoders) of a loaded pipeline,
    before it is placed on its device. Returns what was done, for the record: the components, their
    bytes before and after, the seconds it took (load time, not generation time)."""
    import importlib
    import time

    from ..measure.probe import denoiser_name, denoiser_of
    from ..quantization import LIBRARIES, parse_quantization

    setting = parse_quantization(wanted or "none")
    if setting is None:
        return None
    check_quantization_device(wanted, device)
    module_name, package = LIBRARIES[setting.library]
    try:
        importlib.import_module(module_name)
    except ImportError:
        raise NotApplicable(f"quantize '{setting.text}' needs {package}, which is not installed "
                            f"(pip install {package}, or diffbench[quantization])") from None
    components = {denoiser_name(pipe): denoiser_of(pipe)}
    if setting.scope == "all":
        components.update({name: getattr(pipe, name) for name in ("text_encoder", "text_encoder_2", "text_encoder_3")
                           if getattr(pipe, name, None) is not None})
    before = {name: stored_bytes(module) for name, module in components.items()}
    started = time.perf_counter()
    try:
        for module in components.values():
            if setting.library == "bnb":
                _bitsandbytes_module(module, setting.format, device)
            else:
                _quantize_module(module, setting.library, setting.format)
    except (ImportError, RuntimeError, ValueError, TypeError, NotImplementedError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NotApplicable(f"quantize '{setting.text}' cannot apply here: {type(exc).__name__}: {first}") from None
    return {"quantize": setting.text, "components": sorted(components), "quantize_s": time.perf_counter() - started,
            "weight_bytes_before": sum(before.values()),
            "weight_bytes_after": sum(stored_bytes(module) for module in components.values())}


def file_quantization(pipe: Any, file_format: str) -> dict[str, Any]:
    """The record of a denoiser that came quantized from its file (a .gguf): its format and the
    bytes it holds in memory. No time: nothing was quantized here."""
    from ..measure.probe import denoiser_name, denoiser_of

    return {"quantize": f"gguf:{file_format}", "components": [denoiser_name(pipe)], "quantize_s": 0.0,
            "weight_bytes_after": stored_bytes(denoiser_of(pipe))}


def _bitsandbytes_module(module: Any, fmt: str, device: Any) -> None:
    """Every linear layer of `module` as bitsandbytes' 4-bit NF4 or 8-bit layer, quantized by moving
    it onto the CUDA device (as diffusers' own bitsandbytes loading does); placement and offload
    then move the quantized weights like any others."""
    import bitsandbytes as bnb
    import torch

    for name, child in list(module.named_children()):
        if not isinstance(child, torch.nn.Linear):
            _bitsandbytes_module(child, fmt, device)
            continue
        bias = child.bias is not None
        if fmt == "nf4":
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias,
                                      compute_dtype=child.weight.dtype, quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias, has_fp16_weights=False)
            layer.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False, has_fp16_weights=False)
        if bias:
            layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
        setattr(module, name, layer.to(device))


def _quantize_module(module: Any, library: str, fmt: str) -> None:
    if library == "quanto":
        from optimum import quanto

        weights = {"int8": quanto.qint8, "int4": quanto.qint4, "fp8": quanto.qfloat8}[fmt]
        quanto.quantize(module, weights=weights)
        quanto.freeze(module)  # the quantized weights replace the float ones (no float copy kept)
        return
    from torchao import quantization as ao

    config = {"int8": ao.Int8WeightOnlyConfig, "fp8": ao.Float8WeightOnlyConfig,
              "int4": ao.Int4WeightOnlyConfig}[fmt]()
    ao.quantize_(module, config)


def apply_cache(pipe: Any, wanted: str | None, applied: str | None, steps: int | None = None,
                family: str | None = None) -> str | None:
    """Make the denoiser's step cache the cell's (`wanted`, canonical text or 'none'/None).
    Returns what is now applied. The cache is switched between cells of one load, so a cached
    and an uncached cell share the loaded weights. MagCache is set up for a step count (its
    ratios are interpolated to it): it is applied anew when the steps change."""
    from ..caches import parse_cache
    from ..measure.probe import denoiser_of

    wanted = None if wanted in (None, "none") else wanted
    key = f"{wanted}#steps={steps}" if wanted and wanted.startswith("magcache") else wanted
    if key == applied:
        return applied
    denoiser = denoiser_of(pipe)
    setting = parse_cache(wanted) if wanted else None
    if setting is not None and not hasattr(denoiser, "enable_cache"):
        raise NotApplicable(f"cache '{wanted}': {type(denoiser).__name__} has no step-cache support in this "
                            "diffusers version (diffusers caches apply to transformer denoisers such as FLUX's)")
    if applied is not None:
        denoiser.disable_cache()
    if setting is None:
        return None
    from diffusers.hooks import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    name, value = setting.kind.name, setting.value
    if name == "first-block":
        config: Any = FirstBlockCacheConfig(threshold=value)
    elif name == "taylorseer":
        config = TaylorSeerCacheConfig(cache_interval=int(value))
    elif name == "fastercache":
        # Verified on FLUX (guidance-distilled: no unconditional batch to skip). In diffusers 0.42 the
        # hook fails inside Wan's and LTX-Video's transformers, so other families are refused up front.
        if family != "flux":
            raise NotApplicable(f"cache '{wanted}': FasterCache runs on FLUX only in this diffusers version (its "
                                f"hook fails inside the transformers of Wan and LTX-Video); not on {family}")
        from diffusers import FasterCacheConfig

        config = FasterCacheConfig(spatial_attention_block_skip_range=int(value), is_guidance_distilled=True,
                                   attention_weight_callback=lambda _: 0.3,
                                   current_timestep_callback=lambda: pipe.current_timestep)
    elif name == "magcache":
        if family != "flux":  # the ratios are calibrated per model: diffusers ships FLUX's only
            raise NotApplicable(f"cache '{wanted}': MagCache needs magnitude ratios calibrated for the model; "
                                f"diffusers ships them for FLUX only, not for {family}")
        from diffusers.hooks import MagCacheConfig
        from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS

        config = MagCacheConfig(threshold=value, num_inference_steps=steps or 28, mag_ratios=FLUX_MAG_RATIOS)
    else:  # pab: needs to know where in the schedule the pipeline is
        config = PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=int(value),
                                                 current_timestep_callback=lambda: pipe.current_timestep)
    try:
        denoiser.enable_cache(config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise NotApplicable(f"cache '{wanted}' cannot apply to {type(denoiser).__name__}: {exc}") from None
    return key


def apply_lora(pipe: Any, wanted: str | None, applied: str | None, base_dir: str) -> tuple[str | None, dict[str, Any]]:
    """Make the pipeline's LoRAs the cell's. Returns what is now applied and what it cost:
    `lora_unload_s` (removing the previous cell's), `lora_load_s` (loading and weighting this
    cell's), and the files' sizes. LoRAs stay unfused (peft layers, as diffusers loads them):
    unloading then restores the base weights exactly, so a later cell without a LoRA measures
    the untouched model. A `fuse:` setting merges them into the weights and drops the peft
    layers (`lora_fuse_s`), as a LoRA is deployed; the plan gives it a pipeline load of its own,
    so fused weights never meet another cell."""
    import time
    from pathlib import Path

    from ..loras import is_fused, parse_loras

    wanted = None if wanted in (None, "none") else wanted
    costs: dict[str, Any] = {}
    if wanted == applied:
        return applied, costs
    if is_fused(applied):  # the plan's load groups rule this out; never measure merged weights as others
        raise RuntimeError(f"LoRAs '{applied}' are fused into this pipeline's weights; '{wanted}' needs a fresh load")
    if wanted and not hasattr(pipe, "load_lora_weights"):
        raise NotApplicable(f"{type(pipe).__name__} cannot load LoRAs in this diffusers version")
    if applied is not None:
        started = time.perf_counter()
        pipe.unload_lora_weights()
        costs["lora_unload_s"] = time.perf_counter() - started
    if wanted is None:
        return None, costs
    uses = parse_loras(wanted)
    started = time.perf_counter()
    names = []
    try:
        for index, use in enumerate(uses):
            path = Path(use.path) if Path(use.path).is_absolute() else Path(base_dir) / use.path
            names.append(f"lora{index}")
            pipe.load_lora_weights(str(path), adapter_name=names[-1])
        pipe.set_adapters(names, adapter_weights=[u.scale for u in uses])
    except ImportError as exc:
        raise NotApplicable(f"LoRAs need peft: pip install 'diffbench[lora]' ({exc})") from None
    except (ValueError, KeyError, OSError) as exc:
        if names:
            pipe.unload_lora_weights()
        raise NotApplicable(f"LoRA '{wanted}' does not fit {type(pipe).__name__}: {str(exc)[:300]}") from None
    costs["lora_load_s"] = time.perf_counter() - started
    if is_fused(wanted):
        started = time.perf_counter()
        pipe.fuse_lora(adapter_names=names)
        pipe.unload_lora_weights()  # the merged weights stay; the peft layers go
        costs["lora_fuse_s"] = time.perf_counter() - started
    return wanted, costs
