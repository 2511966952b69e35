"""Every derived metric, declared once: its name, what it is called, its unit, which way is better,
how it is computed per generation and how a cell's generations are summarised.

The frames (per-generation columns and per-cell summaries), the comparison tables, the report's
tables, the export's columns and the CLI's --metric choices all read this registry; adding a
metric is one `register(Metric(...))` call (docs/architecture.md has the recipe).

This module imports nothing heavy: the CLI builds its --metric choices from it without pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

JOULES_PER_KWH = 3.6e6
Better = Literal["lower", "higher"]
Summary = Literal["median", "max"]


@dataclass(frozen=True)
class Metric:
    name: str  # the column name, in frames, summaries, exports and on the command line
    title: str  # what people call it: "seconds per image"
    unit: str
    better: Better
    compute: Callable[[pd.DataFrame], pd.Series]  # from a frame of generations (raw fields and earlier metrics)
    summary: Summary = "median"  # how a cell's measured generations become one figure: peaks take the max
    in_report: bool = True  # a comparison table of its own in the report
    counted: bool = False  # counted, not sampled (bytes of weights): the same setting gives the same value
    # A figure an allocator sets (a peak of torch's allocated bytes): groups whose every value lies
    # within this share of their median are compared as counted (their ratio is known, not estimated)
    steady_within: float = 0.0

    @property
    def time_like(self) -> bool:
        """Seconds and rates: sentences say 'faster'/'slower' rather than 'higher'/'lower'."""
        return self.unit in {"s", "ms", "it/s"}


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric (after those it is computed from); a name is declared once."""
    if metric.name in METRICS:
        raise ValueError(f"metric '{metric.name}' is already declared")
    METRICS[metric.name] = metric
    return metric


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric '{name}' (known: {', '.join(METRICS)})") from None


def report_metrics() -> list[Metric]:
    """The metrics that get a comparison table of their own in the report."""
    return [m for m in METRICS.values() if m.in_report]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A raw field as floats; a field that files of other versions lack is missing, not zero."""
    import pandas as pd

    if name in frame:
        return frame[name].astype(float)
    return pd.Series(float("nan"), index=frame.index, dtype=float)


def _per_image(frame: pd.DataFrame, name: str) -> pd.Series:
    return _column(frame, name) / _column(frame, "batch_size").fillna(1)


def _step_seconds(frame: pd.DataFrame) -> pd.Series:
    total = _column(frame, "step_s_sum")
    return total.where(total > 0)  # no steps timed: no rate


def _peak_fraction(frame: pd.DataFrame) -> pd.Series:
    """Achieved TFLOP/s over the card's dense FP16/BF16 tensor peak, where the run used fp16/bf16
    on a GPU in the spec table."""
    from ..hardware.gpus import find_gpu

    peaks = {}
    for name in frame["hardware"].unique():
        spec = find_gpu(str(name)) if not str(name).startswith("CPU") else None
        peaks[name] = spec.fp16_tflops if spec else float("nan")
    half = frame["runtime_dtype"].isin(["fp16", "bf16"]) if "runtime_dtype" in frame else False
    peak = frame["hardware"].map(peaks).where(half).astype(float)
    return frame["tflops_achieved"] / peak


register(Metric("s_per_image", "seconds per image", "s", "lower", lambda f: _per_image(f, "wall_s")))
register(Metric("it_s", "denoising steps per second", "it/s", "higher",
                lambda f: _column(f, "evaluations") / _step_seconds(f)))
register(Metric("step_ms", "median step latency", "ms", "lower", lambda f: _column(f, "step_s_median") * 1000))
register(Metric("peak_vram_gib", "peak VRAM (torch allocated)", "GiB", "lower",
                lambda f: _column(f, "peak_vram_allocated_bytes") / 2**30, summary="max", steady_within=0.005))
register(Metric("decode_vram_gib", "peak VRAM during VAE decode (torch allocated)", "GiB", "lower",
                lambda f: _column(f, "peak_vram_decode_bytes") / 2**30, summary="max", in_report=False,
                steady_within=0.005))
register(Metric("peak_rss_gib", "peak host RSS", "GiB", "lower",
                lambda f: _column(f, "peak_host_rss_bytes") / 2**30, summary="max"))
register(Metric("denoiser_gib", "denoiser weights in memory", "GiB", "lower",
                lambda f: _column(f, "runtime_denoiser_bytes") / 2**30, summary="max", counted=True))
register(Metric("energy_j_per_image", "energy per image", "J", "lower", lambda f: _per_image(f, "energy_j")))
register(Metric("images_per_kwh", "images per kWh", "images/kWh", "higher",
                lambda f: JOULES_PER_KWH / f["energy_j_per_image"], in_report=False))
def _calls_that_ran(frame: pd.DataFrame) -> pd.Series:
    """Denoiser calls that did their work: a step cache (MagCache, First-Block) skips some or part
    of them, and `denoiser_work` says how many full evaluations' worth ran; their FLOPs never did."""
    calls = _column(frame, "denoiser_calls")
    share = _column(frame, "denoiser_work") / _column(frame, "evaluations").where(lambda e: e > 0)
    return calls * share.where(share.notna(), 1.0).clip(upper=1.0)


register(Metric("tflops_achieved", "achieved denoiser TFLOP/s (the work that ran)", "TFLOP/s", "higher",
                lambda f: _column(f, "flops_per_denoiser_call") * _calls_that_ran(f)
                / _step_seconds(f) / 1e12))
register(Metric("denoiser_work", "denoiser work done, in full evaluations", "evaluations", "lower",
                lambda f: _column(f, "denoiser_work"), in_report=False))
register(Metric("peak_fraction", "fraction of the card's FP16 tensor peak", "fraction", "higher", _peak_fraction,
                in_report=False))


def _clip_seconds(frame: pd.DataFrame) -> pd.Series:
    """How long each generated clip plays (video only: missing for images)."""
    return _column(frame, "video_frames") / _column(frame, "fps")


register(Metric("s_per_frame", "seconds per video frame", "s", "lower",
                lambda f: _per_image(f, "wall_s") / _column(f, "video_frames")))
register(Metric("s_per_video_second", "seconds per second of video", "s", "lower",
                lambda f: _per_image(f, "wall_s") / _clip_seconds(f)))
