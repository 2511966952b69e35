"""Results DataFrames -> the tidy frames analysis works on: derived metrics, settings labels,
hardware labels, per-cell summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..rules import axes
from .metrics import METRICS

# What identifies a setting in comparisons is `axes.SETTING_COLUMNS`, read when used (an axis a
# plugin registers reaches it): resolved device and dtype (what actually ran), never "auto";
# `hardware` is the GPU name, or the CPU for CPU runs.
# Axes people compare by, and the column holding each.
AXIS_COLUMNS = {"gpu": "hardware", "hardware": "hardware", "host": "hostname", "dtype": "runtime_dtype",
                "device": "runtime_device"}
PROMPT_CHARS = 28
PHASES = ("phase_text_encode", "phase_image_encode", "phase_denoise", "phase_decode", "phase_other")
NUMERIC_FIELDS = ("wall_s", "evaluations", "denoiser_calls", "peak_vram_allocated_bytes", "peak_vram_reserved_bytes",
                  "peak_vram_decode_bytes",
                  "peak_vram_device_bytes", "peak_host_rss_bytes", "energy_j", "phase_text_encode", "phase_denoise",
                  "phase_decode", "phase_other", "phase_image_encode", "step_s_sum", "step_s_median", "denoiser_work",
                  "effective_steps", "video_frames")


def axis_column(axis: str) -> str:
    return AXIS_COLUMNS.get(axis, axis)


def with_metrics(generations: pd.DataFrame) -> pd.DataFrame:
    """Add hardware labels and derived per-generation metrics (never overwriting raw fields)."""
    frame = generations.copy()
    if frame.empty:
        return frame
    for column in axes.SETTING_COLUMNS:
        if column not in frame and column != "hardware":
            frame[column] = None
    for axis, unused in axes.UNUSED_SETTINGS.items():  # results from before these axes ran without them
        if axis in generations:
            frame[axis] = frame[axis].fillna(unused)
    for column in axes.WHOLE_NUMBER_SETTINGS:  # 9 frames, not 9.0, where image rows leave the column empty
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in NUMERIC_FIELDS:  # files from other versions or tools may lack some: missing, not zero
        if column not in frame:
            frame[column] = np.nan
    for column, _ in CARD_MEMORY_SOURCES:
        frame[column] = frame[column].astype(float)
    gpu = frame["runtime_gpu_name"] if "runtime_gpu_name" in frame else pd.Series(None, index=frame.index)
    cpu = frame["host_cpu"] if "host_cpu" in frame else pd.Series("CPU", index=frame.index)
    frame["hardware"] = [g if isinstance(g, str) and g else f"CPU: {c}" for g, c in zip(gpu, cpu)]
    for metric in METRICS.values():  # in declaration order: a metric may use an earlier one
        frame[metric.name] = metric.compute(frame)
    return frame


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Generations that count in statistics: status ok, neither warm-ups nor repeats: auto's pilot."""
    if frame.empty:
        return frame
    kept = (frame["status"] == "ok") & (~frame["warmup"].astype(bool))
    if "pilot" in frame:
        kept &= ~frame["pilot"].astype("boolean").fillna(False).astype(bool)
    return frame[kept]


def varying(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> list[str]:
    """Setting columns whose value differs somewhere in `frame`.

    `source` is left out when `model` already tells the same story (one source per name).
    """
    found = [c for c in (axes.SETTING_COLUMNS if columns is None else columns) if c in frame and key_text(frame[c]).nunique() > 1]
    if "source" in found and "model" in frame:
        if frame.groupby(key_text(frame["model"]))["source"].nunique().max() <= 1:
            found.remove("source")
    return found


steps_text = axes.steps_text


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "-"
    return str(value)


def key_text(series: pd.Series) -> pd.Series:
    """Values as grouping text, with missing values as '-' (pandas' astype(str) keeps them missing,
    and groupby would then drop those rows silently).

    The text is made once per distinct value, not once per row: a fleet's results have a few
    hundred distinct settings over hundreds of thousands of generations.
    """
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): the slow way
        return series.astype(object).map(_text)
    texts = np.array([_text(value) for value in uniques] + ["-"], dtype=object)
    return pd.Series(texts[codes], index=series.index, dtype=object)  # code -1 (missing) takes the last: "-"


