"""The results contract as types: every line of a results file, validated the same way by the
writer's tests, the loader, `--resume` and the benchmarks' record factories.

`diffbench schema --results` prints the JSON Schema of these models. Fields may be added
(every model keeps unknown fields); a change of meaning bumps SCHEMA_VERSION and adds an
upgrade function below, which the loader applies to older files.

Schema changelog:
- 1 (diffbench 0.1.0): run, load, generation and warning lines.
- 2: quality lines (a cell's CLIP score, with the checkpoint that gave it), and the generation
  fields image_full (the full-resolution picture they were computed on), finished_at (UTC) and
  pilot (repeats: auto's pilot generations, left out of the statistics like warm-ups). A version-1 file needs no
  upgrade; a version-1 reader refuses a version-2 file by its run line, in one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .. import SCHEMA_VERSION
from ..errors import one_line

Status = Literal["ok", "oom", "crashed", "timeout", "error", "not_applicable"]  # declared once, here
STATUSES: tuple[str, ...] = get_args(Status)
# A cell that ended so is complete: running it again would measure the same failure (resume skips it).
TERMINAL_STATUSES = frozenset(STATUSES) - {"ok"}

# Bounds that keep a hostile or broken file from costing unbounded time or memory to read.
MAX_LINE_BYTES = 8 * 2**20
MAX_TEXT_CHARS = 1_000_000
MAX_EVALUATIONS = 100_000
MAX_LIST = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# What a line's text must hold for a number in it to be outside the policy: a non-finite constant or
# a run of 19 digits (int64 has 19). Lines without either (nearly all) skip the walk over every value.
_ALL_DIGITS_NINE = bytes.maketrans(b"0123456789", b"9" * 10)


def _may_hold_odd_numbers(text: bytes) -> bool:
    return b"NaN" in text or b"Infinity" in text or b"9" * 19 in text.translate(_ALL_DIGITS_NINE)
MAX_BYTES = 2**62  # larger than any memory; keeps huge integers out of the arithmetic

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Identifier = Annotated[str, Field(min_length=1, max_length=256)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_BYTES)]
ByteCount = Annotated[int, Field(ge=0, le=MAX_BYTES)]


class _Line(BaseModel):
    # strict: a string is never read as a number, nor 1 as true; extra: fields may be added.
    model_config = ConfigDict(strict=True, extra="allow")


class SuiteInfo(_Line):
    name: Text
    path: Text | None = None
    sha256: Text | None = None
    description: Text | None = None


class GpuInfo(_Line):
    name: Text | None = None
    uuid: Text | None = None
    vram_bytes: ByteCount | None = None


class HostInfo(_Line):
    hostname: Text
    os: Text | None = None
    cpu: Text | None = None
    ram_bytes: ByteCount | None = None
    gpus: list[GpuInfo] = Field(default_factory=list, max_length=1024)


class RunLine(_Line):
    """Opens each run (and, on a cluster, each node's part of it)."""

    type: Literal["run"]
    schema_version: Annotated[int, Field(ge=1, le=10_000)]
    run_id: Identifier
    parent_run_id: Identifier | None = None
    started_at: Text
    suite: SuiteInfo
    host: HostInfo
    software: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] | None = None


class CellSettings(_Line):
    """The fully resolved settings of a cell (more axes are kept as extra fields, those that are
    typed by their axis declaration)."""

    model: Text
    source: Text | None = None
    family: Text | None = None
    weights: Text | None = None
    device: Text | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_EVALUATIONS)]
    sampler: Text
    resolution: Text
    batch_size: Annotated[int, Field(ge=1, le=MAX_LIST)] = 1
    guidance_scale: Annotated[float, Field(allow_inf_nan=False)] | None = None
    seed: int | None = None
    prompt: Text | None = None
    negative_prompt: Text | None = None

    @model_validator(mode="after")
    def _typed_axes(self) -> CellSettings:
        for name, value in (self.model_extra or {}).items():
            typed = _AXIS_TYPES.get(name)
            if typed is None or value is None:
                continue
            adapter, is_float = typed
            if is_float and type(value) is int:
                value = float(value)  # a strength of 1 is 1.0 written by another tool
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError as exc:
                why = str(exc.errors(include_url=False)[0]["msg"])
                raise ValueError(f"axis field '{name}': {why} (given {_short(value)})") from None
        return self


