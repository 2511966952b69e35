"""Plotly figures of the report, built from per-cell summaries (not raw series), so that a report
of ten thousand generations stays small: one line per cell, medians and intervals per point.

Every user-supplied string (model names, prompts, GPU names) is HTML-escaped before it reaches
plotly, which would otherwise interpret a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.analyse import StepScaling
from ..analysis.tables import HOST_RSS, setting_label, varying
from ..analysis.tradeoff import TradeoffPoint

CARD_SIZES_GIB = (8, 12, 16, 24, 48, 80)
# plotly's default qualitative colours, named so that a series' parts can share one
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
PHASES = (("phase_text_encode", "text encoding"), ("phase_image_encode", "image encoding"),
          ("phase_denoise", "denoising"), ("phase_decode", "VAE decode"),
          ("phase_other", "other"))


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


LABEL_CHARS = 48  # legend and axis labels are cut here (the full label is in the hover text)


def short(label: Any, limit: int = LABEL_CHARS) -> str:
    """A label cut to `limit` characters, escaped: long mixed-suite labels must not swallow a chart."""
    text = str(label)
    return esc(text if len(text) <= limit else text[: limit - 1] + "…")


WRAP_CHARS = 36  # a category or legend label is wrapped at its " · " separators into lines of about this


def wrapped(label: Any) -> str:
    """The whole label, escaped, wrapped into lines at its separators: never cut, so two settings
    that differ late in their labels never share a category (plotly would stack their bars)."""
    lines: list[str] = []
    for part in str(label).split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= WRAP_CHARS:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "<br>".join(esc(line) for line in lines)


def setting_categories(summary: pd.DataFrame) -> list[str]:
    """One distinct category per row of a cell summary: its label, with the host where the same
    setting ran on several hosts, and a counter in the (malformed) case that still repeats."""
    if summary.empty:
        return []
    labels = [str(v) for v in summary["label"]]
    hosts = [str(v) for v in summary["hostname"]] if "hostname" in summary else [""] * len(labels)
    repeated = Counter(labels)
    names = [f"{label} · {host}" if repeated[label] > 1 and host else label for label, host in zip(labels, hosts)]
    seen: Counter[str] = Counter()
    distinct = []
    for name in names:
        seen[name] += 1
        distinct.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return [wrapped(name) for name in distinct]


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    """Axes start at zero (a 0.450-0.4508 GiB axis would present noise as a difference)."""
    layout = {"title": {"text": esc(title)}, "xaxis": {"title": {"text": x}},
              "yaxis": {"title": {"text": y}, "rangemode": "tozero"},
              "margin": {"l": 60, "r": 20, "t": 50, "b": 60}, "legend": {"orientation": "h", "y": -0.25},
              "template": "plotly_white"}
    for axis in ("xaxis", "yaxis"):
        if axis in extra:
            layout[axis] = {**layout[axis], **extra.pop(axis)}
    return {**layout, **extra}


def integer_axis(values: Any) -> dict[str, Any]:
    """Ticks on whole numbers only (steps, evaluations): never a tick at 4.5 steps."""
    unique = pd.unique(np.asarray(values, dtype=float))  # a fleet passes millions of step numbers
    known = sorted({int(v) for v in unique if v == v})
    if 0 < len(known) <= 12:
        return {"tickmode": "array", "tickvals": known, "ticktext": [str(v) for v in known]}
    span = (known[-1] - known[0]) if known else 1
    return {"tickmode": "linear", "tick0": 0, "dtick": max(1, round(span / 10))}


MAX_SERIES = 10  # series a chart draws at most: one colour each from PALETTE, never two alike


def chunks(labels: list[str], limit: int = MAX_SERIES) -> list[tuple[str, list[int]]]:
    """Positions of items split by their label (a model) into small multiples of at most `limit`,
    each with the suffix its chart's title gets: ' · sdxl', ' · flux (1 of 2)'; one part, no suffix,
    where everything fits one chart."""
    if len(labels) <= limit:
        return [("", list(range(len(labels))))]
    parts = []
    for label in dict.fromkeys(labels):
        members = [i for i, value in enumerate(labels) if value == label]
        size = -(-len(members) // -(-len(members) // limit))  # parts of even size: 12 as 6 + 6, not 10 + 2
        pieces = [members[i:i + size] for i in range(0, len(members), size)]
        for number, piece in enumerate(pieces, 1):
            more = f" ({number} of {len(pieces)})" if len(pieces) > 1 else ""
            parts.append((f" · {label}{more}", piece))
    return parts


WARMUP_GROUP = "first warm-ups"
MANY_STEP_LINES = 8  # above this many settings, the per-step chart's warm-up lines start hidden


@dataclass(frozen=True)
class StepLines:
    """Each cell's per-step line, computed once for every per-step chart: (cell_id, hostname) ->
    (step numbers, milliseconds), the measured medians in the order the cells ran, and each cell's
    first warm-up."""

    measured: dict[tuple[Any, Any], tuple[np.ndarray, np.ndarray]]
    warm: dict[tuple[Any, Any], tuple[np.ndarray, np.ndarray]]


def step_lines(steps: pd.DataFrame) -> StepLines:
    """Two groupings for the whole frame (medians of measured steps; each cell's first warm-up), not
    one per cell or per chart: a fleet's results hold millions of steps."""
    if steps.empty:
        return StepLines({}, {})
    measured_steps = steps[~steps["warmup"].astype(bool)]
    # (observed=True: the text columns are categorical, and no chart wants the empty combinations)
    medians = (measured_steps.groupby(["cell_id", "hostname", "step"], sort=False, observed=True)["seconds"].median()
               * 1000)
    warm = steps[steps["warmup"].astype(bool)]
    first_warm = warm[warm["repeat"] == warm.groupby(["cell_id", "hostname"], observed=True)["repeat"].transform("min")]
    # per step, the median of the first warm-ups (several where a setting's prompts were pooled
    # under one id: one line, not their steps strung together)
    warm_table = (first_warm.groupby(["cell_id", "hostname", "step"], sort=True, observed=True)["seconds"]
                  .median().reset_index())
    warm_keys = list(zip(warm_table["cell_id"], warm_table["hostname"]))
    warm_steps, warm_ms = warm_table["step"].to_numpy(), (warm_table["seconds"].to_numpy() * 1000).round(4)
    warm_by_cell = {warm_keys[start]: (warm_steps[start:end], warm_ms[start:end]) for start, end in _runs(warm_keys)}
    # one sort (cells in the order they ran, steps in order), then each cell's run of rows as plain arrays
    table = medians.reset_index()
    table["order"] = pd.factorize(pd.MultiIndex.from_arrays([table["cell_id"], table["hostname"]]))[0]
    table = table.sort_values(["order", "step"], kind="stable")
    cells = list(zip(table["cell_id"], table["hostname"]))
    step_numbers, milliseconds = table["step"].to_numpy(), table["seconds"].round(4).to_numpy()
    measured = {cells[start]: (step_numbers[start:end], milliseconds[start:end]) for start, end in _runs(cells)}
    return StepLines(measured, warm_by_cell)


def step_latency(frame: pd.DataFrame, steps: pd.DataFrame, summary: pd.DataFrame, suffix: str = "",
                 lines: StepLines | None = None) -> dict[str, Any]:
    """Per-step latency, one line per setting of `summary` (median over measured repeats); each
    setting's first warm-up dotted, all of them under one legend entry; `suffix` ends the title;
    `lines`: step_lines(steps), where the caller draws several charts from the same steps."""
    traces: list[dict[str, Any]] = []
    if steps.empty or summary.empty:
        return {"data": traces, "layout": _layout("Per-step latency", "step", "ms")}
    lines = lines if lines is not None else step_lines(steps)
    labels = dict(zip(zip(summary["cell_id"], summary["hostname"]), summary["label"]))
    names = dict(zip(zip(summary["cell_id"], summary["hostname"]), setting_categories(summary)))
    drawn = 0  # measured lines so far
    warmups: list[dict[str, Any]] = []
    drawn_steps: list[np.ndarray] = []
    for key, (step_numbers, milliseconds) in lines.measured.items():
        label = labels.get(key)
        if label is None:
            continue
        cell_id = key[0]
        colour = PALETTE[drawn % len(PALETTE)]  # its warm-up shares it
        drawn += 1
        name = names[key]
        drawn_steps.append(step_numbers)
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name,
                       "legendgroup": cell_id, "marker": {"color": colour}, "line": {"color": colour},
                       "hovertext": esc(label), "x": step_numbers.tolist(), "y": milliseconds.tolist()})
        first = lines.warm.get(key)
        if first is not None:
            drawn_steps.append(first[0])
            warmups.append({"type": "scatter", "mode": "lines", "name": name + " (warm-up)",
                            "legendgroup": WARMUP_GROUP, "showlegend": False,
                            "line": {"dash": "dot", "color": colour}, "opacity": 0.6,
                            "x": first[0].tolist(), "y": first[1].tolist()})
    # The warm-ups are one legend entry that shows or hides them all; with many settings they start
    # hidden (26 settings drew 52 lines on the H200 runs' chart, a tangle nobody could read).
    hidden = drawn > MANY_STEP_LINES
    legend = traces[:]
    if warmups:
        entry: dict[str, Any] = {"type": "scatter", "mode": "lines", "name": "first warm-ups (dotted)",
                                 "x": [None], "y": [None], "legendgroup": WARMUP_GROUP,
                                 "legendrank": 1,  # first: a long legend scrolls
                                 "line": {"dash": "dot", "color": "#888"}}
        if hidden:
            entry["visible"] = "legendonly"
            warmups = [{**trace, "visible": "legendonly"} for trace in warmups]
        legend.append(entry)
        traces += [entry, *warmups]
    title = ("Per-step latency" + suffix + " (step 0 included; dotted: first warm-up"
             + (", hidden: click its legend entry)" if hidden and warmups else ")"))
    shown_steps = np.concatenate(drawn_steps) if drawn_steps else steps["step"].to_numpy()
    layout = _layout(title, "step (denoiser evaluation)", "milliseconds", xaxis=integer_axis(shown_steps),
                     **_many_legend(legend))
    measured_top = max((max(t["y"]) for t in traces if not is_warmup(t) and t["y"]), default=0.0)
    warm_top = max((max(t["y"]) for t in warmups if t["y"]), default=0.0)
    if measured_top > 0 and warm_top > 3 * measured_top:  # hidden or not: a click may show them
        # A first warm-up that compiles or loads (80 s on an H200 with torch.compile) would flatten
        # every measured line against the axis: cut it, and say so.
        layout["yaxis"] = {**layout["yaxis"], "range": [0, 1.4 * measured_top]}
        layout["annotations"] = [{"xref": "paper", "yref": "paper", "x": 1, "y": 1, "xanchor": "right",
                                  "yanchor": "bottom", "showarrow": False,
                                  "text": esc(f"a first warm-up step reaches {warm_top:,.0f} ms, above this axis")}]
    return {"data": traces, "layout": layout}


