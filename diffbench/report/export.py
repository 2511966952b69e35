"""Flat tables for spreadsheets and for pasting into an issue: csv, parquet, markdown."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..analysis.filters import apply_filters
from ..analysis.metrics import METRICS
from ..analysis.tables import PHASES, cell_summary, varying, with_metrics
from ..contract.files import replace_whole, write_text_whole
from ..contract.results import Results, load_results
from ..errors import DiffbenchError, one_line
from ..rules import axes


def cell_columns() -> list[str]:
    """The cell table's columns after the settings: every declared metric, then the spread."""
    return ["hostname", "hardware", "n", *METRICS, "card_memory_gib", "card_memory_kind", "s_per_image_p90",
            "s_per_image_p99", *PHASES, "cv", "cell_id"]


class ExportError(DiffbenchError, ValueError):
    """An export that cannot be written as asked."""


# An issue's table: the settings that vary, then what people ask first (a paste, not a dump).
CONCISE_COLUMNS = ("hardware", "n", "s_per_image", "s_per_image_p90", "it_s", "card_memory_gib", "card_memory_kind",
                   "energy_j_per_image")


def export_table(paths: list[str | Path], level: str = "cells", filters: list[str] | None = None,
                 results: Results | None = None, concise: bool = False, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of `level` (cells, generations, steps); `concise` keeps the cell table's headline
    columns only (the Markdown paste). `frame`: the generations with metrics, already filtered."""
    results = results if results is not None else load_results(list(paths))
    if frame is None:
        frame = apply_filters(with_metrics(results.generations), filters or [])
    if level == "generations":
        return frame.drop(columns=[c for c in ("file",) if c in frame])
    if level == "steps":
        return _steps_with_settings(results.steps, frame)
    summary = cell_summary(frame)
    if summary.empty:
        return summary
    settings = [c for c in varying(summary) if c not in {"hostname"}]
    if concise:  # the settings in one label column: 'sdxl · fp16 · 20 steps · compile=True'
        return summary[["label", *(c for c in CONCISE_COLUMNS if c in summary)]].rename(columns={"label": "setting"})
    return summary[settings + [c for c in cell_columns() if c in summary]]


def _steps_with_settings(steps: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per denoising step, each with its cell's settings (model, task, frames, ...) so
    that a spreadsheet can group the steps without the cell table beside it."""
    if frame.empty or steps.empty:
        return steps.iloc[0:0] if not steps.empty else steps
    kept = steps[steps["cell_id"].isin(frame["cell_id"])]
    settings = [c for c in axes.SETTING_COLUMNS if c in frame and c not in kept.columns]
    per_cell = frame.drop_duplicates(["run_id", "cell_id"])[["run_id", "cell_id", *settings]]
    return kept.merge(per_cell, on=["run_id", "cell_id"], how="left")


def write_export(table: pd.DataFrame, fmt: str, output: str | Path | None) -> str | None:
    """Write to `output` (its folder created if need be), or return the text (csv, markdown) for standard output."""
    if output is not None:
        try:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"{output}: cannot create its folder ({exc.strerror})") from None
    if fmt == "parquet":
        if output is None:
            raise ExportError("parquet is binary: give -o FILE.parquet")
        try:
            replace_whole(output, lambda path: table.to_parquet(path, index=False))
        except ImportError:
            raise ExportError("parquet needs pyarrow: pip install 'diffbench[parquet]'") from None
        return None
    if fmt == "csv":
        text = spreadsheet_safe(table).to_csv(index=False)
    else:
        text = _markdown(table)
    if output is None:
        return text
    try:
        write_text_whole(output, text)
    except OSError as exc:
        raise ExportError(f"{output}: cannot write ({exc.strerror})") from None
    return None


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, or a tab or
# carriage return before them. Text only: numbers (-0.5) stay numbers.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell that a spreadsheet would evaluate quoted by a leading
    apostrophe: a prompt '=HYPERLINK(...)' reads as that text, never runs."""
    def neutral(value: object) -> object:
        if not isinstance(value, str):
            return value
        # control characters shown as escapes: an OSC 52 or title sequence in a prompt never reaches
        # the terminal that `export` prints to
        value = one_line(value)
        return f"'{value}" if value.startswith(FORMULA_START) else value

    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]) and not pd.api.types.is_bool_dtype(safe[column]):
            safe[column] = safe[column].map(neutral)
    return safe


def _markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no dependency on tabulate)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            text = "-" if value != value else f"{value:.4g}"
        else:
            text = "-" if value is None or value is pd.NA else str(value)
        # one line, controls escaped, and no raw HTML: GitHub renders a label's <img> or <script> otherwise
        return html.escape(one_line(text), quote=False).replace("|", "\\|")

    header = "| " + " | ".join(cell(str(c)) for c in table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"
