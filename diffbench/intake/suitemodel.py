"""The suite's typed model: what a suite file holds once validated (suite.py reads and checks it).

Kept apart from the reading and checking so that plan.py, which the checks use to expand a suite
into cells, can know the Suite type without importing what imports it (no import circle).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, field_validator

from ..rules.axes import AXES as AXES_DECLARED
from ..rules.axes import AXIS_NAMES, Axis, Dtype, normalise_dtype
from ..rules.families import FAMILIES
from ..rules.repeats import AutoRepeats, SteadyWarmup


def axis_values_model(declared: tuple[Axis, ...]) -> type[BaseModel]:
    """The suite's model of settings, one optional field per declared axis (axes.py), with its check."""
    fields: dict[str, Any] = {
        axis.name: (axis.annotation | None, Field(None, description=axis.description or None)) for axis in declared}
    validators = {}
    for axis in declared:
        if axis.check is not None:
            def run(cls: Any, value: Any, check: Any = axis.check) -> Any:
                return None if value is None else check(value)

            mode = "before" if axis.check_first else "after"
            validators[f"_check_{axis.name}"] = field_validator(axis.name, mode=mode)(classmethod(run))
    model = create_model("AxisValues", __config__=ConfigDict(extra="forbid"), __validators__=validators,  # type: ignore[call-overload]
                         **fields)
    model.__doc__ = "Settings a generation runs with. Every field is a matrix axis; unset means 'not given here'."
    return model  # type: ignore[no-any-return]


AxisValues = axis_values_model(AXES_DECLARED)
AXES: tuple[str, ...] = AXIS_NAMES

class ModelSpec(BaseModel):
    """A named model: where its weights come from and how to load them."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="builtin:NAME, synthetic:NAME, a Hub id, a diffusers folder, a .safetensors "
                                    "file, or with base: a denoiser file (.gguf or .safetensors)")
    base: str | None = Field(None, description="with a denoiser-only file as source (a .gguf, or a .safetensors of "
                                               "the transformer or UNet alone): the pipeline it goes into "
                                               "(builtin:NAME, a diffusers folder or a Hub id), which gives the "
                                               "text encoders, the VAE and the denoiser's config")
    family: str | None = Field(None, description="a registered model family (sd, sdxl, sd3, flux, ...); inferred "
                                                 "when omitted")
    revision: str | None = None
    variant: str | None = Field(None, description="weights variant such as 'fp16'")
    dtype: Dtype | None = None
    config: str | None = Field(None, description="config folder or Hub id for a single-file checkpoint")
    allow_pickle: bool = Field(False, description="allow .ckpt/.bin weights (pickle can run code)")
    trust_remote_code: bool = False
    defaults: AxisValues = Field(default_factory=AxisValues, description="per-model defaults, e.g. guidance_scale")

    _dtype = field_validator("dtype", mode="before")(classmethod(lambda cls, v: normalise_dtype(v)))

    @property
    def pipeline_source(self) -> str:
        """Where the pipeline (its config, family and defaults) comes from: the base, if any."""
        return self.base or self.source

    @field_validator("family")
    @classmethod
    def _registered_family(cls, value: str | None) -> str | None:
        if value is not None and value not in FAMILIES:  # read at validation time: families can be added
            raise ValueError(f"allowed: {', '.join(FAMILIES)}")
        return value


class QualitySpec(BaseModel):
    """How the pictures of a run are judged after it (never during a measured generation)."""

    model_config = ConfigDict(extra="forbid")

    clip: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        None, description="a CLIP checkpoint (a folder, a Hub id in the local Hugging Face cache, or builtin:tiny-clip "
                          "with random weights) that scores every cell's full-resolution picture against its "
                          "prompt (CLIP score), after the last cell")


class Suite(BaseModel):
    """A validated suite. `path` and `sha256` identify the file it came from."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")]
    description: str = ""
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    defaults: AxisValues = Field(default_factory=AxisValues)
    matrix: dict[str, Any] = Field(default_factory=dict)
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    recipes: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")], dict[str, Any]] = Field(
        default_factory=dict,
        description="named whole configurations compared as wholes (compare --by recipe), e.g. turbo: {model: "
                    "sdxl-turbo, steps: 4, guidance_scale: 0}; each crossed with the matrix, its values winning")
    warmup: Annotated[int, Field(ge=0, le=100)] = 1
    warmup_steady: SteadyWarmup | None = Field(
        None, description="warm up until the last two warm-ups agree within tolerance (at most max), after `warmup`")
    order: Literal["interleaved", "blocked"] = Field(
        "interleaved", description="interleaved: the cells of one pipeline load take turns, round by round, so that a "
                                   "GPU's drift and clock states fall on all of them; blocked: each cell's repeats in "
                                   "a row")
    order_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = Field(
        0, description="seeds the first round's shuffle of the interleaved order (recorded with the results)")
    repeats: Annotated[int, Field(ge=1, le=1000)] | Literal["auto"] = Field(
        "auto", description="measured generations per cell, or 'auto': until the median is known well enough")
    auto_repeats: AutoRepeats = Field(default_factory=AutoRepeats, description="the stopping rule of repeats: auto")
    prompts: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        None, description="the prompt axis from a file (one prompt per line, # comments) or builtin:varied (24 "
                          "prompts shipped with diffbench): quality becomes a statistic over prompts")
    quality: QualitySpec = Field(default_factory=QualitySpec, description="quality figures computed after the run")
    quality_reference: dict[str, Any] | None = Field(
        None, description="the setting every image of a picture is compared with (e.g. {sampler: euler, steps: 50}); "
                          "default: the most steps measured, the model's own sampler first")
    timeout_s: Annotated[float, Field(gt=0)] | None = Field(None, description="time limit per cell")

    # the cells plan.expanded made of this suite, with the suite's JSON they were made from
    _expanded: Any = PrivateAttr(default=None)

    path: str = Field("", exclude=True)
    sha256: str = Field("", exclude=True)
    base_dir: str = Field("", exclude=True)

    @field_validator("quality_reference")
    @classmethod
    def _reference_axes(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            unknown = [k for k in value if k not in AXES]
            if unknown or not value:
                raise ValueError(f"allowed: a mapping of axes ({', '.join(AXES)}) to single values")
            if any(isinstance(v, (list, dict)) for v in value.values()):
                raise ValueError("allowed: one value per axis (the reference is a single setting)")
        return value

    @property
    def auto(self) -> bool:
        return self.repeats == "auto"

    @property
    def pilot_repeats(self) -> int:
        """Measured generations that only decide the count (repeats: auto's pilot), kept out of the statistics."""
        return self.auto_repeats.pilot if self.repeats == "auto" else 0

    @property
    def most_warmups(self) -> int:
        """Warm-ups a cell gets at most."""
        return max(self.warmup, self.warmup_steady.max) if self.warmup_steady else self.warmup

    @property
    def max_repeats(self) -> int:
        """The most measured generations a cell can get (a pilot included)."""
        return self.pilot_repeats + (self.auto_repeats.max if self.repeats == "auto" else int(self.repeats))

    @property
    def min_repeats(self) -> int:
        """The fewest measured generations in a cell's statistics (a pilot not included)."""
        return self.auto_repeats.min if self.repeats == "auto" else int(self.repeats)

    def repeats_text(self) -> str:
        return (f"auto (a pilot of {self.auto_repeats.pilot}, then {self.auto_repeats.min}-{self.auto_repeats.max}) "
                "repeats" if self.auto else f"{self.repeats} repeats")
