"""Where and how a load group runs (device, dtype, the card) and the arguments of one generation
(worker side; imports torch). What each setting axis does to a pipeline is in execute/axes/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..rules.applicability import setting_problem

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
    axes: dict[str, Any] = field(default_factory=dict)  # what load-time axes' at_load returned

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
        described.update(self.axes)
        import multiprocessing

        # how this worker process started: forked from the warm server, or spawned (execute/processes.py)
        described["worker_start"] = multiprocessing.get_start_method(allow_none=True) or "in process"
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
        from ..rules.families import family as family_spec

        dtype = "fp32" if device.type == "cpu" else family_spec(family).gpu_dtype
    total = int(torch.cuda.get_device_properties(device).total_memory) if device.type == "cuda" else None
    return Runtime(device, dtype, gpu_name, gpu_uuid, total_memory=total)


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, DTYPES[name])


def call_arguments(pipe: Any, settings: dict[str, Any], base_dir: str = ".") -> dict[str, Any]:
    """Keyword arguments for pipe(...) for one generation of this cell."""
    import inspect

    import torch

    from ..rules import tasks
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


