"""The self-contained HTML report: plotly.js inlined once, images embedded, no other host contacted."""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..analysis.analyse import Analysis, analyse, fit_rows
from ..analysis.compare import ComparisonTable, headline, unjudged
from ..analysis.metrics import report_metrics
from ..analysis.tables import measured, setting_label, varying
from ..analysis.tradeoff import QUALITY_MIN_EFFECT
from ..analysis.tradeoff import describe as describe_tradeoff
from ..analysis.transfer import UNSEEN_HOST_SPREAD
from ..contract.files import safe_image, write_text_whole
from ..contract.results import Results, check_output, load_results
from ..errors import mended
from ..execute.advice import KIND_EXPLANATIONS, RECOMPUTED_KINDS
from ..measure.clipscore import RANDOM_WEIGHTS
from ..rules import axes
from ..rules.tasks import STRENGTH_TASKS, VIDEO_TASKS, video_seconds
from . import figures

TEMPLATE = "report.html.j2"


@dataclass
class ReportInfo:
    path: Path
    seconds: float
    bytes: int
    generations: int
    cells: int
    settings: int  # what the charts draw: cells with a prompt set's prompts and seeds pooled


def _safe_json(data: Any) -> str:
    """JSON that cannot close the <script> element it sits in, whatever strings it holds."""
    text = json.dumps(data, allow_nan=False, default=_json_default)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(data: Any) -> Any:
    """NaN and infinity are not JSON: plotly takes null for a missing point."""
    if isinstance(data, float):
        return data if data == data and abs(data) != float("inf") else None
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_clean(v) for v in data]
    if hasattr(data, "item"):
        return _clean(data.item())
    return data


def _images(frame: pd.DataFrame, summary: pd.DataFrame) -> list[dict[str, Any]]:
    """Each cell's stored thumbnail as a data URI, grouped by prompt and seed."""
    if "image" not in frame or summary.empty:
        return []
    images = []
    with_image = frame[frame["image"].notna()].drop_duplicates(["cell_id", "hostname"])
    # captions leave out what the group heading already says
    # recipes and resolutions of one prompt side by side: the heading names the prompt and seed, the
    # caption the setting (its resolution too, where settings differ in it)
    shown = [c for c in varying(summary) if c not in {"prompt", "negative_prompt", "seed"}]
    labels = {(r["cell_id"], r["hostname"]): setting_label(r, shown) for _, r in summary.iterrows()}
    for row in with_image.itertuples():
        if (row.cell_id, row.hostname) not in labels:  # a cell that failed: no setting to show
            continue
        # Only a checked PNG from the results file's own images folder: a results file must not be
        # able to carry any other local file into a report that is then shared.
        data = safe_image(Path(row.file), row.image)
        uri = f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}" if data is not None else None
        images.append({"label": labels.get((row.cell_id, row.hostname), row.cell_id), "host": row.hostname,
                       "group": f"{row.prompt} (seed {row.seed})", "uri": uri,
                       "video": getattr(row, "task", None) in VIDEO_TASKS,
                       "random": getattr(row, "weights", "") == "random"})
    return sorted(images, key=lambda i: (i["group"], i["label"], i["host"]))


def _task_is(summary: pd.DataFrame, tasks: frozenset[str]) -> pd.Series:
    """Which settings ran one of `tasks` (none, in results from before tasks existed)."""
    if "task" not in summary:
        return pd.Series(False, index=summary.index)
    return summary["task"].isin(sorted(tasks))