def key_codes(series: pd.Series) -> np.ndarray:
    """key_text's grouping as integer codes (values whose text is equal share a code; missing is
    '-'): grouping by a few int arrays is many times faster than by dozens of object columns."""
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists)
        return pd.factorize(key_text(series))[0]
    texts = [_text(value) for value in uniques] + ["-"]
    text_codes = pd.factorize(pd.Series(texts, dtype=object))[0]
    return text_codes[codes]  # code -1 (missing) takes the last: "-"


# Values that mean "this setting is off" (axes.QUIET_VALUES): a label leaves them out (the settings
# that turn it on say so, "offload=model"), so a report mixing many suites does not print
# "cache=none · lora=none" on every setting. Two settings still differ in their labels: one names a
# value the other leaves out.


def setting_label(row: pd.Series | dict[str, Any], columns: list[str]) -> str:
    """'tiny-sd · euler · 8 steps' from the columns that vary. A setting left unset in this row
    is left out (the rows that set it say so: 'vram_limit=8GiB'), never shown as a bare '-'; so is
    a setting at its "off" value (axes.QUIET_VALUES), unless nothing else would be left to show."""
    loud = [c for c in columns if axes.QUIET_VALUES.get(c) != _text(row[c])]
    return _label_of(row, loud) if any(_text(row[c]) != "-" for c in loud) else _label_of(row, columns)


def _label_of(row: pd.Series | dict[str, Any], columns: list[str]) -> str:
    parts = []
    for column in columns:
        raw = row[column]
        # frames, fps: whole numbers, though a column with gaps holds them as floats (17.0)
        whole = column in axes.WHOLE_NUMBER_SETTINGS and isinstance(raw, float) and raw == raw and raw.is_integer()
        value = str(int(raw)) if whole else _text(raw)
        if value == "-":
            continue
        if column in {"prompt", "negative_prompt"} and len(value) > PROMPT_CHARS:
            value = value[: PROMPT_CHARS - 1] + "…"
        parts.append(steps_text(value) if column == "steps" else (
            f"{column}={value}" if column in axes.NAMED_IN_LABELS else value))
    return " · ".join(parts) if parts else "all"


def cell_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, host): medians of every metric over measured generations."""
    data = measured(frame)
    if data.empty:
        return pd.DataFrame()
    keys = ["cell_id", "hostname"]
    settings = data.groupby(keys, sort=False)[[c for c in axes.SETTING_COLUMNS if c in data and c not in keys]
                                              + ["evaluations"]].first()
    aggregations: dict[str, tuple[str, Any]] = {
        "n": ("s_per_image", "size"),
        **{m.name: (m.name, m.summary) for m in METRICS.values()},
        **{phase: (phase, "median") for phase in PHASES},
    }
    grouped = data.groupby(keys, sort=False)
    metrics = grouped.agg(**aggregations)
    # Tail latencies and spread from each group's rows as arrays: a Python function per group
    # through pandas' agg costs more than the rest of the summary at fleet scale.
    seconds, rows = data["s_per_image"].to_numpy(dtype=float), grouped.indices
    tails = [_latency_tail(seconds[rows[key]]) for key in metrics.index]
    metrics["s_per_image_p90"] = [p90 for p90, _, _ in tails]
    metrics["s_per_image_p99"] = [p99 for _, p99, _ in tails]
    metrics["cv"] = [cv for _, _, cv in tails]
    raw_peaks = grouped[[c for c, _ in CARD_MEMORY_SOURCES]].max()
    card = [card_memory(peaks) for peaks in raw_peaks.to_dict("records")]
    metrics["card_memory_gib"] = [gib for gib, _ in card]
    metrics["card_memory_kind"] = [kind for _, kind in card]
    summary = settings.join(metrics).reset_index()
    labels = [c for c in varying(summary) if c != "hostname"]  # the host is shown beside the label
    summary["label"] = [setting_label(row, labels) for row in summary[labels].to_dict("records")] \
        if labels else "all"
    return summary


@dataclass(frozen=True)
class SettingSummary:
    """One row per (setting, host), pooled over the setting's instances (prompts, seeds): what a
    chart draws as one bar. `cell_setting` maps each cell id to the id that stands for its setting
    (the first of its cells), so that per-cell frames (per-step latencies) pool the same way."""

    frame: pd.DataFrame
    cell_setting: dict[str, str]
    instances: int  # the most prompt-and-seed instances any setting has (1: nothing pooled)

    def pooled(self, cells: pd.DataFrame) -> pd.DataFrame:
        """A per-cell frame with each cell id replaced by its setting's."""
        if self.instances <= 1 or cells.empty:
            return cells
        out = cells.copy()
        out["cell_id"] = key_text(out["cell_id"]).map(self.cell_setting).fillna(key_text(out["cell_id"]))
        return out


