"""The `diffbench` command: a thin click layer over plain functions.

Kept light on purpose: --help, validate, plan and schema never import torch or diffusers.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from typing import get_args as typing_args

import click

from . import __version__
from .errors import one_line
from .rules.plugins import PluginError, load_plugins

EXIT_BAD_INPUT = 2
EXIT_NOTHING = 3  # the input was fine but held nothing to show: no match, nothing measured


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


# Plugins first (rules/plugins.py): the axes, metrics and families they add must exist before the
# options below list the choices, and before any command imports what copies the axes.
try:
    load_plugins()
except PluginError as exc:
    _fail(str(exc))

from .analysis.metrics import METRICS  # noqa: E402


def _safe(text: str) -> str:
    """User text for the terminal: control characters shown as escapes (no escape sequence runs),
    and rich's markup brackets escaped (a model named '[red]' is printed, not obeyed)."""
    from rich.markup import escape

    return escape(one_line(text))


def _bounded(low: float, high: float, low_open: bool = False) -> Callable[[Any, Any, Any], Any]:
    """A click callback: a finite number within [low, high] (or (low, high]), else one line and exit 2
    (NaN passes click's own range checks, since every comparison with it is false)."""
    def check(ctx: Any, param: Any, value: Any) -> Any:
        if value is None:
            return value
        ok = math.isfinite(value) and (low < value if low_open else low <= value) and value <= high
        if not ok:
            _fail(f"{param.opts[0]} {value!r}: expected a number {'above' if low_open else 'from'} {low:g} "
                  f"{'up to' if low_open else 'to'} {high:g}")
        return value
    return check


def _given(ctx: Any, param: Any, value: Any) -> Any:
    """A click callback: an option given as empty text (an unset CI variable) is an error, not "any"."""
    if value is not None and not str(value).strip():
        _fail(f"{param.opts[0]} is empty: give a value, or leave the option out")
    return value


class _Steps(click.ParamType):
    """A step count the way suites write it: 20, '20 steps', '1 step' (1 to 1000)."""

    name = "steps"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value).strip().lower().removesuffix("steps").removesuffix("step").strip()
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            self.fail(f"{value!r}: expected a step count from 1 to 1000, such as 20 or '20 steps'", param, ctx)
        return int(text)


STEPS = _Steps()