def _typed_axes() -> dict[str, tuple[TypeAdapter[Any], bool]]:
    """Every axis a cell carries as an extra field, with the type a suite gives it (and whether it
    is a float): numbers and flags keep their declared bounds (frames, fps, strength, compile), a
    closed set its values (offload, dtype, task: a new value is a new schema, which an older
    diffbench refuses by its version anyway); every other axis is text, whatever its allowed values.
    A file never hands the analysis a list where a setting is (a recipe), or a number beyond its axis."""
    from ..rules import axes

    found: dict[str, tuple[TypeAdapter[Any], bool]] = {}
    for axis in axes.AXES:
        if axis.name in CellSettings.model_fields:
            continue
        if get_origin(axis.annotation) is Literal:  # a closed set (offload, dtype, task): only its values
            found[axis.name] = (TypeAdapter(axis.annotation), False)
            continue
        base = get_args(axis.annotation)[0] if get_args(axis.annotation) else axis.annotation
        if base in (int, float, bool):
            found[axis.name] = (TypeAdapter(axis.annotation), base is float)
        else:
            found[axis.name] = (TypeAdapter(Text), False)
    return found


_AXIS_TYPES = _typed_axes()


class GenerationLine(_Line):
    """One generation (warm-ups too), or a cell that never produced one, with its status."""

    type: Literal["generation"]
    run_id: Identifier
    cell_id: Identifier
    cell: CellSettings
    repeat: Annotated[int, Field(ge=0, le=MAX_LIST * 100)]
    finished_at: Text | None = None  # UTC, when the line was recorded (schema 2)
    warmup: bool
    status: Status
    error: Text | None = None
    wall_s: Positive | None = None
    timed_s: Seconds | None = None
    phases_s: dict[Annotated[str, Field(max_length=64)], Seconds] | None = Field(None, max_length=64)
    step_s: list[Seconds] = Field(default_factory=list, max_length=MAX_EVALUATIONS)
    evaluations: Count = 0
    denoiser_calls: Count | None = None
    compile_s: Seconds | None = None  # with compile: seconds torch.compile spent inside this generation
    graphs_compiled: Count | None = None  # graphs compiled inside it: the first call, then recompiles
    lora_load_s: Seconds | None = None  # loading this cell's LoRAs onto the loaded pipeline (not in wall_s)
    lora_unload_s: Seconds | None = None  # removing the previous cell's LoRAs first
    lora_fuse_s: Seconds | None = None  # merging them into the weights (lora: fuse:...)
    denoiser_work: Annotated[float, Field(ge=0, le=MAX_EVALUATIONS, allow_inf_nan=False)] | None = None  # step cache: full-evaluation equivalents that ran
    peak_vram_allocated_bytes: ByteCount | None = None
    peak_vram_reserved_bytes: ByteCount | None = None
    peak_vram_decode_bytes: ByteCount | None = None  # torch's allocated peak during the VAE decode (CUDA)
    peak_vram_device_bytes: ByteCount | float | None = None  # NVML samples arrive as floats
    peak_host_rss_bytes: ByteCount | None = None
    host_rss_peak_exact: bool | None = None
    energy_j: Seconds | None = None
    avg_power_w: Seconds | None = None
    energy_source: Text | None = None  # energy_counter / integrated_power (NVML, GPU) or rapl_package (CPU)
    telemetry: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    image: Text | None = None
    image_full: Text | None = None  # the full-resolution picture, kept when the suite asks for a CLIP score
    image_full_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None  # its digest when written
    traceback: Text | None = None
    requested_steps: Count | None = None
    # image-to-image / inpainting: the steps `strength` leaves (diffusers' rounding); the loop's own
    # count is `evaluations`, and the two are checked against each other
    effective_steps: Count | None = None
    video_frames: Count | None = None  # video: frames the pipeline returned per clip
    flops_per_denoiser_call: Count | None = None
    repeats_stop: dict[str, Any] | None = None  # repeats: auto, on a cell's last generation: why it stopped
    pilot: bool | None = None  # repeats: auto's pilot (schema 2): measured, decided the count, left out of statistics
    round: Count | None = None  # interleaved order: the round of this measured turn (a run's cells pair by it)
    round_group: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")] | None = None  # the cells that took turns together
    host_rss_baseline_bytes: ByteCount | None = None
    cpu_s: Seconds | None = None
    load_avg_1m: Seconds | None = None
    gpu_other_processes: list[dict[str, Any]] | None = Field(None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _measured_when_ok(self) -> GenerationLine:
        if self.status == "ok":
            if self.wall_s is None:
                raise ValueError("field 'wall_s' is missing: a generation with status ok needs it")
            if self.evaluations != len(self.step_s):
                raise ValueError(f"field 'evaluations': {self.evaluations}, but step_s holds {len(self.step_s)} values")
        if isinstance(self.peak_vram_device_bytes, float) and not 0 <= self.peak_vram_device_bytes <= MAX_BYTES:
            raise ValueError("field 'peak_vram_device_bytes': out of range")
        return self


class LoadLine(_Line):
    """A worker loaded a pipeline: how long it took and where it runs."""

    type: Literal["load"]
    run_id: Identifier
    load_s: Seconds | None = None  # building or reading the pipeline and placing it, imports excluded
    import_s: Seconds | None = None  # importing diffusers and its pipelines, before the load
    runtime: dict[str, Any] | None = None


class WarningLine(_Line):
    """Advice stored during a run (noisy cell, throttling, few repeats, ...)."""

    type: Literal["warning"]
    run_id: Identifier
    cell_id: Identifier | None = None
    kind: Text
    subject: Text
    message: Text


class QualityLine(_Line):
    """A quality figure of a cell's picture, computed after the run (CLIP score: 100 x cosine of the
    picture's and the prompt's CLIP embeddings), with the checkpoint that computed it."""

    type: Literal["quality"]
    run_id: Identifier
    cell_id: Identifier
    metric: Literal["clip_score"]
    value: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
    checkpoint: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]  # a Hub id, a folder (any path)
    image: Text | None = None  # the picture scored, relative to the results file