def _runs(keys: list[Any]) -> list[tuple[int, int]]:
    """(start, end) of each run of equal neighbouring keys (a sorted table's groups)."""
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]] + [len(keys)]
    return list(zip(starts[:-1], starts[1:]))


def is_warmup(trace: dict[str, Any]) -> bool:
    """A per-step chart's warm-up line (dotted), as opposed to a measured one."""
    return trace.get("line", {}).get("dash") == "dot"


def _many_legend(traces: list[dict[str, Any]]) -> dict[str, Any]:
    """With many series the legend goes to the right, one entry a line, and the chart grows with
    it, instead of a block below that covers the axis title."""
    if len(traces) <= 8:
        return {}
    lines = sum(str(t.get("name", "")).count("<br>") + 1 for t in traces)
    return {"legend": {"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top", "font": {"size": 11}},
            "height": min(900, max(460, 120 + 15 * lines))}  # a longer legend scrolls


def latency_vs_steps(scaling: list[StepScaling], suffix: str = "") -> dict[str, Any]:
    """Seconds per image against denoiser evaluations, with the cost model's fixed + per-step fit."""
    traces: list[dict[str, Any]] = []
    evaluations: list[int] = []
    for index, group in enumerate(scaling):
        x = [p.evaluations for p in group.points]
        evaluations += x
        medians = [p.median for p in group.points]
        colour = PALETTE[index % len(PALETTE)]  # a series' points and its fit line share one colour
        traces.append({"type": "scatter", "mode": "markers", "name": wrapped(group.label), "legendgroup": group.label,
                       "hovertext": [f"{esc(group.label)}: interval {100 * p.confidence:.4g}%" for p in group.points],
                       "x": x, "y": medians, "marker": {"color": colour},
                       "error_y": {"type": "data", "symmetric": False, "color": colour,
                                   "array": [p.high - p.median for p in group.points],
                                   "arrayminus": [p.median - p.low for p in group.points]}})
        fit = group.fit
        if fit is None:
            continue
        traces.append({"type": "scatter", "mode": "lines", "legendgroup": group.label, "showlegend": True,
                       "line": {"dash": "dash", "color": colour}, "x": [0, max(x)],
                       "y": [fit.fixed_s, fit.fixed_s + fit.per_eval_s * max(x)],
                       "name": esc(f"fit: {fit.fixed_s:.3f} s + {1000 * fit.per_eval_s:.2f} ms/step "
                                   f"(R² {fit.r2 or 0:.3f})")})
    if not traces:
        return {"data": traces, "layout": _layout("Latency against steps", "steps", "s")}
    layout = _layout("Latency against steps" + suffix + ": fixed cost + cost per step", "denoiser evaluations",
                     "seconds per image (median and its interval)", xaxis=integer_axis(evaluations), **_many_legend(traces))
    return {"data": traces, "layout": layout}


