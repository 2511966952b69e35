"""Terminal output: plan tables, the live run display, the end-of-run summary."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import one_line
from ..execute.recorder import RunObserver
from ..intake.plan import Cell, Plan
from ..rules import axes
from ..rules.axes import steps_text
from ..rules.tasks import VIDEO_TASKS

# Axes shown in tables; the others appear only when the suite varies them.


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return str(value)


def varying_axes(cells: list[Cell]) -> list[str]:
    """Axes whose value differs between cells (plus model and steps, always useful)."""
    found = []
    for axis in axes.SHOWN_AXES:
        values = {str(c.settings.get(axis)) for c in cells}
        if len(values) > 1 or axis in {"model", "steps", "sampler"}:
            found.append(axis)
    return found


def safe(text: str) -> str:
    """User text for the terminal: control characters shown as escapes (no escape sequence runs)
    and rich's markup brackets escaped (a model named '[red]' is printed, not obeyed)."""
    return escape(one_line(text))


PROMPT_CHARS = 28  # a prompt is cut here in a table (24 prompts of 80 characters would fill the screen)


def _shown(value: Any, axis: str = "") -> str:
    """A setting as a table shows it: an unset one as '-', never Python's 'None'; prompts cut."""
    if value is None:
        return "-"
    text = str(value)
    if axis in {"prompt", "negative_prompt"} and len(text) > PROMPT_CHARS:
        text = text[:PROMPT_CHARS - 1] + "…"
    return safe(text)


def plan_table(plan: Plan) -> Table:
    cells = plan.cells + plan.duplicates
    shown = varying_axes(cells)
    table = Table(title=f"{plan.suite.name}: {len(plan.cells)} cells, {plan.loads} pipeline "
                        f"load{'' if plan.loads == 1 else 's'}, "
                        f"{'at most ' if plan.suite.auto else ''}{plan.generations} generations "
                        f"({plan.suite.warmup} warm-up + {plan.suite.repeats_text()} per cell)")
    table.add_column("#", justify="right")
    table.add_column("cell id")
    for axis in shown:
        table.add_column(axis)
    table.add_column("status")
    for index, cell in enumerate(plan.cells[:PLAN_ROWS_SHOWN], start=1):
        status = f"not applicable: {safe(cell.skip_reason)}" if cell.skip_reason else "will run"
        table.add_row(str(index), cell.cell_id, *[_shown(cell.settings.get(a), a) for a in shown], status)
    hidden = plan.cells[PLAN_ROWS_SHOWN:]
    if hidden:  # a table of 10,000 rows says nothing a person reads (and takes seconds to draw)
        skipped: dict[str, int] = {}
        for cell in hidden:
            skipped[cell.skip_reason or ""] = skipped.get(cell.skip_reason or "", 0) + 1
        runs = skipped.pop("", 0)
        summary = [f"{runs} will run"] + [f"{n} not applicable: {safe(reason)}" for reason, n in skipped.items()]
        table.add_row("...", f"{len(hidden)} more", *[""] * len(shown), "; ".join(summary) + " (plan --json lists all)")
    for cell in plan.duplicates[:PLAN_ROWS_SHOWN]:
        table.add_row("-", cell.cell_id, *[_shown(cell.settings.get(a), a) for a in shown],
                      f"skipped: duplicate of {safe(cell.duplicate_of or '')}")
    if len(plan.duplicates) > PLAN_ROWS_SHOWN:
        table.add_row("-", f"{len(plan.duplicates) - PLAN_ROWS_SHOWN} more", *[""] * len(shown), "skipped: duplicates")
    return table


PLAN_ROWS_SHOWN = 200  # cells listed one per row; the rest are counted by status


MOST_WARNINGS_OF_A_KIND = 3  # beyond this, a kind of warning is one line naming its cells