def _closed_pipe() -> NoReturn:
    """The reader went away (`diffbench compare ... | head -3`): what it wanted it has. Exit quietly
    with 0, output going nowhere, so that Python does not report the pipe again at shutdown."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def _quiet_on_closed_pipe(console: Any) -> Any:
    """A rich Console that exits 0 on a closed pipe (rich's own choice is exit 1)."""
    console.on_broken_pipe = _closed_pipe
    return console


def _nothing(message: str) -> None:
    click.echo(f"nothing to show: {message}", err=True)
    sys.exit(EXIT_NOTHING)


def _selected(loaded: Any, filters: tuple[str, ...], what: str) -> Any:
    """The measured frame after --filter; no generations at all, or none left, ends the command (exit 3)."""
    from .analysis.filters import apply_filters
    from .analysis.tables import with_metrics

    if loaded.generations.empty:
        _nothing(f"no generations in {what}")
    frame = apply_filters(with_metrics(loaded.generations), list(filters))
    if frame.empty:
        _nothing(f"no generation matches {' and '.join(filters)}")
    return frame


def _suite_file(given: str) -> str:
    """A path, or the name of a shipped suite (`diffbench run quickstart` after any install)."""
    from .intake.shipped import UnknownSuite, resolve_suite

    try:
        return str(resolve_suite(given))
    except UnknownSuite as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _load(path: str, allow_pickle: bool = False, trust_remote_code: bool = False) -> Any:
    """The suite at `path`; else every problem in it, one line each as `validate` prints them, and exit 2."""
    from .intake.suite import suite_problems

    suite, problems = suite_problems(_suite_file(path), allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if suite is None:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return suite


def _skip_bad_lines_option(command: Any) -> Any:
    return click.option("--skip-bad-lines", is_flag=True,
                         help="Pass over lines that break the results contract (counted) instead of refusing the file.")(command)


def _read_results(paths: tuple[str, ...], skip_bad_lines: bool) -> Any:
    """Load results files for a command; problems are one line each on stderr, never a traceback."""
    from .contract.results import load_results

    results = load_results(list(paths), skip_bad_lines=skip_bad_lines)
    for note in results.notes:
        click.echo(f"note: {note}", err=True)
    if results.bad_lines:
        click.echo(f"note: {len(results.bad_lines)} bad line(s) passed over (--skip-bad-lines); the first: "
                   f"{results.bad_lines[0]}", err=True)
    return results


def _safety_options(command: Any) -> Any:
    command = click.option("--allow-pickle", is_flag=True,
                           help="Allow .ckpt/.bin checkpoints for every model (pickle can run code).")(command)
    return click.option("--trust-remote-code", is_flag=True,
                        help="Allow pipelines that ship their own Python code.")(command)


def _exit_interrupted(code: int) -> NoReturn:
    """Exit with `code` after a Ctrl-C or a stop signal, whatever the interrupt passed through.

    CPython marks a KeyboardInterrupt that left code run by exec() or eval() of a string (the
    methods dataclasses and namedtuples write are made so, and imports run them) as unhandled,
    even when it was caught later; run as `python -m`, the process then ends by SIGINT, not with
    the code asked for (CI saw exit -2 after "Interrupted"). Any string run through exec clears
    that mark."""
    exec("")  # noqa: S102 - clears the mark described above; runs nothing
    sys.exit(code)


class _Commands(click.Group):
    """Every user-facing error (DiffbenchError) becomes one line and exit 2, caught here once;
    a Ctrl-C that no command handled itself becomes "Interrupted" and 130, not click's
    "Aborted!" and 1, so that 130 means interrupted whenever the key was pressed."""

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import DiffbenchError

        try:
            return super().invoke(ctx)
        except DiffbenchError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a key held down must not cut the exit short
            click.echo("Interrupted", err=True)
            _exit_interrupted(128 + signal.SIGINT)
        except BrokenPipeError:
            _closed_pipe()


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diffbench")
def main() -> None:
    """Benchmark and profile diffusion pipelines (SD1.5, SDXL, SD3.5, FLUX) on your hardware."""


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the results file.")
@click.option("--resume", type=click.Path(dir_okay=False, exists=True),
              help="Append to this results file, running only what it does not hold yet.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this host; ray: cells go to Ray cluster nodes by their gpu.")
@click.option("--address", help="Ray cluster address (default: the running cluster, as `ray start` left it).")
@click.option("--force", is_flag=True, help="With --resume: append even if the suite changed since the file was written.")
@_safety_options
def run(suite: str, out_dir: str, resume: str | None, executor: str, address: str | None, force: bool,
        allow_pickle: bool, trust_remote_code: bool) -> None:
    """Run SUITE and write a results file (JSON Lines).

    Exit codes: 0 done; 2 bad input, or a results file that cannot be read or written; 3 nothing
    measured (every cell not applicable or failed) or nothing left to resume; 130 after
    Ctrl-C, 143 after SIGTERM, 129 after SIGHUP (what finished is saved: continue with --resume).
    """
    from rich.console import Console

    from .contract.results import ResultsError, ResultsWriteError
    from .execute.runner import run_suite
    from .report.live import LiveObserver

    console = _quiet_on_closed_pipe(Console(width=None if sys.stdout.isatty() else 140))
    observer = LiveObserver(console)
    try:
        loaded = _load(suite, allow_pickle, trust_remote_code)
        outcome = run_suite(loaded, out_dir, resume=resume, observer=observer, executor=executor,
                            ray_address=address, force=force, ignore_late_interrupts=True)
    except ResultsWriteError as exc:
        observer.close()
        hint = (f"; once fixed, continue with: diffbench run {suite} --resume {exc.path}" if exc.kept_lines
                else "; once fixed, run again")
        _fail(f"{exc}{hint}")
    except (ResultsError, RuntimeError) as exc:
        observer.close()
        _fail(str(exc))
    finally:
        observer.close()
    _report_run(console, suite, outcome)  # Ctrl-C is ignored from here on: the summary is printed whole


def _report_run(console: Any, suite: str, outcome: Any) -> None:
    """Print what a finished (or stopped) run did, and exit with the code the run's end calls for."""

    from .report.live import failure_lines, grouped_warnings, summary_table

    if not outcome.records and not outcome.interrupted:
        console.print(f"Nothing left to run: every cell of {_safe(suite)} is already in {outcome.results_path}")
        sys.exit(EXIT_NOTHING)
    for line in failure_lines(outcome.records):
        console.print(f"[red]{_safe(line)}[/red]")
    for line in grouped_warnings(outcome.warnings):
        console.print(f"[yellow]warning: {_safe(line)}[/yellow]")
    console.print(summary_table(outcome.plan, outcome.records))  # last: what a run ends on
    console.print(f"Results: [bold]{outcome.results_path}[/bold]", soft_wrap=True)
    if not outcome.interrupted:
        from pathlib import Path

        report = Path("reports") / f"{Path(outcome.results_path).stem}.html"
        console.print(f"Next: diffbench report {outcome.results_path} -o {report}   (or: diffbench compare "
                      f"{outcome.results_path} --by AXIS)", soft_wrap=True, markup=False)
    if outcome.interrupted:
        console.print("[yellow]Interrupted: what finished is saved; resume with "
                      f"diffbench run {_safe(suite)} --resume {outcome.results_path}[/yellow]", soft_wrap=True)
        _exit_interrupted(128 + (outcome.signal or 2))
    if not any(r["status"] == "ok" and not r["warmup"] for r in outcome.records):
        click.echo("nothing was measured: every cell ended not_applicable or failed (reasons above)", err=True)
        sys.exit(EXIT_NOTHING)


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_safety_options
def validate(suites: tuple[str, ...], allow_pickle: bool, trust_remote_code: bool) -> None:
    """Check suite files; print one line per problem (every problem, up to 20 a file) and exit 2 if any."""
    from .intake.suite import suite_problems

    failed = False
    for path in suites:
        suite, problems = suite_problems(_suite_file(path), allow_pickle=allow_pickle,
                                         trust_remote_code=trust_remote_code)
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if suite is None:
            failed = True
            continue
        from .intake.plan import make_plan

        plan = make_plan(suite)
        span = f"{plan.generations_min}-{plan.generations}" if plan.suite.auto else str(plan.generations)
        click.echo(f"{path}: ok ({len(plan.cells)} cells, {span} generations)")
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the cells as JSON.")
@_safety_options
def plan(suite: str, as_json: bool, allow_pickle: bool, trust_remote_code: bool) -> None:
    """Show the cells SUITE expands to, in run order, and what is skipped and why."""
    from .hardware.availability import DeviceCheck
    from .intake.plan import make_plan
    from .models.sources import host_problem

    made = make_plan(_load(suite, allow_pickle, trust_remote_code))
    check = DeviceCheck.with_nvml()  # no torch here: NVML tells which GPUs this host has
    for cell in made.cells:
        cell.skip_reason = cell.skip_reason or check.problem(cell.resolved()) or host_problem(cell.model)
    quality = _planned_quality(made.suite)
    if as_json:
        cells = [{"cell_id": c.cell_id, "load_key": c.load_key, "settings": c.resolved(),
                  "not_applicable": c.skip_reason} for c in made.cells]
        skipped = [{"cell_id": c.cell_id, "reason": f"duplicate of {c.duplicate_of}"} for c in made.duplicates]
        click.echo(json.dumps({"cells": cells, "skipped": skipped, "loads": made.loads,
                               "generations": made.generations, "generations_min": made.generations_min,
                               "repeats": made.suite.repeats, "quality": quality}, indent=2))
        return
    from rich.console import Console

    from .report.live import plan_table

    console = _quiet_on_closed_pipe(Console())
    console.print(plan_table(made))
    for line in _hub_lines(made.suite):
        console.print(_safe(line))
    if quality["clip"]:
        console.print(_safe(f"After the last cell: the CLIP score of each cell's full-resolution picture against its "
                             f"prompt, with {quality['clip']} on the CPU" + (
                                 f"; it cannot run here ({quality['problem']}): the measurements run all the same, "
                                 "and diffbench score adds the scores later" if quality["problem"] else "")))


def _hub_lines(suite: Any) -> list[str]:
    """What a suite takes from the Hugging Face Hub: each id, in the local cache (with its size
    there) or to be downloaded; read from the cache alone, nothing fetched."""
    from pathlib import Path

    from .models.sources import hub_cache_status, source_kind

    lines = []
    for name, spec in suite.models.items():
        for source in dict.fromkeys(s for s in (spec.source, spec.base) if s):
            if source_kind(source, Path(suite.base_dir)) == "hub":
                lines.append(f"Hub model {source} ({name}): {hub_cache_status(source, spec.revision)}")
    return lines


def _planned_quality(suite: Any) -> dict[str, Any]:
    """What a run will score after its last cell, and why it cannot where that is known now."""
    from pathlib import Path

    from .measure.clipscore import checkpoint_problem

    clip = suite.quality.clip
    return {"clip": clip, "problem": checkpoint_problem(clip, Path(suite.base_dir)) if clip else None}


@main.command()
@click.option("--results", "of_results", is_flag=True, help="The schema of a results line instead of a suite.")
def schema(of_results: bool) -> None:
    """Print the suite JSON Schema (for editor completion and checks), or the results file's."""
    if of_results:
        from .contract.records import results_json_schema

        click.echo(json.dumps(results_json_schema(), indent=2))
        return
    from .intake.suite import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
def suites() -> None:
    """The suites that ship with diffbench: run any of them by name (`diffbench run quickstart`)."""
    from .intake.shipped import describe, shipped_suites

    for name, path in shipped_suites().items():
        click.echo(f"  {name:<26} {describe(path)}")
    click.echo(f"\nThey are plain YAML files in {next(iter(shipped_suites().values())).parent}: copy one to start your own.")


@main.command()
def models() -> None:
    """List the built-in models (no download needed) and the sampler names understood."""
    from .rules.presets import BUILTINS
    from .rules.samplers import SAMPLERS

    click.echo("Built-in models (random weights, tiny; for tests and trying diffbench out):")
    for model in BUILTINS.values():
        defaults = ", ".join(f"{k}={v}" for k, v in model.defaults.items())
        click.echo(f"  builtin:{model.name:<10} {model.family:<5} {model.description} ({defaults})")
    from .models.synthetic import SYNTHETIC
    from .rules.families import FAMILIES

    click.echo("\nSynthetic full-size models (real architectures, random weights; for GPU speed and memory):")
    for preset in SYNTHETIC.values():
        if preset.family in FAMILIES:
            defaults = ", ".join(f"{k}={v}" for k, v in preset.defaults.items())
            click.echo(f"  synthetic:{preset.name:<13} {preset.family:<5} {preset.description} ({defaults})")
    counted_only = [preset for preset in SYNTHETIC.values() if preset.family not in FAMILIES]
    if counted_only:
        click.echo("\nCounted, not run (`diffbench estimate --model NAME` and `diffbench gpus --model NAME`):")
        for preset in counted_only:
            click.echo(f"  {preset.name:<23} {preset.family:<5} {preset.description}")
    click.echo("\nAlso accepted as a model source: a Hub id (owner/name), a local diffusers folder,")
    click.echo("or a single .safetensors checkpoint (with family: and config:).")
    click.echo("\nSamplers (A1111, ComfyUI and diffusers names are all accepted):")
    for sampler in SAMPLERS:
        names = ", ".join(sampler.aliases)
        target = sampler.scheduler_class or "(the model's own scheduler)"
        kwargs = f" {sampler.kwargs}" if sampler.kwargs else ""
        click.echo(f"  {sampler.key:<22} {sampler.kind:<5} {target}{kwargs}  [{names}]")
    from .rules.backends import backend_lines
    from .rules.caches import CACHE_KINDS

    click.echo("\nStep caches (the cache axis, NAME[@value]; transformer denoisers such as FLUX's):")
    for kind in CACHE_KINDS.values():
        click.echo(f"  {kind.name:<12} @{kind.parameter} (default {kind.default:g}): {kind.description}")
    click.echo("\nOptional backends:")
    for line in backend_lines():
        click.echo(line)


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", default="reports/report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--compare", "compare_axis", help="Axis to compare by (gpu, model, sampler, steps, dtype, ...); "
                                                  "default: every axis that varies.")
@click.option("--baseline", help="The value of the compared axis that others are measured against.")
@click.option("--filter", "filters", multiple=True, help="Keep only AXIS=VALUE[,VALUE] (repeatable).")
@click.option("--title", help="Title of the report.")
@_skip_bad_lines_option
def report(results: tuple[str, ...], output: str, compare_axis: str | None, baseline: str | None,
           filters: tuple[str, ...], title: str | None, skip_bad_lines: bool) -> None:
    """Write a self-contained HTML report from RESULTS files or folders (any hosts and dates)."""
    from .contract.results import check_output
    from .report.html import build_report

    check_output(output, list(results))  # before reading anything: an input is never overwritten
    loaded = _read_results(results, skip_bad_lines)
    frame = _selected(loaded, filters, " ".join(results))  # filtered once, here
    try:
        info = build_report(list(results), output, compare_axis, baseline, list(filters), title, results=loaded,
                            frame=frame)
    except OSError as exc:
        _fail(f"{output}: cannot write the report ({exc.strerror})")
    click.echo(f"Wrote {info.path} ({info.bytes / 2**20:.1f} MiB, {info.generations} generations, "
               f"{info.settings} settings{f', {info.cells} cells' if info.cells != info.settings else ''}) "
               f"in {info.seconds:.1f} s")


@main.command("compare")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--by", "axis", required=True, help="Axis to compare by: gpu, host, model, sampler, steps, dtype, ...")
@click.option("--baseline", help="The value others are compared with (default: the first seen).")
@click.option("--metric", default="s_per_image", show_default=True,
              type=click.Choice(list(METRICS)))
@click.option("--filter", "filters", multiple=True, help="Keep only AXIS=VALUE[,VALUE] (repeatable).")
@click.option("--min-effect", default=0.05, show_default=True, callback=_bounded(0, 0.99),
              help="Smallest relative difference worth calling real (a fraction: 0.05 is 5%).")
@click.option("--allow-noisy", is_flag=True, help="Judge cells flagged noisy (measured while other work competed) or "
                                                  "unsteady (repeats that drifted, not interleaved) too.")
@click.option("--fail-above", metavar="PERCENT",
              help="A regression gate for CI: exit 1 when any value is worse than its baseline by more than this "
                   "(e.g. 5%), the rank test significant and the whole interval beyond it.")
@_skip_bad_lines_option
def compare_command(results: tuple[str, ...], axis: str, baseline: str | None, metric: str,
                    filters: tuple[str, ...], min_effect: float, allow_noisy: bool, fail_above: str | None,
                    skip_bad_lines: bool) -> None:
    """Compare settings along one axis, everything else held equal, as a terminal table."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.compare import compare, headline, noisy_cells, regressions
    from .stats.intervals import format_p

    threshold = _percent(fail_above, "--fail-above") if fail_above is not None else None
    loaded = _read_results(results, skip_bad_lines)
    frame = _selected(loaded, filters, " ".join(results))
    table = compare(frame, axis, baseline=baseline, metric=metric, min_effect=min_effect,
                    noisy=noisy_cells(loaded.warnings), allow_noisy=allow_noisy)
    console = _quiet_on_closed_pipe(Console(width=None if sys.stdout.isatty() else 160))
    declared = METRICS[metric]
    out = Table(title=f"{declared.title} ({declared.unit}, {declared.better} is better) by {axis}")
    for column in ("other settings", axis, "n", "median", "CI of median (its confidence)", "ratio",
                   "CI of ratio (its confidence)", "p", "verdict"):
        out.add_column(column, justify="right" if column in {"n", "median", "ratio", "p"} else "left")
    for row in table.frame().to_dict("records"):
        out.add_row(_safe(str(row["context"])), _safe(str(row[axis])), str(row["n"]), f"{row['median']:.4g}",
                    f"{row['ci_low']:.4g}-{row['ci_high']:.4g}{_stated(row['ci_confidence'])}", f"{row['ratio']:.3f}",
                    "-" if row["ratio_low"] != row["ratio_low"] else
                    f"{row['ratio_low']:.3f}-{row['ratio_high']:.3f}{_stated(row['ratio_confidence'])}",
                    "-" if row["p_value"] != row["p_value"] else format_p(row["p_value"]).removeprefix("p="),
                    row["verdict"])
    console.print(out)
    for line in headline(table):
        console.print(_safe(line))
    for line in table.unpaired:
        console.print(f"[dim]not compared: {_safe(line)}[/dim]")
    _print_quality_pairs(console, loaded, frame, axis, baseline)
    if not table.rows:
        recipes = frame["recipe"].dropna().unique() if "recipe" in frame else []
        hint = (f"; these results name recipes ({', '.join(map(str, recipes))}), compared as wholes: --by recipe"
                if len(recipes) > 1 and axis != "recipe" else "")
        _nothing(f"no two values of {axis} share all other settings in these results{hint}")
    if threshold is not None:
        gate = regressions(table, threshold)
        for line in gate.unjudged:
            console.print(f"gate: not judged: {_safe(line)}")
        for line in gate.failed:
            console.print(f"REGRESSION beyond {100 * threshold:g}%: {_safe(line)}")
        if gate.failed:
            sys.exit(1)
        if not gate.judged:
            # a gate that judged nothing has proven nothing: CI must not read it as a pass
            click.echo("nothing to show: the gate judged no value (every one was noisy, unsteady or had too few repeats); "
                       "it does not pass", err=True)
            sys.exit(EXIT_NOTHING)
        console.print(f"gate: no value worse than its baseline by more than {100 * threshold:g}% "
                      f"({gate.judged} compared)")


def _print_quality_pairs(console: Any, loaded: Any, frame: Any, axis: str, baseline: str | None) -> None:
    """CLIP score and time of each value against the baseline, paired on prompt and seed."""

    from .analysis.tables import cell_summary
    from .analysis.tradeoff import describe, paired_tradeoffs, scored_cells
    from .analysis.values import resolve_axis, resolve_value

    scores = scored_cells(cell_summary(frame), loaded.quality)
    if scores.empty:
        if axis == "recipe":
            console.print("[dim]no CLIP scores in these results: give the suite quality: {clip: CHECKPOINT}, or "
                          "add them with diffbench score RESULTS --clip CHECKPOINT[/dim]")
        return
    column = resolve_axis(axis, scores.cells)
    base = resolve_value(axis, baseline, scores.cells, unique=True)[0] if baseline is not None else None
    from .analysis.compare import noisy_cells

    pairs = paired_tradeoffs(scores, column, base, noisy=noisy_cells(loaded.warnings))
    if not pairs:
        return
    console.print(f"CLIP score ({_safe(scores.checkpoint or '')}), time and memory, paired by prompt and seed:")
    for pair in pairs:
        console.print(_safe(describe(pair)))
    for note in scores.notes:
        console.print(f"[dim]{_safe(note)}[/dim]")


def _stated(confidence: float) -> str:
    """' (96%)': the confidence an interval achieves, beside it (not a blanket 95%)."""
    return "" if confidence != confidence else f" ({100 * confidence:.4g}%)"


def _percent(text: str, option: str) -> float:
    """'5%' or '0.05' as a fraction; anything else ends the command with a one-line error."""
    value = text.strip()
    try:
        fraction = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        _fail(f"{option} {text!r}: expected a percentage such as 5% (or a fraction such as 0.05)")
    if not value.endswith("%") and fraction >= 1:
        # `--fail-above 5` is far likelier a forgotten % than 500%: a gate that silently never fails
        _fail(f"{option} {text!r}: ambiguous; write {value}% for a percentage, or a fraction below 1 (0.05 is 5%)")
    if not (math.isfinite(fraction) and 0 < fraction < 10):
        _fail(f"{option} {text!r}: expected a percentage above 0% and below 1000%")
    return fraction


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--clip", "checkpoint", required=True,
              help="CLIP checkpoint: a folder, a Hub id in the local Hugging Face cache, or builtin:tiny-clip.")
def score(results: tuple[str, ...], checkpoint: str) -> None:
    """Add CLIP scores to RESULTS files: each cell's full-resolution picture against its prompt.

    The pictures are those a run kept because its suite said `quality: {clip: ...}`; a cell already
    scored by this checkpoint is left as it is, so the command can be repeated."""
    from pathlib import Path

    from .contract.results import ResultsWriter, read_records, repair_torn_tail
    from .measure.clipscore import ClipScorer, checkpoint_identity, score_generations

    files: list[Path] = []
    for path in (Path(p) for p in results):
        if not path.is_file():
            _fail(f"{path}: no such results file")
        if not any(path.resolve() == seen.resolve() for seen in files):  # `F ./F` is one file, scored once
            files.append(path)
    identity = checkpoint_identity(checkpoint, Path.cwd())
    scorer: ClipScorer | None = None
    complete = scored_files = 0
    for path in files:
        # Locked before it is read: a second `score` waits its turn or is refused, and then sees the
        # first one's lines, so no picture is scored twice.
        writer = ResultsWriter(path, append=True)
        try:
            records = read_records(path)
            pictures = {r["cell_id"] for r in records if r.get("type") == "generation" and r.get("image_full")}
            done = {r["cell_id"] for r in records if r.get("type") == "quality" and r.get("checkpoint") == identity}
            if not pictures:
                click.echo(f"note: {path}: no full-resolution pictures stored (its suite did not ask for "
                           "quality: {clip: ...}; thumbnails are too small to score)", err=True)
                continue
            if pictures <= done:
                click.echo(f"{path}: every picture already has a CLIP score of {checkpoint}")
                complete += 1
                continue
            scorer = scorer or ClipScorer.load(checkpoint, Path.cwd())
            repaired = repair_torn_tail(path)  # a run killed mid-line: the new lines must start on their own
            if repaired:
                click.echo(f"note: {repaired}", err=True)
            written, skipped = 0, []
            for line in score_generations(records, path, scorer, done, skipped):
                writer.write(line)
                written += 1
        finally:
            writer.close()
        scored_files += 1
        for why in skipped:
            click.echo(f"note: {path}: picture not scored: {why}", err=True)
        click.echo(f"{path}: {written} CLIP score(s) of {checkpoint} added"
                   + (f", {len(skipped)} picture(s) not scored" if skipped else ""))
    if not scored_files and not complete:
        _nothing(f"no full-resolution picture to score in {' '.join(results)}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="markdown", show_default=True, type=click.Choice(["csv", "parquet", "markdown"]))
@click.option("--level", default="cells", show_default=True, type=click.Choice(["cells", "generations", "steps"]),
              help="One row per setting (medians), per generation, or per denoising step.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File to write (default: standard output).")
@click.option("--filter", "filters", multiple=True, help="Keep only AXIS=VALUE[,VALUE] (repeatable).")
@_skip_bad_lines_option
def export(results: tuple[str, ...], fmt: str, level: str, output: str | None, filters: tuple[str, ...],
           skip_bad_lines: bool) -> None:
    """Flat tables of RESULTS for spreadsheets (csv, parquet) or an issue (markdown)."""
    from .contract.results import check_output
    from .report.export import export_table, write_export

    if output is not None:
        check_output(output, list(results))
    loaded = _read_results(results, skip_bad_lines)
    frame = _selected(loaded, filters, " ".join(results))  # filtered once, here
    table = export_table(list(results), level, list(filters), results=loaded,
                         concise=fmt == "markdown" and level == "cells", frame=frame)  # an issue's paste, not a dump
    text = write_export(table, fmt, output)
    if text is not None:
        click.echo(text, nl=False)


@main.command("estimate")
@click.argument("results", nargs=-1, type=click.Path())
@click.option("--steps", type=STEPS, required=True, help="Step count to estimate for.")
@click.option("--model", help="Model name as in the results, or a counted architecture (sd15, sd21, sdxl, "
                              "sdxl-turbo, sd3-medium, sd35-medium, flux-dev, flux-schnell).")
@click.option("--gpu", callback=_given, help="GPU (measured, or projected from a measured one by the step model: docs/projection.md).")
@click.option("--sampler")
@click.option("--resolution")
@click.option("--batch-size", type=int)
@click.option("--dtype", "dtype")
@click.option("--offload")
@click.option("--guidance", "guidance_scale", type=float, callback=_bounded(0, 100),
              help="Guidance scale; 0 or 1: no classifier-free guidance (one denoiser batch).")
@click.option("--quantize", help="Weight quantization, e.g. bnb:nf4 or quanto:int8@all (answered from counts).")
@click.option("--vae-tiling", is_flag=True, default=None, help="Decode in tiles (answered from counts).")
@click.option("--vae-slicing", is_flag=True, default=None, help="Decode a batch one image at a time (from counts).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document of answers (docs/projection.md).")
@click.option("--frames", type=click.IntRange(1, 100_000),
              help="Video: seconds per clip and peak memory at this many frames, from the clips measured at "
                   "other frame counts with these steps.")
@click.option("--allow-noisy", is_flag=True, help="Fit on cells flagged noisy too (measured while other work competed).")
@click.option("--verbose", "-v", is_flag=True, help="Each answer's sentence and notes, instead of one table.")
@_skip_bad_lines_option
def estimate_command(results: tuple[str, ...], steps: int, as_json: bool, frames: int | None, allow_noisy: bool,
                     verbose: bool, skip_bad_lines: bool, **setting: Any) -> None:
    """What would STEPS cost? Seconds per image from the fitted fixed + per-step cost, with an interval
    (video with --frames: seconds per clip and memory against clip length).

    With no RESULTS, a counted architecture (--model) on a card of the spec table (--gpu) is
    answered from counts and the calibration shipped with diffbench: time, memory and whether it
    fits, and where it does not, the settings that would."""
    from .analysis.compare import leave_out_noisy
    from .analysis.costmodel import EstimateError, check_projections, estimate, select

    asked = AskedSetting(**setting)
    if not results:
        _answer_from_counts(asked.model, asked.gpu, steps, as_json, verbose, **asked.for_counts())
        return
    loaded = _read_results(results, skip_bad_lines)
    frame = _selected(loaded, (), " ".join(results))
    frame, left_out = leave_out_noisy(frame, loaded.warnings, allow_noisy)
    if left_out:
        click.echo(f"note: {left_out} cell(s) flagged noisy (measured while other work competed) are left out of "
                   "the fits; --allow-noisy keeps them", err=True)
        if frame.empty:
            raise EstimateError("every matching cell was flagged noisy (measured while other work competed): rerun "
                                "on a quiet machine, or pass --allow-noisy")
    if frames is not None:
        from .analysis.videoclips import clip_fits

        chosen = select(frame, **asked.chosen_by(), hardware=asked.gpu)
        fits = clip_fits(chosen[chosen["steps"] == steps]) if not chosen.empty else []
        if not fits:
            raise EstimateError(f"no video setting with {steps} steps was measured at two frame counts or more "
                                "(matching the filters given)")
        for fit in fits:
            click.echo(fit.sentence(frames))
        return
    from .analysis.costmodel import in_results

    if asked.model and not in_results(frame, asked.model) and _typed_model(asked.model) is not None and asked.gpu:
        # a counted architecture these results never measured: answered from counts, said so
        _answer_from_counts(asked.model, asked.gpu, steps, as_json, verbose, **asked.for_counts())
        return
    given = [f"--{k.replace('_', '-')}" for k, v in asked.counted_only().items() if v is not None]
    if given:
        raise EstimateError(f"{', '.join(given)}: answered from counts only (leave out RESULTS, or name a counted "
                            "model these results lack); measured settings are chosen with --filter-like options")
    answers = estimate(frame, steps, gpu=asked.gpu, **asked.chosen_by())
    if as_json:
        click.echo(json.dumps({"answers": [a.to_json() for a in answers]}, indent=1, allow_nan=False))
        return
    if verbose:
        for answer in answers:
            click.echo(one_line(answer.sentence()))
            for note in answer.fit.notes:
                click.echo(f"  note: {note}")
    else:
        from .report.terminal import answer_table

        for line in answer_table([a.to_json() for a in answers]):
            click.echo(line)
        click.echo("(--verbose: each answer's sentence and notes)")
    if any(a.fit.projected_from for a in answers):
        from .analysis.calibration import shipped_calibration

        calibration = shipped_calibration()
        click.echo(f"Projections use the step model (counted work; constants fitted on published figures, "
                   f"docs/projection.md); a projection's interval adds the measurement's and the model's held-out "
                   f"error: x/÷ {calibration.spread('figure'):.2f} to a card with published figures of its own, "
                   f"x/÷ {calibration.spread('card'):.2f} to one whose figures the fit never saw. "
                   "Memory: torch's allocated peak + 0.60 GiB CUDA context is the least a card must hold, x1.16 "
                   "allocator slack the most (measured under a cap); between the two a setting is borderline.")
        check = check_projections(frame)
        if check.pairs:
            click.echo(f"How projections held where both cards were measured in these results: median error "
                       f"{100 * check.median_abs_error:.0f}%, worst {100 * check.max_abs_error:.0f}% "
                       f"over {check.pairs} comparisons.")
        else:
            click.echo("These results have no two measured GPUs with equal settings, so how well projections hold "
                       "could not be checked here.")


@dataclass(frozen=True, kw_only=True)
class AskedSetting:
    """The setting `estimate` is asked about: what a measured setting is chosen by, and what only
    counts answer (a measured setting carries its own guidance, quantization and VAE options)."""

    model: str | None
    gpu: str | None
    sampler: str | None
    resolution: str | None
    batch_size: int | None
    dtype: str | None
    offload: str | None
    guidance_scale: float | None
    quantize: str | None
    vae_tiling: bool | None
    vae_slicing: bool | None

    def chosen_by(self) -> dict[str, Any]:
        """The columns a measured setting is chosen by (the card apart: a projection's target)."""
        return {"model": self.model, "sampler": self.sampler, "resolution": self.resolution,
                "batch_size": self.batch_size, "runtime_dtype": self.dtype, "offload": self.offload}

    def counted_only(self) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "quantize": self.quantize, "vae_tiling": self.vae_tiling,
                "vae_slicing": self.vae_slicing}

    def for_counts(self) -> dict[str, Any]:
        """What a counted answer takes beside the model and the card."""
        return {"resolution": self.resolution, "batch_size": self.batch_size, "dtype": self.dtype,
                "offload": self.offload, **self.counted_only()}


def _typed_model(model: str) -> tuple[str, dict[str, Any]] | None:
    from .analysis.projection import typed_model

    return typed_model(model)


COUNTED_NAMES = "sd15, sd21, sdxl, sdxl-turbo, sd3-medium, sd35-medium, flux-dev, flux-schnell"


def _counted_model(model: str) -> tuple[str, dict[str, Any]]:
    """The counted architecture a typed --model means, with the settings its name implies."""
    from .analysis.costmodel import EstimateError

    typed = _typed_model(model)
    if typed is None:
        import difflib

        close = difflib.get_close_matches(model.lower(), [n.strip() for n in COUNTED_NAMES.split(",")], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise EstimateError(f"--model {model}: not a counted architecture; {hint}answerable from counts: {COUNTED_NAMES} "
                            "(another model: measure it and pass the results)")
    return typed


def _card(gpu: str) -> Any:
    from .analysis.costmodel import EstimateError
    from .hardware.gpus import GpuNameError, resolve_gpu

    try:
        return resolve_gpu(gpu)
    except GpuNameError as exc:
        raise EstimateError(str(exc)) from None


def _answer_from_counts(model: str | None, gpu: str | None, steps: int, as_json: bool, verbose: bool = False,
                        **settings: Any) -> None:
    """`estimate` without results: the counted answer, and the settings that fit where it does not."""
    from .analysis.costmodel import EstimateError
    from .analysis.counted import answers_with_fallbacks

    if not model or not gpu:
        raise EstimateError(f"without RESULTS, estimate answers from counts: give --model ({COUNTED_NAMES}) and "
                            "--gpu (a card of `diffbench gpus`)")
    preset, alias_defaults = _counted_model(model)
    card = _card(gpu)
    chosen = {**alias_defaults, **{k: v for k, v in settings.items() if v is not None}}
    _check_counted_settings(chosen)
    answers = answers_with_fallbacks(preset, steps, card, chosen)
    if as_json:
        click.echo(json.dumps({"answers": [a.to_json() for a in answers]}, indent=1, allow_nan=False))
        return
    asked, *others = answers
    if not verbose:
        from .report.terminal import answer_table

        title = "" if asked.fits == "yes" else (f"As asked it does not fit the {card.name}'s {card.vram_gib:g} GiB; "
                                                 "the other rows are settings that do:" if others else
                                                 f"No setting diffbench knows fits the {card.name}'s "
                                                 f"{card.vram_gib:g} GiB.")
        for line in answer_table([a.to_json() for a in answers], title):
            click.echo(_safe(line))
        click.echo("FROM COUNTS, NOT MEASURED (--verbose: each answer's sentence and notes)")
        return
    click.echo(_safe(asked.sentence()))
    for note in asked.notes:
        click.echo(f"  note: {_safe(note)}")
    if asked.fits != "yes":
        if others:
            click.echo(f"Settings that fit the {card.name}'s {card.vram_gib:g} GiB:")
            for other in others:
                click.echo("  " + _safe(other.sentence()))
        else:
            click.echo(f"No setting diffbench knows fits the {card.name}'s {card.vram_gib:g} GiB.")


def _recommend_from_counts(model: str | None, steps: int | None, gpu: str | None, vram_gib: float | None,
                           max_seconds: float | None, as_json: bool, verbose: bool = False,
                           ram_gib: float | None = None) -> None:
    from .analysis.costmodel import EstimateError
    from .analysis.counted import recommend_from_counts
    from .analysis.projection import usual_steps

    if not model or not gpu:
        raise EstimateError(f"without RESULTS, recommend answers from counts: give --model ({COUNTED_NAMES}) "
                            "and --gpu (and --steps, else 30; a step-distilled model's own 4)")
    preset, defaults = _counted_model(model)
    steps = steps or usual_steps(model)
    card = _card(gpu)
    answer = recommend_from_counts(preset, steps, card, dict(defaults), vram_gib, max_seconds, ram_gib)
    if as_json:
        click.echo(json.dumps({"chosen": [a.to_json() for a in answer.chosen],
                               "left_out": [{**a.to_json(), "why": why} for a, why in answer.others]},
                              indent=1, allow_nan=False))
        return
    limit = f"{vram_gib:g} GiB" if vram_gib is not None else f"the {card.name}'s {card.vram_gib:g} GiB"
    click.echo(f"{preset} at {steps} steps on the {card.name}, fitting {limit}"
               + (f" and {ram_gib:g} GiB of host RAM" if ram_gib is not None else "")
               + (f", at most {max_seconds:g} s per image" if max_seconds else "") + " [FROM COUNTS, NOT MEASURED]:")
    if not answer.chosen:
        click.echo("No setting diffbench knows meets these limits.")
    for chosen in answer.chosen:
        click.echo("* " + _safe(chosen.sentence()))
    _left_out([(other.label(), why) for other, why in answer.others], verbose)


def _ram_gib(ram: str | None) -> float | None:
    """--ram as GiB: a size such as 16GiB, or one line naming what is allowed."""
    from .rules.memsize import parse_size

    if ram is None:
        return None
    size = parse_size(ram)
    if size is None or size <= 0:
        _fail(f"--ram {ram!r}: expected a size such as 16GiB or 32GB")
    return size / 2**30


def _choose_cards(model: str, steps: int | None, as_json: bool, **settings: Any) -> None:
    from .analysis.cardchooser import choose_cards
    from .analysis.projection import usual_steps

    preset, defaults = _counted_model(model)
    steps = steps or usual_steps(model)
    chosen = {**defaults, **{k: v for k, v in settings.items() if v is not None}}
    _check_counted_settings(chosen)
    choices = choose_cards(preset, steps, chosen)
    if as_json:
        click.echo(json.dumps({"model": preset, "steps": steps, "cards": [c.to_json() for c in choices]}, indent=1,
                              allow_nan=False))
        return
    first = choices[0].plain
    from .analysis.calibration import shipped_calibration

    calibration = shipped_calibration()
    own, _ = calibration.model_spread("figure", first.model)
    other, _ = calibration.model_spread("card", first.model)
    unfitted = "" if first.model in calibration.models_with_figures else f"; {first.model} has no published figure"
    click.echo(f"{first.label()} at {steps} steps on every card, FROM COUNTS (not measured; good to x/÷ "
               f"{own:.2f} on a card with published figures of its own, x/÷ {other:.2f} on others{unfitted}), "
               "fastest first:")
    # offloaded weights live in host RAM (FLUX in bf16: 31 GiB): a column where any card's setting offloads
    host = any(c.best is not None and c.best.need.host_gib for c in choices)
    click.echo(f"{'card':<18} {'VRAM':>6} {'s/image':>8} {'fits':>10}  {'setting':<28} "
               + (f"{'host RAM':>8} " if host else "") + f"{'Wh/image':>8}  bound")
    for choice in choices:
        best = choice.best
        if best is None:
            click.echo(f"{choice.card.name:<18} {choice.card.vram_gib:>4g}GB {'-':>8} {'no':>10}  "
                       f"{'nothing diffbench knows fits':<28}")
            continue
        change = "plain" if best is choice.plain else ", ".join(
            [*([best.settings["dtype"]] if best.settings["dtype"] != choice.plain.settings["dtype"] else []),
             *(f"{k}={best.settings[k]}" for k in ("offload", "quantize") if best.settings.get(k) != "none")])
        fits = choice.plain.fits if best is choice.plain else f"{choice.plain.fits} -> {best.fits}"
        ram = (f"{best.need.host_gib:>5.1f}GiB " if best.need.host_gib else f"{'-':>8} ") if host else ""
        click.echo(f"{choice.card.name:<18} {choice.card.vram_gib:>4g}GB {best.seconds:>8.2f} {fits:>10}  "
                   f"{change:<28} {ram}{choice.energy_wh or 0:>8.3f}  {best.bound}")
    click.echo("fits: the plain setting's memory on the card (yes/borderline/no), and where it does not fit, the "
               "setting shown (fp16 on a card without bf16 tensor cores)."
               + (" host RAM: what the offloaded weights take there, a lower bound for the process "
                  "(docs/projection.md); recommend --ram 16GiB answers a machine with less." if host else "")
               + " Wh/image: board power x time, an upper bound. `estimate --model ... --gpu CARD` explains one card.")


def _check_counted_settings(settings: dict[str, Any]) -> None:
    from .analysis.costmodel import EstimateError
    from .rules.axes import Offload, parse_resolution
    from .rules.quantization import QuantizeError, canonical_quantization

    try:
        if settings.get("resolution"):
            settings["resolution"] = parse_resolution(settings["resolution"])
        if settings.get("quantize"):
            settings["quantize"] = canonical_quantization(settings["quantize"])
    except (ValueError, QuantizeError) as exc:
        raise EstimateError(str(exc)) from None
    offload = settings.get("offload")
    if offload is not None and offload not in typing_args(Offload):
        raise EstimateError(f"--offload {offload}: allowed: {', '.join(typing_args(Offload))}")
    dtype = settings.get("dtype")
    if dtype is not None and dtype not in ("fp16", "bf16", "fp32"):
        raise EstimateError(f"--dtype {dtype}: a model estimated from counts takes fp16, bf16 or fp32")
    batch = settings.get("batch_size")
    if batch is not None and not 1 <= batch <= 64:
        raise EstimateError(f"--batch-size {batch}: from 1 to 64")


@main.command("recommend")
@click.argument("results", nargs=-1, type=click.Path())
@click.option("--model", help="Rank the settings of this model only (with no RESULTS: a counted architecture).")
@click.option("--steps", type=STEPS, help="At this step count only: a 4-step setting and a 20-step "
                                                           "one are different products, never ranked together.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (with no RESULTS: the answer objects).")
@click.option("--vram", callback=_given, help="VRAM the setting must fit in, e.g. 12GiB (or a GPU name such as 'RTX 3060').")
@click.option("--max-seconds", type=float, callback=_bounded(0, 1e9, low_open=True), help="Most seconds per image.")
@click.option("--ram", callback=_given, help="With no RESULTS: host RAM the offloaded weights may take, e.g. 16GiB "
                                             "(offloading keeps them there); a lower bound for the process "
                                             "(docs/projection.md).")
@click.option("--min-quality", type=float, callback=_bounded(0, 1), help="Least SSIM to the same model's most-steps picture (its own sampler first) of the same prompt and seed.")
@click.option("--gpu", callback=_given, help="Settings measured on a GPU whose name contains this; a card the results did not measure "
                            "('3060') gets every setting projected onto it.")
@click.option("--filter", "filters", multiple=True, help="Keep only AXIS=VALUE[,VALUE] (repeatable).")
@click.option("--allow-noisy", is_flag=True, help="Consider cells flagged noisy too (measured while other work "
                                                  "competed), marked [NOISY].")
@click.option("--verbose", "-v", is_flag=True, help="List every setting left out and why (by default: counted by reason).")
@_skip_bad_lines_option
def recommend_command(results: tuple[str, ...], model: str | None, steps: int | None, as_json: bool,
                      vram: str | None, max_seconds: float | None, ram: str | None, min_quality: float | None,
                      gpu: str | None, filters: tuple[str, ...], allow_noisy: bool, verbose: bool,
                      skip_bad_lines: bool) -> None:
    """The Pareto-optimal settings under your constraints, why each, and what was left out and why.

    With no RESULTS: the settings of --model at --steps (default 30; FLUX.1 schnell, SDXL Turbo and
    SD 3.5 Large Turbo: 4) that fit --gpu (or --vram), answered from counts and the calibration
    shipped with diffbench."""
    from .analysis.recommend import recommend
    from .rules.memsize import vram_limit_bytes

    try:
        vram_gib = vram_limit_bytes(vram) / 2**30 if vram else None
    except ValueError as exc:
        _fail(f"--vram {vram!r}: {exc}")
    if not results:
        _recommend_from_counts(model, steps, gpu, vram_gib, max_seconds, as_json, verbose, _ram_gib(ram))
        return
    if ram is not None:
        _fail("--ram: answered from counts only (leave out RESULTS); measured results record each setting's "
              "host memory peak")
    from .analysis.compare import noisy_cells

    loaded = _read_results(results, skip_bad_lines)
    frame = _selected(loaded, (*filters, *((f"model={model}",) if model else ()),
                               *((f"steps={steps}",) if steps else ())), " ".join(results))
    from .analysis.tables import cell_summary
    from .analysis.tradeoff import scored_cells

    scores = scored_cells(cell_summary(frame), loaded.quality)
    answer = recommend(frame, vram_gib=vram_gib, max_seconds=max_seconds, min_quality=min_quality, gpu=gpu,
                       noisy=noisy_cells(loaded.warnings), allow_noisy=allow_noisy, clip_scores=scores.by_cell())
    if as_json:
        from .analysis.costmodel import json_value

        click.echo(json.dumps({"constraints": answer.constraints,
                               "chosen": [{"setting": c.label, "settings": {k: json_value(v) for k, v in
                                                                            c.settings.items()}, "card": c.hardware,
                                           "seconds": c.seconds,
                                           "memory_gib": c.memory_gib, "memory_kind": c.memory_kind,
                                           "source": "projected" if c.projected_from else "measured",
                                           "why": reasons} for c, reasons in answer.chosen],
                               "left_out": [{"what": what, "why": why} for what, why in answer.excluded]},
                              indent=1, default=str, allow_nan=False))
        return
    click.echo("Constraints: " + ("; ".join(answer.constraints) or "none"))
    if any(c.clip is not None for c, _ in answer.chosen):
        from .measure.clipscore import RANDOM_WEIGHTS

        random = " (random weights: it exercises the tool, it says nothing about the pictures)" \
            if scores.checkpoint == RANDOM_WEIGHTS else ""
        click.echo(one_line(f"Quality: CLIP score of {scores.checkpoint}, mean over each setting's prompts and "
                            f"seeds{random}"))
    if not answer.chosen:
        click.echo("No measured setting meets the constraints.")
    for candidate, reasons in answer.chosen:
        click.echo(f"* {one_line(candidate.describe())}\n    why: {one_line('; '.join(reasons))}")
    _left_out([(what, why) for what, why in answer.excluded], verbose)


def _left_out(excluded: list[tuple[str, str]], verbose: bool) -> None:
    """What recommend left out: each with its reason (--verbose), else counted by kind of reason."""
    from .report.terminal import reason_kind

    if not excluded:
        return
    if verbose:
        click.echo("Left out:")
        for what, why in excluded:
            click.echo(one_line(f"  - {what}: {why}"))
        return
    kinds: dict[str, int] = {}
    for _, why in excluded:
        kinds[reason_kind(why)] = kinds.get(reason_kind(why), 0) + 1
    counted = "; ".join(f"{count} {kind}" for kind, count in sorted(kinds.items(), key=lambda item: -item[1]))
    click.echo(one_line(f"Left out: {len(excluded)} setting(s): {counted} (--verbose: each and why)"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def sysinfo(as_json: bool) -> None:
    """This machine: GPUs (VRAM, driver, CUDA, clocks, power, PCIe), CPU, RAM, software, and warnings."""
    from .hardware.sysinfo import system_report

    info = system_report()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"host      {info['hostname']}  ({info['os']}, {info['machine']})")
    click.echo(f"cpu       {info['cpu']}  x{info['cpu_count']}")
    ram = info["ram_bytes"]
    click.echo(f"ram       {ram / 2**30:.1f} GiB" if ram else "ram       unknown")
    software = info["software"]
    click.echo("software  " + ", ".join(f"{k} {software[k]}" for k in ("python", "torch", "diffusers", "transformers",
                                                                         "diffbench") if software.get(k)))
    torch_info = info["torch"]
    if torch_info.get("available", True):
        click.echo(f"torch     CUDA build {torch_info.get('cuda_build') or 'none'}, "
                   f"CUDA {'available' if torch_info.get('cuda_available') else 'not available'}"
                   f"{', MPS available' if torch_info.get('mps_available') else ''}")
    if not info["gpus"]:
        click.echo(f"gpus      none found; GPU telemetry is {info['telemetry']}")
    for gpu in info["gpus"]:
        click.echo(f"gpu {gpu['index']}     {gpu['name']}  {gpu['uuid']}")
        click.echo(f"          VRAM {gpu['vram_bytes'] / 2**30:.1f} GiB ({gpu['vram_free_bytes'] / 2**30:.1f} free), "
                   f"driver {gpu['driver']}, CUDA {gpu['cuda']}, compute {gpu['compute_capability']}, "
                   f"SMs {gpu.get('sm_count') or '?'}")
        click.echo(f"          power limit {gpu['power_limit_w']} W (default {gpu['power_limit_default_w']} W), "
                   f"max clocks SM {gpu['max_sm_clock_mhz']} / memory {gpu['max_mem_clock_mhz']} MHz, "
                   f"PCIe gen {gpu['pcie_gen']}/{gpu['pcie_gen_max']} x{gpu['pcie_width']}/{gpu['pcie_width_max']}, "
                   f"{gpu['temperature_c']} °C, spec table: {gpu.get('spec') or 'not listed'}")
    for warning in info["warnings"]:
        click.echo(f"warning: {warning}")


@main.command()
@click.option("--model", help="Rank every card for this model's work (sd15, sd21, sdxl, sdxl-turbo, sd3-medium, sd35-medium, "
                              "flux-dev, flux-schnell), from counts: no results needed.")
@click.option("--steps", type=STEPS, default=None, help="Steps per image (default: 30; the step-distilled FLUX.1 schnell, SDXL "
                                                        "Turbo and SD 3.5 Large Turbo: 4).")
@click.option("--resolution")
@click.option("--batch-size", type=int)
@click.option("--guidance", "guidance_scale", type=float, callback=_bounded(0, 100))
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def gpus(model: str | None, steps: int | None, resolution: str | None, batch_size: int | None,
         guidance_scale: float | None, as_json: bool) -> None:
    """The GPU spec table (VRAM, bandwidth, FP16 tensor TFLOP/s, power) and its sources; with
    --model, every card ranked for that model's work: time, fit, and the setting that fits."""
    from .hardware.gpus import GPUS

    if model is not None:
        _choose_cards(model, steps, as_json, resolution=resolution, batch_size=batch_size,
                      guidance_scale=guidance_scale)
        return
    click.echo(f"{'GPU':<12} {'VRAM':>8} {'GB/s':>7} {'FP16 TF':>8} {'W':>5}  source")
    for spec in GPUS:
        note = f" ({spec.note})" if spec.note else ""
        click.echo(f"{spec.name:<12} {spec.vram_gib:>5g} GiB {spec.bandwidth_gbs:>7g} {spec.fp16_tflops:>8g} "
                   f"{spec.board_power_w:>5g}  {spec.source}{note}")
    click.echo("\nFP16 TF: dense FP16/BF16 tensor TFLOP/s with FP32 accumulation (no sparsity).")


if __name__ == "__main__":
    main()