def _task_charts(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """Video: seconds per clip against frames; image-to-image and inpainting: against strength.
    Only where such cells were measured at two values or more."""
    if summary.empty:
        return []
    video = _task_is(summary, VIDEO_TASKS)
    strength = _task_is(summary, STRENGTH_TASKS)
    charts = [("clip-frames", figures.cost_against(summary, "frames", video, "Video: seconds per clip against frames",
                                                   "frames per clip", y_title="seconds per clip (median)")),
              ("strength", figures.cost_against(summary, "strength", strength,
                                                "Image-to-image and inpainting: seconds per image against strength",
                                                "strength (share of the steps that run)"))]
    return [{"id": chart_id, "figure": figure} for chart_id, figure in charts if figure is not None]


def _step_charts(analysis: Analysis) -> list[dict[str, Any]]:
    """Per-step latency and latency against steps, as small multiples by model where one chart would
    draw more series than it has distinct colours (figures.MAX_SERIES)."""
    settings = analysis.settings.frame
    steps = analysis.settings.pooled(analysis.steps)
    charts = []
    models = [str(m) for m in settings["model"]] if "model" in settings else [""] * len(settings)
    lines = figures.step_lines(steps)  # each cell's line, once for every chart
    for index, (suffix, rows) in enumerate(figures.chunks(models)):
        charts.append({"id": f"steps-{index}",
                       "figure": figures.step_latency(analysis.frame, steps, settings.iloc[rows], suffix, lines)})
    # a line needs two step counts: settings measured at one are in the per-step charts
    scaling = [s for s in analysis.scaling if len(s.points) >= 2]
    for index, (suffix, rows) in enumerate(figures.chunks([s.model for s in scaling])):
        charts.append({"id": f"scaling-{index}", "figure": figures.latency_vs_steps([scaling[i] for i in rows], suffix)})
    return charts


def _memory_charts(settings: pd.DataFrame) -> list[dict[str, Any]]:
    """Time against memory: images and video on charts of their own (a clip's seconds and an
    image's are different things)."""
    video = _task_is(settings, VIDEO_TASKS)
    if not video.any():
        return [{"id": "pareto", "figure": figures.time_against_memory(settings)}]
    charts = []
    if (~video).any():
        charts.append({"id": "pareto", "figure": figures.time_against_memory(settings[~video], " · images")})
    charts.append({"id": "pareto-video", "figure": figures.time_against_memory(settings[video], " · video clips",
                                                                              "seconds per clip")})
    return charts


def _videos(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per video setting: what a clip costs, per frame and per second of video, and the
    VAE decode (the notorious spike of video pipelines) beside the denoising."""
    if summary.empty:
        return []
    rows = []
    for row in summary[_task_is(summary, VIDEO_TASKS)].to_dict("records"):
        clip_s = video_seconds(row.get("frames"), row.get("fps"))
        rows.append({"label": row["label"], "hostname": row["hostname"], "hardware": row.get("hardware"),
                     "frames": row.get("frames"), "fps": row.get("fps"), "clip_s": clip_s,
                     "s_per_clip": row.get("s_per_image"), "s_per_frame": row.get("s_per_frame"),
                     "s_per_video_second": row.get("s_per_video_second"), "denoise": row.get("phase_denoise"),
                     "decode": row.get("phase_decode"), "decode_vram": row.get("decode_vram_gib"),
                     "memory": row.get("card_memory_gib"),
                     "memory_kind": row.get("card_memory_kind")})
    return _clean(rows)


def _failures(frame: pd.DataFrame) -> list[dict[str, Any]]:
    failed = frame[frame["status"] != "ok"]
    rows = []
    for row in failed.drop_duplicates(["cell_id", "hostname", "status"]).itertuples():
        rows.append({"status": row.status, "model": row.model, "sampler": row.sampler, "steps": row.steps,
                     "host": row.hostname, "cell_id": row.cell_id,
                     "error": mended(str(row.error)) if isinstance(row.error, str) else row.error})
    return rows


def _hosts(results: Results) -> list[dict[str, Any]]:
    rows = []
    for row in results.runs.to_dict("records"):
        rows.append({"hostname": row.get("hostname"), "gpus": row.get("gpu_names") or "none",
                     "cpu": row.get("cpu"), "started": row.get("started_at"), "suite": row.get("suite"),
                     "torch": row.get("sw_torch"), "diffusers": row.get("sw_diffusers"),
                     "python": row.get("sw_python"), "diffbench": row.get("sw_diffbench")})
    return rows


def _axis_blocks(computed: dict[tuple[str, str], ComparisonTable], axes: list[str]) -> list[dict[str, Any]]:
    """Per compared axis: what too few repeats left unjudged (said once), then each metric's judged
    sentences and its table (whose unjudged rows carry their ratio and no verdict)."""
    blocks = []
    for axis in axes:
        tables = []
        for metric in report_metrics():
            table = computed[(axis, metric.name)]
            if table.rows:
                rows = _clean(table.frame().to_dict("records"))
                for row in rows:
                    row["verdict"] = "not judged" if row["verdict"] == "too few to tell" else row["verdict"]
                tables.append({"axis": axis, "metric": metric.name, "title": metric.title, "unit": metric.unit,
                               "rows": rows, "unpaired": table.unpaired,
                               "sentences": headline(table, judged_only=True)})
        if tables:
            left = unjudged(axis, [computed[(axis, m.name)] for m in report_metrics()])
            blocks.append({"axis": axis, "unjudged": left.sentence() if left else None, "tables": tables})
    return blocks


def _summary_sentences(settings: pd.DataFrame, tables: list[ComparisonTable], pareto: list[str],
                       instances: int = 1) -> list[str]:
    """Fastest, leanest and the Pareto front, over settings (a prompt set's prompts pooled)."""
    sentences = []
    if settings.empty:
        return ["No generation was measured successfully."]
    labels = _setting_labels(settings)
    fastest = settings["s_per_image"].idxmin()
    over = f" (its median over {int(settings.at[fastest, 'instances'])} prompts and seeds)" \
        if instances > 1 and "instances" in settings else ""
    sentences.append(f"Fastest: {labels[fastest]} on {settings.at[fastest, 'hostname']}, "
                     f"{settings.at[fastest, 's_per_image']:.3f} s per image{over}.")
    if settings["card_memory_gib"].notna().any():
        leanest = settings["card_memory_gib"].idxmin()
        sentences.append(f"Leanest: {labels[leanest]} on {settings.at[leanest, 'hostname']}, "
                         f"{settings.at[leanest, 'card_memory_gib']:.2f} GiB peak, {settings.at[leanest, 'card_memory_kind']}.")
    if pareto:
        front = settings.index[settings["label"].isin(pareto)] if "pareto" not in settings else \
            settings.index[settings["pareto"].astype(bool)]
        sentences.append(f"Pareto-optimal in time and memory: {'; '.join(dict.fromkeys(labels[front]))}.")
    unjudged_axes = []
    for table in tables:
        lines = headline(table, judged_only=True)
        if lines:
            sentences.append(lines[0])
        left = unjudged(table.axis, [table])
        if left is not None and not lines:
            unjudged_axes.append(left)
    if unjudged_axes:  # one sentence for them all; each axis's own note is under Comparisons
        low = min(a.repeats[0] for a in unjudged_axes)
        sentences.append(f"No verdict yet by {', '.join(a.axis for a in unjudged_axes)}: with as few as {low} "
                         f"repeat(s) per setting a rank test cannot reach p<0.05 (Comparisons says how many more; "
                         f"repeats: auto decides).")
    return sentences


def _setting_labels(summary: pd.DataFrame) -> pd.Series:
    """Each cell's label without its prompt and seed (what a sentence about settings names; a
    prompt set would otherwise put 24 prompts into the summary)."""
    columns = [c for c in varying(summary) if c != "hostname" and c not in axes.INSTANCE_COLUMNS]
    if not columns or len(columns) == len([c for c in varying(summary) if c != "hostname"]):
        return summary["label"].astype(str)
    return pd.Series([setting_label(row, columns) for row in summary[columns].to_dict("records")],
                     index=summary.index)


@contextlib.contextmanager
def _without_cyclic_collection() -> Iterator[None]:
    """No cyclic garbage collection while a report builds: nearly everything it allocates (records,
    frames, traces) lives until the page is written, and each full collection walks all of it again
    (0.3-1.2 s of a 3 s build at 10,000 generations). Reference counting still frees as usual; the
    collector runs again, as before, once the build ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_report(paths: list[str | Path], output: str | Path, compare_axis: str | None = None,
                 baseline: str | None = None, filters: list[str] | None = None, title: str | None = None,
                 results: Results | None = None, frame: pd.DataFrame | None = None) -> ReportInfo:
    """Read results files/folders (or take them already loaded) and write one self-contained HTML report."""
    started = time.perf_counter()
    check_output(output, paths)
    with _without_cyclic_collection():
        results = results if results is not None else load_results(list(paths))
        analysis = analyse(results, filters, compare_axis, baseline, frame)
        page = render(analysis, paths, title)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(output, page)  # a Ctrl-C or a full disk half way leaves no truncated report
    return ReportInfo(output, time.perf_counter() - started, output.stat().st_size, int(len(analysis.frame)),
                      int(analysis.summary.shape[0]), int(analysis.settings.frame.shape[0]))


@functools.cache
def _template() -> Any:
    """The page template, compiled once a process (compiling it costs more than many renders)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("diffbench.report", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["num"] = _number
    return environment.get_template(TEMPLATE)


def render(analysis: Analysis, paths: list[str | Path], title: str | None = None) -> str:
    """The report page for an analysis: it lays out what the analysis concluded, nothing more."""
    from plotly.offline import get_plotlyjs

    frame, summary, results = analysis.frame, analysis.summary, analysis.results
    # Charts draw one bar or line per setting: a prompt set's cells pooled (analysis.settings)
    settings = analysis.settings.frame
    headline_tables = [analysis.comparisons[(axis, "s_per_image")] for axis in analysis.axes]
    charts = [
        *_step_charts(analysis),
        {"id": "phases", "figure": figures.phase_breakdown(settings)},
        {"id": "memory", "figure": figures.memory_against_cards(settings)},
        *_memory_charts(settings),
        {"id": "quality", "figure": figures.quality_against_steps(frame, analysis.quality, summary)},
        *_task_charts(settings),
    ]
    tradeoff = _tradeoff(analysis)
    figures_by_id = {c["id"]: c["figure"] for c in charts}
    if tradeoff:
        figures_by_id["tradeoff"] = figures.time_against_quality(analysis.tradeoff, analysis.scores.checkpoint)
    return _template().render(
        title=title or "diffbench report",
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        files=[str(p) for p in paths],
        counts={"generations": int(len(frame)), "measured": int(len(measured(frame))) if not frame.empty else 0,
                "cells": int(summary.shape[0]), "settings": int(settings.shape[0]),
                "hosts": int(results.runs["hostname"].nunique()) if not results.runs.empty else 0},
        summary_sentences=_summary_sentences(settings, headline_tables, analysis.pareto_labels, analysis.settings.instances)
        + [payoff.sentence() for payoff in analysis.compile_payoffs],
        hosts=_hosts(results),
        axis_blocks=_axis_blocks(analysis.comparisons, analysis.axes),
        cells=_clean(settings.drop(columns=[c for c in ("prompt", "negative_prompt") if c in settings]).to_dict("records"))
        if not settings.empty else [],
        fits=fit_rows(analysis.scaling),
        charts=charts,
        figures_json=_safe_json(_clean(figures_by_id)),
        tradeoff=tradeoff,
        videos=_videos(settings),
        images=_images(frame, summary) if not frame.empty else [],
        failures=_failures(frame) if not frame.empty else [],
        advice=_warnings(analysis.advice, results),
        recommendation=analysis.recommendation,
        projections=analysis.projections,
        other_cards=analysis.other_cards,
        answers=analysis.answers,
        answer_sentences=[describe_tradeoff(pair) for pair in analysis.tradeoff_pairs[:1]],
        projection_spread=_projection_spread() if analysis.other_cards or analysis.answers else None,
        transfer_spread=UNSEEN_HOST_SPREAD,
        plotly_js=get_plotlyjs(),
    )


def _tradeoff(analysis: Analysis) -> dict[str, Any] | None:
    """The time-against-quality section, where the results hold CLIP scores."""
    if not analysis.tradeoff:
        return None
    checkpoint = analysis.scores.checkpoint or ""
    return {"checkpoint": checkpoint, "random": checkpoint == RANDOM_WEIGHTS, "min_effect": QUALITY_MIN_EFFECT,
            "points": analysis.tradeoff, "sentences": [describe_tradeoff(p) for p in analysis.tradeoff_pairs],
            "notes": analysis.scores.notes}


def _projection_spread() -> float:
    """The widest error of a plain projection: to a card whose published figures the fit never saw."""
    from ..analysis.calibration import shipped_calibration

    return shipped_calibration().spread("card")


def _warnings(advice: list[Any], results: Results) -> list[dict[str, Any]]:
    """Warnings stored during the runs (host problems, throttling) and those computed now, once
    each, grouped by kind: each kind's explanation said once, with the settings it concerns."""
    found = [(a.kind, a.subject, a.message, "") for a in advice]
    stored = results.warnings if results.warnings is not None else pd.DataFrame()
    for row in stored.to_dict("records"):
        message = str(row.get("message") or "")
        if row.get("kind") in RECOMPUTED_KINDS:  # said from the data above, in this version's words
            continue
        if not any(message and message == m for _, _, m, _ in found):
            found.append((str(row.get("kind")), str(row.get("subject")), message,
                          f" (stored by the run on {row.get('hostname')})"))
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for kind, subject, message, where in dict.fromkeys(found):
        groups.setdefault(kind, []).append((subject, message, where))
    out = []
    for kind, members in groups.items():
        shared = _shared_explanation([m for _, m, _ in members]) if len(members) > 1 else ""
        items = [f"{subject}: {message[:len(message) - len(shared)].rstrip(': ') if shared else message}{where}"
                 for subject, message, where in members]
        explanation = shared or (items[0] if len(items) == 1 else KIND_EXPLANATIONS.get(kind, ""))
        out.append({"kind": kind, "count": len(members), "explanation": explanation,
                    "items": items if len(items) > 1 else []})
    return out


def _shared_explanation(messages: list[str]) -> str:
    """The explanation every message of one kind ends with (after its own figures), or ''."""
    first = messages[0]
    for cut in [i + 2 for i, c in enumerate(first) if first[i:i + 2] == ": "]:
        tail = first[cut:]
        if all(m.endswith(": " + tail) for m in messages):
            return tail
    return ""


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.{digits}f}"
    return str(value)
