"""One measured generation: the timed region and nothing else."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from typing import Any

from ..measure.memory import HostPeak, TorchCudaPeak
from ..measure.probe import PipelineProbe
from ..measure.rapl import RaplCounter
from ..measure.telemetry import TelemetrySampler

THUMBNAIL_PX = 256


@dataclass
class Meters:
    """Memory meters for the device a load group runs on (None where they do not apply)."""

    host: HostPeak
    cuda: TorchCudaPeak | None = None
    telemetry: TelemetrySampler | None = None
    rapl: RaplCounter | None = None  # CPU package energy, for CPU runs where the counters are readable


@dataclass(frozen=True)
class Measurement:
    """What one generation measured: the measured fields of its results line (records.GenerationLine
    validates them again in the parent), and whether its latents stayed finite."""

    wall_s: float
    timed_s: float
    phases_s: dict[str, float]
    step_s: list[float]
    denoiser_calls: int
    peak_vram_allocated_bytes: int | None
    peak_vram_reserved_bytes: int | None
    peak_vram_device_bytes: float | None  # NVML's, over the telemetry samples
    peak_vram_decode_bytes: int | None
    peak_host_rss_bytes: int | None
    host_rss_peak_exact: bool
    # What the process already held when the generation began (memory kept from earlier cells of
    # the same worker): peak minus this is what the generation itself added.
    host_rss_baseline_bytes: int | None
    # Noise: the CPU time this process got, and the machine's load, during the generation.
    cpu_s: float
    load_avg_1m: float | None
    energy_j: float | None
    avg_power_w: float | None
    energy_source: str | None
    telemetry: dict[str, Any] | None
    # Outside the timed region (the probe has synchronised), not a record field: False means a
    # blank picture, which the worker records as an error.
    latents_finite: bool | None

    @property
    def evaluations(self) -> int:
        """Denoiser evaluations the sampler made (a step each): the step times counted."""
        return len(self.step_s)

    def fields(self) -> dict[str, Any]:
        """The results line's measured fields."""
        fields: dict[str, Any] = {}
        for name in RECORD_FIELDS:
            fields[name] = getattr(self, name)
            if name == "step_s":  # in the order results lines have always had
                fields["evaluations"] = self.evaluations
        return fields


RECORD_FIELDS = tuple(name for name in Measurement.__dataclass_fields__ if name != "latents_finite")


def measure_generation(pipe: Any, probe: PipelineProbe, meters: Meters, kwargs: dict[str, Any],
                       keep_trace: bool = False) -> tuple[Measurement, Any]:
    """Run pipe(**kwargs) once under the probe; return what it measured and the output images."""
    meters.host.reset()
    baseline_rss = meters.host.current_bytes()
    load = _load_average()
    if meters.cuda:
        meters.cuda.reset()
    if meters.telemetry:
        meters.telemetry.start()
    if meters.rapl:
        meters.rapl.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    probe.begin()
    try:
        output = pipe(**kwargs, callback_on_step_end=probe.on_step_end)
    finally:
        timing = probe.end()  # synchronises once, then resolves every mark
        wall = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        telemetry = meters.telemetry.stop(keep_trace) if meters.telemetry else None
        package_j = meters.rapl.stop() if meters.rapl else None
    allocated = reserved = None
    if meters.cuda:
        allocated, reserved = meters.cuda.peaks()
    if telemetry:
        energy_j, avg_power_w, energy_source = telemetry["energy_j"], telemetry["avg_power_w"], telemetry.get("energy_source")
    else:
        energy_j, avg_power_w = package_j, (package_j / wall if package_j and wall else None)
        energy_source = "rapl_package" if package_j is not None else None
    measured = Measurement(
        wall_s=wall, timed_s=timing.total_s, phases_s=timing.phases_s, step_s=timing.step_s,
        denoiser_calls=timing.denoiser_calls, peak_vram_allocated_bytes=allocated, peak_vram_reserved_bytes=reserved,
        peak_vram_device_bytes=telemetry["peak_device_used_bytes"] if telemetry else None,
        peak_vram_decode_bytes=timing.decode_peak_bytes, peak_host_rss_bytes=meters.host.peak_bytes(),
        host_rss_peak_exact=meters.host.resettable, host_rss_baseline_bytes=baseline_rss, cpu_s=cpu_s,
        load_avg_1m=load, energy_j=energy_j, avg_power_w=avg_power_w, energy_source=energy_source,
        telemetry=telemetry, latents_finite=probe.latents_finite())
    return measured, produced(output)


def produced(output: Any) -> Any:
    """What a pipeline made: its images, or for a video pipeline its clips (an array of
    clips x frames x height x width x channels)."""
    frames = getattr(output, "frames", None)
    return frames if frames is not None else output.images


def _load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


PREVIEW_PX = 128  # a video preview's longer side
PREVIEW_FRAMES = 24  # at most this many frames, evenly spaced, each shown as long as it stands for


def preview_png(clip: Any, fps: float | None) -> bytes:
    """A small animated PNG of one clip (frames x height x width x 3, floats in 0-1): every
    browser plays it in an <img>, and it is checked like any thumbnail (files.safe_image)."""
    import numpy as np
    from PIL import Image

    frames = np.asarray(clip)
    chosen = np.unique(np.linspace(0, len(frames) - 1, min(PREVIEW_FRAMES, len(frames))).round().astype(int))
    pictures = []
    for index in chosen:
        picture = Image.fromarray((np.clip(frames[index], 0, 1) * 255).round().astype("uint8"), "RGB")
        picture.thumbnail((PREVIEW_PX, PREVIEW_PX))
        pictures.append(picture)
    # each shown frame lasts as long as the frames it stands for would play
    duration_ms = 1000.0 / (fps or 16) * len(frames) / len(pictures)
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="PNG", save_all=len(pictures) > 1, append_images=pictures[1:],
                     duration=int(round(duration_ms)), loop=0, optimize=True)
    return buffer.getvalue()


def thumbnail_png(image: Any) -> bytes:
    """A small PNG of the first image, for reports on any machine."""
    copy = image.copy()
    copy.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def full_png(image: Any) -> bytes:
    """The first image at full resolution (quality scores are computed on it, not on a thumbnail)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)  # after the timed region; lossless either way
    return buffer.getvalue()