def setting_summary(frame: pd.DataFrame, cells: pd.DataFrame | None = None) -> SettingSummary:
    """`cell_summary` with a setting's instances pooled: its median over every measured generation
    of every prompt and seed, its memory the highest any of them reached (what a card must hold).
    Without a prompt set or several seeds it is the cell summary itself."""
    cells = cell_summary(frame) if cells is None else cells
    data = measured(frame)
    instances = [c for c in axes.INSTANCE_COLUMNS if c in data]
    if cells.empty or not instances or not any(key_text(data[c]).nunique() > 1 for c in instances):
        return SettingSummary(cells, {}, 1)
    setting = [c for c in axes.SETTING_COLUMNS if c in data and c not in instances]
    keys = pd.MultiIndex.from_frame(pd.DataFrame({c: key_text(data[c]) for c in setting}))
    codes = pd.Series(pd.factorize(keys)[0], index=data.index)
    cell_ids = key_text(data["cell_id"])
    first = cell_ids.groupby(codes).transform("first")
    cell_setting = dict(zip(cell_ids, first))
    per_setting = cell_ids.groupby(first.to_numpy()).nunique()  # its prompt-and-seed cells
    summary = cell_summary(data.assign(cell_id=first.to_numpy(), **{c: None for c in instances}))
    summary["instances"] = key_text(summary["cell_id"]).map(per_setting).to_numpy()
    return SettingSummary(summary, cell_setting, int(per_setting.max()))


def _latency_tail(seconds: np.ndarray) -> tuple[float, float, float]:
    """(p90, p99, coefficient of variation) of one cell's seconds per image."""
    p90, p99 = (float(v) for v in np.percentile(seconds, [90, 99]))
    mean = float(np.mean(seconds))
    cv = float(np.std(seconds) / mean) if seconds.size > 1 and mean else 0.0
    return p90, p99, cv


GIB = 2**30
HOST_RSS = "host RSS (CPU run, no VRAM)"
# What a card must hold to run a setting, from exact figures (issue #22): torch's allocated peak,
# plus what the caching allocator needs beyond it when a card pushes back, plus the CUDA context and
# library workspaces outside torch. Both constants are measured on the H200 under an 8 GiB cap
# (docs/gpu-runs/vram-limit-20261126-182207-vm.jsonl): SDXL with model offload ran with 6.21 GiB
# allocated, 7.21 GiB reserved (x1.16) and 0.60 GiB outside the allocator. The device-wide NVML peak
# of a large card is not used first: there the allocator grows because nothing pushes back (SDXL: 16.8
# GiB on the H200 for 11.5 GiB allocated), and NVML samples can miss a short peak.
ALLOCATOR_MARGIN = 1.16
CUDA_CONTEXT_BYTES = 0.60 * 2**30
NEEDED = "torch allocated x1.16 + 0.60 GiB CUDA context"
CARD_MEMORY_SOURCES = (("peak_vram_allocated_bytes", NEEDED),
                       ("peak_vram_reserved_bytes", "torch reserved + 0.60 GiB CUDA context"),
                       ("peak_vram_device_bytes", "device peak (NVML)"),
                       ("peak_host_rss_bytes", HOST_RSS))


def card_memory(peaks: pd.Series | dict[str, Any]) -> tuple[float, str]:
    """(GiB, how it was derived) that a card must hold, from a cell's highest raw memory figures."""
    for column, kind in CARD_MEMORY_SOURCES:
        value = peaks.get(column)
        if value is not None and np.isfinite(value) and value > 0:
            if column == "peak_vram_allocated_bytes":
                value = value * ALLOCATOR_MARGIN + CUDA_CONTEXT_BYTES
            elif column == "peak_vram_reserved_bytes":
                value = value + CUDA_CONTEXT_BYTES
            return float(value) / GIB, kind
    return float("nan"), HOST_RSS