def _bar_height(categories: list[str]) -> int:
    """Pixels for a horizontal bar chart: every setting gets a row tall enough for its wrapped label."""
    lines = sum(c.count("<br>") + 1 for c in categories)
    return max(360, 150 + 16 * lines + 8 * len(categories))


def _horizontal(title: str, x_title: str, categories: list[str], **extra: Any) -> dict[str, Any]:
    """Settings down the side, whole labels, first setting at the top; the value axis from zero."""
    layout = _layout(title, x_title, "", **extra)
    layout["xaxis"] = {**layout["xaxis"], "rangemode": "tozero"}
    layout["yaxis"] = {"autorange": "reversed", "automargin": True, "type": "category"}
    layout["height"] = _bar_height(categories)
    layout["legend"] = {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0}
    layout["margin"] = {**layout["margin"], "t": 90}  # the title above the legend, the legend above the bars
    return layout


def phase_breakdown(summary: pd.DataFrame) -> dict[str, Any]:
    """Seconds per phase, stacked within each setting (and only there: one bar per setting)."""
    traces = []
    categories = setting_categories(summary)
    for column, name in PHASES:
        if column in summary and (summary[column] > 0).any():  # no empty "image encoding" for text-to-image
            traces.append({"type": "bar", "orientation": "h", "name": name, "y": categories,
                           "hovertext": [esc(v) for v in summary["label"]],
                           "x": summary[column].round(5).tolist()})
    return {"data": traces, "layout": _horizontal("Where the time goes (medians)", "seconds", categories,
                                                  barmode="stack")}


