"""Every setting axis, declared once: its type and check, its default, what it means to the rest.

Each `Axis` says what the suite accepts (type, check, description), what a cell gets when nothing
sets it (default), the value that means "not used" (left out of cell ids, so results measured
before the axis existed keep theirs), whether changing it needs a fresh pipeline load, whether it
changes the picture (quality compares pictures that only differ in axes that do not), whether it
shapes the cost of a step (the cost model fits each combination of those apart), the results column
it is read back from, and how labels show it. Everything else is derived here: the suite model
(suite.py), the plan's defaults and load keys, the frame's setting columns, the console's axes,
the cost model's and quality's groupings. Adding an axis is one entry in AXES plus the worker module
that applies it (execute/axes/, named by `worker`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from .tasks import Task

# "auto": fp32 on CPU; on an accelerator fp16 for SD/SDXL and bf16 for SD3/FLUX (as they are trained).
Dtype = Literal["auto", "fp32", "fp16", "bf16"]
Offload = Literal["none", "model", "sequential", "group-block", "group-leaf"]
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "half": "fp16", "float": "fp32"}
# Backends that diffusers can dispatch to without fetching kernels from the Hub.
ATTENTION_BACKENDS = (
    "default", "native", "flash", "flash_varlen", "_flash_3", "_flash_varlen_3", "flex",
    "_native_cudnn", "_native_efficient", "_native_flash", "_native_math",
    "sage", "sage_varlen", "xformers",
)
NOT_USED = object()  # an axis without a "not used" value


def parse_resolution(value: Any) -> str:
    """'1024x768', '1024 x 768', 1024 or [1024, 768] -> '1024x768' (width x height)."""
    if isinstance(value, bool):
        raise ValueError("expected WIDTHxHEIGHT such as 1024x1024")
    if isinstance(value, int):
        width = height = value
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        width, height = value
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)):
        width, height = int(m.group(1)), int(m.group(2))
    else:
        raise ValueError("expected WIDTHxHEIGHT such as 1024x1024")
    for side in (width, height):
        if side < 8 or side > 8192 or side % 8:
            raise ValueError("width and height must be multiples of 8 between 8 and 8192")
    return f"{width}x{height}"


def normalise_dtype(value: Any) -> Any:
    return DTYPE_ALIASES.get(value, value) if isinstance(value, str) else value


def _check_device(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise ValueError("allowed: auto, cpu, cuda, cuda:N, mps")
    return value


def _check_attention(value: Any) -> Any:
    if isinstance(value, str) and value not in ATTENTION_BACKENDS:
        close = difflib.get_close_matches(value, ATTENTION_BACKENDS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"{hint}allowed: {', '.join(ATTENTION_BACKENDS)}")
    return value


def _check_vram_limit(value: Any) -> str:
    from .memsize import vram_limit_bytes

    if not isinstance(value, str):
        raise ValueError("expected a size such as 12GiB or a GPU name such as 'RTX 3060'")
    vram_limit_bytes(value)
    return value.strip()


def _check_cache(value: Any) -> str:
    from .caches import canonical_cache

    if not isinstance(value, str):
        raise ValueError("expected none, first-block, taylorseer or pab, optionally @value (e.g. first-block@0.1)")
    return canonical_cache(value) or "none"


def _check_quantize(value: Any) -> str:
    from .quantization import canonical_quantization

    if not isinstance(value, str):
        raise ValueError("expected none or LIBRARY:FORMAT such as torchao:int8 or quanto:int4")
    return canonical_quantization(value)


def _check_lora(value: Any) -> str:
    from .loras import canonical_loras

    if not isinstance(value, str):
        raise ValueError("expected none or FILE.safetensors[@scale], several joined with '+'")
    return canonical_loras(value)


def _check_sampler(value: Any) -> Any:
    from . import samplers

    if isinstance(value, str):
        samplers.lookup(value)  # raises with a near miss
    return value


@dataclass(frozen=True)
class Axis:
    name: str
    annotation: Any  # the type the suite accepts (None is always accepted: "not given here")
    default: Any  # what a cell gets when neither matrix, model nor suite sets it
    description: str = ""
    check: Callable[[Any], Any] | None = None  # normalises or raises ValueError with what is allowed
    check_first: bool = False  # check before the type is enforced (the check also converts)
    unused: Any = NOT_USED  # the value that means "axis not used": left out of cell ids
    reloads: bool = False  # a change needs a fresh pipeline load
    picture: bool = False  # part of what makes two pictures the same picture (quality compares within)
    cost: bool = False  # shapes the cost of a generation (the cost model fits each value apart)
    column: str | None = None  # the results column it is read back from; default: its name
    quiet: str | None = None  # the value a label leaves out (the "off" value)
    named: bool = False  # a label says "name=value", not the bare value
    shown: bool = True  # the console's plan table shows it when it varies
    whole_number: bool = False  # an integer column that empty rows must not turn into floats
    instance: bool = False  # one instance of a setting (its prompt, its seed): a setting's time and memory pool over them
    worker: str | None = None  # its worker module under execute/axes/ (or a full module path)
    # a load-time axis: when its module's at_load runs as the worker loads (execute/axes): below 0
    # before the pipeline exists, 0 builds it, then upwards; one added from outside comes last
    load_order: int = 100

    @property
    def results_column(self) -> str:
        return self.column or self.name


Steps = Annotated[int, Field(ge=1, le=1000)]
Batch = Annotated[int, Field(ge=1, le=64)]
Guidance = Annotated[float, Field(ge=0, le=100)]
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
Prompt = Annotated[str, Field(max_length=10_000)]
Path = Annotated[str, Field(min_length=1, max_length=4096)]

# In the order labels name them (model first, then what ran, then the recipe, then inputs).
AXES: tuple[Axis, ...] = (
    Axis("model", str, None, reloads=True, picture=True, cost=True, worker="model", load_order=0),
    # set by the suite's `recipes:` (a whole configuration compared as one: compare --by recipe)
    Axis("recipe", str, None, "the suite recipe this cell belongs to (set by `recipes:`)", cost=True),
    Axis("device", str, "auto", "auto, cpu, cuda, cuda:N or mps", _check_device, reloads=True,
         column="runtime_device"),
    Axis("gpu", str, None, "run only on a GPU whose name contains this, e.g. 'RTX 4090'", reloads=True,
         column="hardware", picture=True, cost=True),
    Axis("dtype", Dtype, "auto", check=normalise_dtype, check_first=True, reloads=True, picture=True, cost=True,
         column="runtime_dtype"),
    Axis("sampler", str, "default", "A1111, ComfyUI or diffusers name, e.g. 'DPM++ 2M Karras'", _check_sampler,
         picture=True, cost=True, quiet="default", worker="sampler"),
    Axis("steps", Steps, 20),
    Axis("resolution", str, None, "WIDTHxHEIGHT, multiples of 8", parse_resolution, check_first=True, picture=True,
         cost=True),
    Axis("batch_size", Batch, 1, picture=True, cost=True, named=True),
    Axis("guidance_scale", Guidance, None, picture=True, cost=True, named=True),
    Axis("offload", Offload, "none", reloads=True, picture=True, cost=True, quiet="none", named=True, worker="offload",
         load_order=30),
    Axis("attention", str, "default", "diffusers attention backend, or 'default'", _check_attention, reloads=True,
         picture=True, cost=True, quiet="default", named=True, worker="attention", load_order=40),
    Axis("compile", bool, False, "torch.compile the denoiser", reloads=True, picture=True, cost=True, quiet="False",
         named=True, worker="compile", load_order=50),
    Axis("vae_tiling", bool, False, picture=True, cost=True, quiet="False", named=True, worker="vae"),
    Axis("vae_slicing", bool, False, picture=True, cost=True, quiet="False", named=True, worker="vae"),
    Axis("vram_limit", str, None, "cap CUDA memory to emulate a smaller card: 12GiB or 'RTX 3060'", _check_vram_limit,
         check_first=True, reloads=True, cost=True, named=True, worker="vram_limit", load_order=-10),
    Axis("lora", str, "none", "none, or FILE.safetensors[@scale], several joined with '+'; fuse: before them "
         "merges them into the weights", _check_lora, check_first=True, unused="none", picture=True, cost=True,
         quiet="none", named=True, worker="lora"),
    Axis("cache", str, "none", "step cache: none, first-block[@threshold], taylorseer[@interval], pab[@skip_range], "
         "fastercache[@skip_range], magcache[@threshold]", _check_cache, check_first=True, unused="none", cost=True,
         quiet="none", named=True, worker="cache"),
    Axis("quantize", str, "none", "weight quantization: none, torchao:int8|fp8|int4, quanto:int8|fp8|int4, "
         "bnb:nf4|int8 (CUDA); @all adds the text encoders", _check_quantize, check_first=True, unused="none",
         reloads=True, cost=True, quiet="none", named=True, worker="quantize", load_order=20),
    # the family's own task when unset (text-to-image, or text-to-video); the value of results
    # before the axis existed is text-to-image
    Axis("task", Task, None, "text-to-image, image-to-image, inpainting, text-to-video or image-to-video; default: "
         "the model's own", unused="text-to-image", reloads=True, picture=True, cost=True, quiet="text-to-image",
         worker="task", load_order=10),
    Axis("strength", Annotated[float, Field(gt=0, le=1)], None, "image-to-image and inpainting: how much of the "
         "input is redrawn (the share of steps run)", picture=True, cost=True, named=True),
    Axis("frames", Annotated[int, Field(ge=1, le=1025)], None, "video: frames per clip", picture=True, cost=True, named=True,
         whole_number=True, worker="frames"),
    Axis("fps", Annotated[int, Field(ge=1, le=240)], None, "video: frames per second of the clip", picture=True, named=True,
         whole_number=True),
    Axis("init_image", Path, None, "input image file (relative to the suite); default: one generated from the seed",
         picture=True, named=True),
    Axis("mask_image", Path, None, "inpainting mask file, white where to repaint; default: the middle of the image",
         picture=True, named=True),
    Axis("seed", Seed, 0, picture=True, named=True, instance=True),
    Axis("prompt", Prompt, "a photograph of an astronaut riding a horse", picture=True, instance=True),
    Axis("negative_prompt", Prompt, None, shown=False, picture=True, instance=True),
)


def builtin_defaults(declared: tuple[Axis, ...] | None = None) -> dict[str, Any]:
    """What a cell gets when neither the matrix, the model nor the suite says otherwise."""
    return {axis.name: axis.default for axis in (declared or AXES) if axis.name != "model"}


def views(declared: tuple[Axis, ...]) -> dict[str, Any]:
    """Every view the rest of the package reads, derived from the declarations (a test derives
    them again with a throwaway axis added, and checks that it reaches each one)."""
    return {
        "BY_NAME": {axis.name: axis for axis in declared},
        "AXIS_NAMES": tuple(axis.name for axis in declared),
        "UNUSED_SETTINGS": {axis.name: axis.unused for axis in declared if axis.unused is not NOT_USED},
        "LOAD_KEYS": tuple(axis.name for axis in declared if axis.reloads),
        "SHOWN_AXES": tuple(axis.name for axis in declared if axis.shown),
        "NAMED_IN_LABELS": frozenset(axis.results_column for axis in declared if axis.named),
        "QUIET_VALUES": {axis.results_column: axis.quiet for axis in declared if axis.quiet is not None},
        "WHOLE_NUMBER_SETTINGS": tuple(axis.results_column for axis in declared if axis.whole_number),
        # results columns of every axis but the device-selecting gpu (its card is `hardware`), with
        # where a setting ran (source, host, card) after the model
        "SETTING_COLUMNS": ("model", "source", "hostname", "hardware",
                            *(axis.results_column for axis in declared if axis.name not in ("model", "gpu"))),
        # what shapes the cost of a generation except the step count (the cost model's line runs over it)
        "COST_COLUMNS": tuple(axis.results_column for axis in declared if axis.cost),
        # what makes two pictures the same picture: a LoRA changes it on purpose (a picture of its
        # own); a step cache or quantization only approximates it, so they share the one they approximate
        "PICTURE_COLUMNS": ("source", *(axis.results_column for axis in declared if axis.picture)),
        # a setting's instances: charts show one bar per setting over them, paired statistics pair on them
        "INSTANCE_COLUMNS": tuple(axis.results_column for axis in declared if axis.instance),
    }


_VIEWS = views(AXES)
BY_NAME: dict[str, Axis] = _VIEWS["BY_NAME"]
AXIS_NAMES: tuple[str, ...] = _VIEWS["AXIS_NAMES"]
UNUSED_SETTINGS: dict[str, Any] = _VIEWS["UNUSED_SETTINGS"]
LOAD_KEYS: tuple[str, ...] = _VIEWS["LOAD_KEYS"]
SHOWN_AXES: tuple[str, ...] = _VIEWS["SHOWN_AXES"]
NAMED_IN_LABELS: frozenset[str] = _VIEWS["NAMED_IN_LABELS"]
QUIET_VALUES: dict[str, str] = _VIEWS["QUIET_VALUES"]
WHOLE_NUMBER_SETTINGS: tuple[str, ...] = _VIEWS["WHOLE_NUMBER_SETTINGS"]
SETTING_COLUMNS: tuple[str, ...] = _VIEWS["SETTING_COLUMNS"]
COST_COLUMNS: tuple[str, ...] = _VIEWS["COST_COLUMNS"]
PICTURE_COLUMNS: tuple[str, ...] = _VIEWS["PICTURE_COLUMNS"]
INSTANCE_COLUMNS: tuple[str, ...] = _VIEWS["INSTANCE_COLUMNS"]


def steps_text(steps: Any) -> str:
    """'8 steps', and '1 step'."""
    return f"{steps} step" if str(steps) == "1" else f"{steps} steps"


# Every other module reads the views above when it uses them (`axes.SETTING_COLUMNS`), so an axis
# registered at any time reaches it. The one copy is the suite's schema: pydantic builds it as a
# class when suitemodel is imported, so an axis registered after that would be missing from the
# suites it validates, and registering then is refused.
COPIED_BY = ("diffbench.intake.suitemodel",)


class AxisRegistrationError(ValueError):
    """An axis that cannot be added: its name is taken, or the views were already copied."""


def register(axis: Axis) -> Axis:
    """Add a setting axis from outside the package (a plugin's hook, rules/plugins.py): it reaches
    the suite's schema, cell ids, labels and the results' columns like a shipped one."""
    import sys

    global AXES
    if axis.name in BY_NAME:
        raise AxisRegistrationError(f"axis '{axis.name}' is already declared")
    early = [name for name in COPIED_BY if name in sys.modules]
    if early:
        raise AxisRegistrationError(f"axis '{axis.name}' registered after {', '.join(early)} copied the axes: register "
                                    "it from a diffbench.plugins entry point, which runs before them")
    AXES = AXES + (axis,)
    globals().update(views(AXES))
    return axis