def grouped_warnings(advices: list[Any]) -> list[str]:
    """One line per warning, except that a kind met in many cells is one line: the first in full,
    then the other cells by id (every warning stays in the results file and the report)."""
    by_kind: dict[str, list[Any]] = {}
    for advice in advices:
        by_kind.setdefault(advice.kind, []).append(advice)
    lines = []
    for kind, group in by_kind.items():
        if len(group) <= MOST_WARNINGS_OF_A_KIND:
            lines.extend(a.text() for a in group)
            continue
        others = [_cell_of(a.subject) for a in group[1:]]
        lines.append(f"{kind} in {len(group)} cells: {group[0].subject}: {group[0].message}; also "
                     f"{', '.join(others)}")
    return lines


def _cell_of(subject: str) -> str:
    """A warning's cell id where its subject ends with one ('... (8421ed7be0dacd37)'), else the subject."""
    if subject.endswith(")") and "(" in subject:
        return subject[subject.rindex("(") + 1:-1]
    return subject


def failure_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per cell that did not run cleanly, with its reason (printed under the summary)."""
    lines, seen = [], set()
    for record in records:
        if record["status"] != "ok" and record["cell_id"] not in seen:
            seen.add(record["cell_id"])
            cell = record["cell"]
            lines.append(f"{record['status']}: {cell.get('model')} {cell.get('sampler')} {steps_text(cell.get('steps'))} "
                         f"({record['cell_id']}): {record['error']}")
    return lines


def iterations_per_second(record: dict[str, Any]) -> float | None:
    total = sum(record.get("step_s") or [])
    return record["evaluations"] / total if total > 0 else None


def summary_table(plan: Plan, records: list[dict[str, Any]]) -> Table:
    """One row per setting: status, then the report's own figures (the metric registry, summarised
    as the report does): seconds per image, it/s, step latency, memory peaks. A prompt set's (or a
    seed list's) cells are one setting, pooled as the report's charts pool them."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_cell.setdefault(record["cell_id"], []).append(record)
    figures, setting_of = _setting_figures(records)
    pooled = any(setting_of.get(cell_id, cell_id) != cell_id for cell_id in by_cell)
    cells = [c for c in plan.cells if c.cell_id in by_cell]
    shown = varying_axes(cells) if cells else ["model"]
    if pooled:
        shown = [a for a in shown if a not in axes.INSTANCE_COLUMNS] or ["model"]
        # one row per setting, in the plan's order of its first cell (interleaved runs record them in turns)
        by_id = {c.cell_id: c for c in plan.cells}
        standing = [setting_of.get(c.cell_id, c.cell_id) for c in cells]
        cells = [by_id[s] for s in dict.fromkeys(standing) if s in by_id]
    over = "every prompt and seed's measured repeats" if pooled else "measured repeats"
    table = Table(title=f"Summary (medians over {over}; warm-ups left out)")
    for axis in shown:
        table.add_column(axis, overflow="fold")
    video = {cell.settings.get("task") in VIDEO_TASKS for cell in cells}
    per = {frozenset({True}): "s/clip", frozenset({True, False}): "s/image or clip"}.get(frozenset(video), "s/image")
    for column in ("status", per, "it/s", "step ms", "peak VRAM", "peak RSS"):
        table.add_column(column, justify="right", no_wrap=True)
    members: dict[str, list[str]] = {}  # the cell standing for a setting -> its cells
    for cell_id in by_cell:
        members.setdefault(setting_of.get(cell_id, cell_id), []).append(cell_id)
    for cell in cells:
        failed = [r for cell_id in members.get(cell.cell_id, []) for r in by_cell[cell_id] if r["status"] != "ok"]
        values = [_shown(cell.settings.get(a), a) for a in shown]
        figure = figures.get(cell.cell_id)
        if figure is None:  # nothing measured
            table.add_row(*values, failed[0]["status"] if failed else "-", "-", "-", "-", "-", "-")
            continue
        status = "ok" if not failed else f"ok ({len(failed)} failed)"
        table.add_row(*values, status, _fixed(figure["s_per_image"], 3), _fixed(figure["it_s"], 1),
                      _fixed(figure["step_ms"], 1), _gib(figure["peak_vram_gib"]), _gib(figure["peak_rss_gib"]))
    return table