ResultsLine = Annotated[Union[RunLine, GenerationLine, LoadLine, WarningLine, QualityLine],
                        Field(discriminator="type")]
LINE_TYPES = ("run", "generation", "load", "warning", "quality")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResultsLine)

# version v -> function that turns a record of version v into one of version v + 1.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class LineError(ValueError):
    """A results line that breaks the contract; the message names the field, on one line
    (a key "\\n" in the line is shown escaped, as in every DiffbenchError)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def _short(value: Any, limit: int = 60) -> str:
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        return f"a whole number of about {value.bit_length() * 0.30103:.0f} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(line)"


def _number_outside_policy(record: dict[str, Any]) -> tuple[tuple[Any, ...], Any] | None:
    """The first number anywhere in a line, declared field or extra, that the analysis cannot hold:
    a whole number beyond 64 bits (pandas' Int64 and numpy overflow on it) or a non-finite float
    (Python's json reads NaN and Infinity; diffbench never writes them). One policy for every field."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), record)]
    while stack:
        where, node = stack.pop()
        kind = type(node)
        if kind is int:
            if not INT64_MIN <= node <= INT64_MAX:
                return where, node
        elif kind is float:
            if not math.isfinite(node):
                return where, node
        elif kind is dict:
            stack.extend(((*where, key), value) for key, value in node.items())
        elif kind is list:  # step_s holds up to 100,000 floats: containers and odd numbers only are pushed
            stack.extend(((*where, i), value) for i, value in enumerate(node)
                         if type(value) is not float or not math.isfinite(value))
    return None


def validate_line(record: Any, text: bytes | None = None) -> dict[str, Any]:
    """Check one parsed line against the contract; return it unchanged, or raise LineError.
    `text`: the JSON the record was parsed from, which spares the number walk where it cannot matter."""
    if not isinstance(record, dict):
        raise LineError(f"a results line is a JSON object, not {type(record).__name__}")
    kind = record.get("type")
    if kind not in LINE_TYPES:
        raise LineError(f"field 'type': given {_short(kind)}; allowed: {', '.join(LINE_TYPES)}")
    outside = None if text is not None and not _may_hold_odd_numbers(text) else _number_outside_policy(record)
    if outside is not None:
        where, value = outside
        raise LineError(f"field '{_field(where)}': {_short(value)} is not a number diffbench reads (whole numbers "
                        "must fit 64 bits, and numbers must be finite)")
    try:
        _ADAPTER.validate_python(record)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = tuple(error["loc"])
        if loc and loc[0] == kind:  # the discriminator's tag leads the location
            loc = loc[1:]
        if error["type"] == "missing":
            raise LineError(f"field '{_field(loc)}' is missing") from None
        given = "" if error["type"] in {"value_error", "assertion_error"} else f" (given {_short(error.get('input'))})"
        message = str(error["msg"]).removeprefix("Value error, ")
        axis_field, _, axis_message = message.partition("': ")
        if axis_field.startswith("axis field '"):  # an axis kept as an extra field: name it in its place
            loc, message = (*loc, axis_field.removeprefix("axis field '")), axis_message
        raise LineError(f"field '{_field(loc)}': {message}{given}" if loc else f"{message}{given}") from None
    return record


def upgrade(record: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a record written under schema `version` to the current schema, one step at a time."""
    while version < SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is not None:
            record = step(record)
        version += 1
    return record


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of one results line (any of its types)."""
    schema = _ADAPTER.json_schema()
    schema["title"] = f"diffbench results line (schema_version {SCHEMA_VERSION})"
    return schema


def generation_record(cell_id: str, cell: dict[str, Any], repeat: int, warmup: bool, status: str,
                      error: str | None = None, **measured: Any) -> dict[str, Any]:
    """A complete generation line; fields not measured stay null (results are never invented)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    record: dict[str, Any] = {"type": "generation", "cell_id": cell_id, "cell": cell, "repeat": repeat,
                              "warmup": warmup, "status": status, "error": error}
    record.update(MEASURED_FIELDS)
    record["step_s"] = []
    record.update(measured)
    return record


MEASURED_FIELDS: dict[str, Any] = {
    "wall_s": None, "timed_s": None,
    "phases_s": None, "step_s": [], "evaluations": 0, "denoiser_calls": 0,
    "peak_vram_allocated_bytes": None, "peak_vram_reserved_bytes": None, "peak_vram_device_bytes": None,
    "peak_host_rss_bytes": None, "host_rss_peak_exact": None, "energy_j": None, "avg_power_w": None,
    "telemetry": None,
}


# --- factories: the one way tests and benchmarks build records by hand -------------------------

REQUIRED_CELL_DEFAULTS: dict[str, Any] = {"model": "model", "steps": 1, "sampler": "default", "resolution": "512x512"}


def cell_settings(**settings: Any) -> dict[str, Any]:
    """A cell's settings with the contract's required fields filled where not given."""
    return {**REQUIRED_CELL_DEFAULTS, **settings}


def run_record(run_id: str, hostname: str, gpus: list[dict[str, Any]] | None = None,
               suite: dict[str, Any] | None = None, software: dict[str, Any] | None = None,
               schema_version: int = SCHEMA_VERSION, started_at: str = "2026-11-01T00:00:00Z",
               **extra: Any) -> dict[str, Any]:
    """A run line (host, suite and software as given; the rest of the contract filled)."""
    host = {"hostname": hostname, "gpus": gpus or []}
    host.update(extra.pop("host", {}))
    return {"type": "run", "schema_version": schema_version, "run_id": run_id, "started_at": started_at,
            "suite": suite or {"name": "suite"}, "host": host, "software": software or {}, **extra}