def memory_against_cards(summary: pd.DataFrame) -> dict[str, Any]:
    """Peak memory per setting, one bar each, with lines at common card sizes. Each bar reads its
    figure; how the figure was derived is said once in the title, per bar only where it differs."""
    values = summary["card_memory_gib"].tolist() if not summary.empty else []
    kinds = summary["card_memory_kind"].tolist() if not summary.empty else []
    usual = max(set(kinds), key=kinds.count) if kinds else HOST_RSS
    categories = setting_categories(summary)
    text = [f"{v:.1f} GiB" + ("" if k == usual else f" ({esc(k)})") if np.isfinite(v) else "" for v, k in zip(values, kinds)]
    traces = [{"type": "bar", "orientation": "h", "name": "peak memory", "y": categories,
               "hovertext": [f"{esc(label)}: {esc(k)}" for label, k in zip(summary.get("label", []), kinds)],
               "x": [round(v, 4) for v in values], "text": text, "textposition": "inside", "insidetextanchor": "end",
               "textfont": {"color": "white"}, "marker": {"color": PALETTE[0]}}]
    top = max([v for v in values if np.isfinite(v)] or [1.0])
    shapes, annotations = [], []
    for size in CARD_SIZES_GIB:
        if size <= 2 * top:  # only the card sizes near the measured peaks
            # below the bars: a card line never strikes through a bar's figure
            shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "x0": size, "x1": size,
                           "layer": "below", "line": {"dash": "dot", "color": "#b33"}})
            annotations.append({"yref": "paper", "y": 1, "x": size, "text": f"{size} GB", "showarrow": False,
                                "xanchor": "left", "yanchor": "bottom", "font": {"color": "#b33"}})
    kind = f"what a card must hold: {usual}" if usual != HOST_RSS else "host RSS, CPU runs"
    return {"data": traces, "layout": _horizontal(f"Peak memory ({kind}) against common card sizes", "GiB",
                                                  categories, shapes=shapes, annotations=annotations)}


NAMED_FRONT = 8  # Pareto points named by a letter on the chart and in its legend, at most