def _setting_figures(records: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each measured setting's summary row, computed as the report computes it (one definition of
    every figure: a console and a report that disagreed on a step latency would both lose trust),
    keyed by the cell id that stands for the setting; and which setting each cell belongs to."""
    import pandas as pd

    from ..analysis.tables import setting_summary, with_metrics
    from ..contract.results import generation_row

    rows = [generation_row(r, {"hostname": "this run"}, "") for r in records]
    if not rows:
        return {}, {}
    settings = setting_summary(with_metrics(pd.DataFrame(rows)))
    if settings.frame.empty:
        return {}, settings.cell_setting
    return {str(row["cell_id"]): row for row in settings.frame.to_dict("records")}, settings.cell_setting


def _fixed(value: Any, decimals: int) -> str:
    return f"{value:.{decimals}f}" if value is not None and value == value else "-"


def _gib(value: Any) -> str:
    return fmt_bytes(value * 2**30) if value is not None and value == value and value > 0 else "-"


class LiveObserver(RunObserver):
    """Shows cell n of N, its settings, the last it/s and memory, and an ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.fields[cell]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task: Any = None
        self.per_cell = 1

    def started(self, plan: Plan, results_path: Path) -> None:
        self.console.print(f"Writing results to [bold]{results_path}[/bold]")
        self.per_cell = plan.suite.most_warmups + plan.suite.max_repeats
        self.done_in_cell: dict[str, int] = {}  # per cell: its turns interleave with other cells'
        self.rates: dict[str, list[float]] = {}  # per cell: it/s of its measured generations so far
        self.progress.start()
        self.task = self.progress.add_task("run", total=plan.generations, cell="starting", info="loading...")

    def cell_started(self, cell: Cell, index: int, total: int) -> None:
        label = f"cell {index}/{total}: {cell.model_name} {cell.settings['sampler']} {steps_text(cell.settings['steps'])} " \
                f"{cell.settings['resolution']}"
        self.progress.update(self.task, cell=safe(label))

    def loaded(self, info: dict[str, Any]) -> None:
        runtime = info.get("runtime", {})
        self.progress.console.print(f"  loaded on {runtime.get('device')} ({runtime.get('dtype')}"
                                    f"{', ' + runtime['gpu_name'] if runtime.get('gpu_name') else ''}) "
                                    f"in {info.get('load_s', 0):.1f} s")

    def generation(self, record: dict[str, Any]) -> None:
        if record["status"] == "ok":
            # the median of this cell's measured generations so far: the figure the summary will show
            rate = iterations_per_second(record)
            rates = self.rates.setdefault(record["cell_id"], [])
            if rate and not record["warmup"] and not record.get("pilot"):
                rates.append(rate)
            memory = record["peak_vram_allocated_bytes"] or record["peak_host_rss_bytes"]
            kind = "VRAM" if record["peak_vram_allocated_bytes"] else "RSS"
            shown = f"{statistics.median(rates):.1f} it/s (median of {len(rates)})" if rates else \
                ("warming up" if record["warmup"] else "pilot" if record.get("pilot") else "")
            info = f"{shown}, {kind} {fmt_bytes(memory)}" if shown else ""
            done = self.done_in_cell[record["cell_id"]] = self.done_in_cell.get(record["cell_id"], 0) + 1
            advance = 1
            if record.get("repeats_stop"):  # auto repeats: this cell needs no more
                advance = max(1, self.per_cell - done + 1)
            self.progress.update(self.task, advance=advance, info=info)
        else:
            # A failed cell will not produce its remaining generations.
            self.progress.update(self.task, advance=self.per_cell,
                                 info=f"[red]{record['status']}[/red]: {safe((record['error'] or '')[:50])}")

    def note(self, message: str) -> None:
        self.progress.console.print(f"[dim]{safe(message)}[/dim]", soft_wrap=True)  # paths stay whole

    def stopping(self) -> None:
        self.progress.console.print("[yellow]Stopping after the generation in progress "
                                    "(Ctrl-C again to stop at once)...[/yellow]")

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