def time_against_memory(summary: pd.DataFrame, suffix: str = "", y_title: str = "seconds per image") -> dict[str, Any]:
    """Seconds per image against what the card must hold. The Pareto front (nothing both faster
    and leaner among this chart's settings) is a line, its settings lettered on the chart and
    named in the legend; the others are grey points named by hovering. The caller draws video and
    image settings on charts of their own."""
    from ..stats.intervals import pareto_front

    if summary.empty:
        return {"data": [], "layout": _layout("Time against memory" + suffix, "GiB", "s")}
    memory = summary["card_memory_gib"].to_numpy(dtype=float)
    seconds = summary["s_per_image"].to_numpy(dtype=float)
    labels = [str(v) for v in summary["label"]]
    known = np.isfinite(memory) & np.isfinite(seconds)
    front = np.zeros(len(summary), dtype=bool)
    front[known] = pareto_front(np.column_stack([memory[known], seconds[known]]))
    order = [int(i) for i in np.flatnonzero(front)[np.argsort(memory[front])]]
    others = np.flatnonzero(~front)
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "Pareto front", "legendgroup": "front",
         "line": {"color": "#d62728"}, "hoverinfo": "skip",
         "x": memory[order].round(4).tolist(), "y": seconds[order].round(5).tolist()}]
    for rank, index in enumerate(order):
        letter = chr(ord("A") + rank) if rank < NAMED_FRONT else ""
        traces.append({"type": "scatter", "mode": "markers+text", "x": [round(float(memory[index]), 4)],
                       "y": [round(float(seconds[index]), 5)], "text": [letter], "textposition": "top right",
                       "name": (f"{letter}: " if letter else "") + wrapped(labels[index]), "showlegend": bool(letter),
                       "legendgroup": "front",  # one series: the front's settings, told apart by letter
                       "hovertext": [esc(labels[index])], "hoverinfo": "text+x+y",
                       "marker": {"size": 10, "color": "#d62728"}})
    if len(others):
        traces.append({"type": "scatter", "mode": "markers", "name": "other settings (hover to name)",
                       "x": memory[others].round(4).tolist(), "y": seconds[others].round(5).tolist(),
                       "hovertext": [esc(labels[i]) for i in others], "hoverinfo": "text+x+y",
                       "marker": {"size": 8, "color": "#9e9e9e"}})
    cpu_only = all(k == HOST_RSS for k in summary["card_memory_kind"])  # as in memory_against_cards
    layout = _layout("Time against memory" + suffix + " (red: the Pareto front, lettered)",
                     "peak host RSS, CPU runs (GiB)" if cpu_only else "peak memory a card must hold (GiB)",
                     y_title, xaxis={"rangemode": "tozero"}, **_many_legend(traces))
    return {"data": traces, "layout": layout}


def quality_against_steps(frame: pd.DataFrame, quality: pd.DataFrame, summary: pd.DataFrame) -> dict[str, Any]:
    """SSIM of each setting's image to its model's most-steps picture (the same prompt and seed): where more
    steps stop paying. Never across models: another model draws another picture."""
    traces: list[dict[str, Any]] = []
    layout = _layout("Image change against steps (SSIM to the same model's most-steps picture; 1 = same picture)",
                     "steps", "SSIM", yaxis={"title": {"text": "SSIM"}, "range": [0, 1.02]},
                     xaxis=integer_axis(quality["steps"]) if not quality.empty else {})
    if quality.empty or summary.empty:
        return {"data": traces, "layout": layout}
    merged = quality.dropna(subset=["ssim"]).merge(summary, on=["cell_id", "hostname"], suffixes=("", "_cell"))
    if merged.empty:
        return {"data": traces, "layout": layout}
    from ..analysis.compare import context_groups

    others = [c for c in varying(merged) if c not in {"steps"}]
    for index, (group_label, group) in enumerate(context_groups(merged, others)):
        ordered = group.sort_values("steps")
        colour = PALETTE[index % len(PALETTE)]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": short(group_label),
                       "hovertext": esc(group_label), "x": ordered["steps"].tolist(),
                       "y": ordered["ssim"].round(4).tolist(), "line": {"color": colour},
                       "marker": {"color": colour}, "legendgroup": esc(group_label)})
        own = ordered.dropna(subset=["ssim_own"]) if "ssim_own" in ordered else ordered.iloc[0:0]
        if len(own) > 1 and not np.allclose(own["ssim_own"].to_numpy(float), own["ssim"].to_numpy(float)):
            # a sampler that converges elsewhere: against its own most-steps picture too, dotted
            traces.append({"type": "scatter", "mode": "lines+markers", "name": short(f"{group_label} (to its own)"),
                           "hovertext": esc(f"{group_label}: SSIM to its own sampler's most-steps picture"),
                           "x": own["steps"].tolist(), "y": own["ssim_own"].round(4).tolist(),
                           "line": {"color": colour, "dash": "dot"}, "marker": {"color": colour, "symbol": "circle-open"},
                           "legendgroup": esc(group_label)})
    return {"data": traces, "layout": layout}


def cost_against(summary: pd.DataFrame, x: str, rows: pd.Series, title: str, x_title: str,
                 y: str = "s_per_image", y_title: str = "seconds per generation (median)") -> dict[str, Any] | None:
    """A metric against one setting (frames, strength), one line per combination of the other
    settings that vary among `rows`; None when fewer than two values of `x` were measured."""
    data = summary[rows & summary[x].notna()] if x in summary else summary.iloc[0:0]
    if data.empty or data[x].nunique() < 2:
        return None
    others = [c for c in varying(data) if c not in {x, "hostname"}]
    traces = []
    for (label, host), group in data.groupby([data.apply(lambda r: setting_label(r, others), axis=1),
                                              data["hostname"]], sort=False):
        group = group.sort_values(x)
        name = label if data["hostname"].nunique() == 1 else f"{label} · {host}"
        traces.append({"type": "scatter", "mode": "lines+markers", "name": short(name), "hovertext": esc(name),
                       "x": group[x].astype(float).tolist(), "y": group[y].round(5).tolist()})
    return {"data": traces, "layout": _layout(title, x_title, y_title)}


def time_against_quality(points: list[TradeoffPoint], checkpoint: str | None) -> dict[str, Any]:
    """Seconds per image against CLIP score, one point per setting over its pictures (prompts and
    seeds), both intervals drawn; the Pareto front (nothing both faster and better agreeing with
    its prompt, on the same machine) as a line."""
    title = f"Time against quality (CLIP score, {checkpoint}; each point over its prompts and seeds)"
    layout = _layout(title, "seconds per image (median of each prompt and seed's median)",
                     "CLIP score (higher: agrees more with the prompt)", xaxis={"rangemode": "tozero"})
    traces: list[dict[str, Any]] = []
    for index, group in enumerate(dict.fromkeys(p.group for p in points)):
        members = [p for p in points if p.group == group]
        colour = PALETTE[index % len(PALETTE)]
        name = group or "settings"
        traces.append({
            "type": "scatter", "mode": "markers+text", "name": esc(name), "legendgroup": esc(name),
            "x": [round(p.seconds, 5) for p in members], "y": [round(p.clip.estimate, 3) for p in members],
            "text": [wrapped(p.label) for p in members], "textposition": "top center",
            "error_x": {"type": "data", "symmetric": False, "array": [round(p.seconds_high - p.seconds, 5) for p in members],
                        "arrayminus": [round(p.seconds - p.seconds_low, 5) for p in members], "color": colour},
            "error_y": {"type": "data", "symmetric": False, "array": [round(p.clip.high - p.clip.estimate, 3) for p in members],
                        "arrayminus": [round(p.clip.estimate - p.clip.low, 3) for p in members], "color": colour},
            "marker": {"size": 10, "color": colour, "symbol": ["diamond" if p.pareto else "circle" for p in members]},
            "hovertext": [esc(f"{p.label}{' · ' + p.group if p.group else ''}: {p.seconds:.4g} s per image "
                              f"({100 * p.seconds_confidence:.3g}% CI {p.seconds_low:.4g}-{p.seconds_high:.4g}); "
                              f"CLIP {p.clip.estimate:.2f} ({100 * p.clip.confidence:.3g}% CI {p.clip.low:.2f}-"
                              f"{p.clip.high:.2f}) over {p.clip.n} pictures") for p in members],
            "hoverinfo": "text"})
        front = sorted((p for p in members if p.pareto), key=lambda p: p.seconds)
        if len(front) > 1:
            traces.append({"type": "scatter", "mode": "lines", "name": esc(f"Pareto front{' · ' + group if group else ''}"),
                           "legendgroup": esc(name), "line": {"color": colour, "dash": "dot"},
                           "x": [round(p.seconds, 5) for p in front], "y": [round(p.clip.estimate, 3) for p in front],
                           "hoverinfo": "skip"})
    return {"data": traces, "layout": layout}
