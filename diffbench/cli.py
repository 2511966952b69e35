"""The `diffbench` command: a thin click layer over plain functions.

Kept light on purpose: --help, validate, plan and schema never import torch or diffusers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _load(path: str, allow_pickle: bool = False, trust_remote_code: bool = False) -> Any:
    from .suite import load_suite
    from .yamlsource import SuiteError

    try:
        return load_suite(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    except SuiteError as exc:
        _fail(str(exc))


def _safety_options(command: Any) -> Any:
    command = click.option("--allow-pickle", is_flag=True,
                           help="Allow .ckpt/.bin checkpoints for every model (pickle can run code).")(command)
    return click.option("--trust-remote-code", is_flag=True,
                        help="Allow pipelines that ship their own Python code.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diffbench")
def main() -> None:
    """Benchmark and profile diffusion pipelines (SD1.5, SDXL, SD3.5, FLUX) on your hardware."""


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the results file.")
@click.option("--resume", type=click.Path(dir_okay=False, exists=True),
              help="Append to this results file, running only what it does not hold yet.")
@_safety_options
def run(suite: str, out_dir: str, resume: str | None, allow_pickle: bool, trust_remote_code: bool) -> None:
    """Run SUITE and write a results file (JSON Lines)."""
    from rich.console import Console

    from rich.markup import escape

    from .console import LiveObserver, failure_lines, summary_table
    from .results import ResultsError
    from .runner import run_suite

    loaded = _load(suite, allow_pickle, trust_remote_code)
    console = Console(width=None if sys.stdout.isatty() else 140)
    observer = LiveObserver(console)
    try:
        outcome = run_suite(loaded, out_dir, resume=resume, observer=observer)
    except ResultsError as exc:
        _fail(str(exc))
    finally:
        observer.close()
    console.print(summary_table(outcome.plan, outcome.records))
    for line in failure_lines(outcome.records):
        console.print(f"[red]{escape(line)}[/red]")
    console.print(f"Results: [bold]{outcome.results_path}[/bold]")
    if outcome.interrupted:
        console.print("[yellow]Interrupted: what finished is saved; resume with "
                      f"--resume {outcome.results_path}[/yellow]")
        sys.exit(130)


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_safety_options
def validate(suites: tuple[str, ...], allow_pickle: bool, trust_remote_code: bool) -> None:
    """Check suite files; print one line per problem and exit 2 if any."""
    from .suite import load_suite
    from .yamlsource import SuiteError

    failed = False
    for path in suites:
        try:
            suite = load_suite(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        except SuiteError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        from .plan import make_plan

        plan = make_plan(suite)
        click.echo(f"{path}: ok ({len(plan.cells)} cells, {plan.generations} generations)")
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the cells as JSON.")
@_safety_options
def plan(suite: str, as_json: bool, allow_pickle: bool, trust_remote_code: bool) -> None:
    """Show the cells SUITE expands to, in run order, and what is skipped and why."""
    from .plan import make_plan

    made = make_plan(_load(suite, allow_pickle, trust_remote_code))
    if as_json:
        cells = [{"cell_id": c.cell_id, "load_key": c.load_key, "settings": c.resolved(),
                  "not_applicable": c.skip_reason} for c in made.cells]
        skipped = [{"cell_id": c.cell_id, "reason": r} for c, r in made.skipped]
        skipped += [{"cell_id": c.cell_id, "reason": f"duplicate of {c.duplicate_of}"} for c in made.duplicates]
        click.echo(json.dumps({"cells": cells, "skipped": skipped, "loads": made.loads,
                               "generations": made.generations}, indent=2))
        return
    from rich.console import Console

    from .console import plan_table

    Console().print(plan_table(made))


@main.command()
def schema() -> None:
    """Print the suite JSON Schema (for editor completion and checks)."""
    from .suite import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
def models() -> None:
    """List the built-in models (no download needed) and the sampler names understood."""
    from .models.builtin import BUILTINS
    from .samplers import SAMPLERS

    click.echo("Built-in models (random weights, tiny; for tests and trying diffbench out):")
    for model in BUILTINS.values():
        defaults = ", ".join(f"{k}={v}" for k, v in model.defaults.items())
        click.echo(f"  builtin:{model.name:<10} {model.family:<5} {model.description} ({defaults})")
    click.echo("\nAlso accepted as a model source: a Hub id (owner/name), a local diffusers folder,")
    click.echo("or a single .safetensors checkpoint (with family: and config:).")
    click.echo("\nSamplers (A1111, ComfyUI and diffusers names are all accepted):")
    for sampler in SAMPLERS:
        names = ", ".join(sampler.aliases)
        target = sampler.scheduler_class or "(the model's own scheduler)"
        kwargs = f" {sampler.kwargs}" if sampler.kwargs else ""
        click.echo(f"  {sampler.key:<22} {sampler.kind:<5} {target}{kwargs}  [{names}]")


@main.command()
def gpus() -> None:
    """The GPU spec table (VRAM, bandwidth, FP16 tensor TFLOP/s, power) and its sources."""
    from .hardware.gpus import GPUS

    click.echo(f"{'GPU':<12} {'VRAM':>8} {'GB/s':>7} {'FP16 TF':>8} {'W':>5}  source")
    for spec in GPUS:
        note = f" ({spec.note})" if spec.note else ""
        click.echo(f"{spec.name:<12} {spec.vram_gib:>5g} GiB {spec.bandwidth_gbs:>7g} {spec.fp16_tflops:>8g} "
                   f"{spec.board_power_w:>5g}  {spec.source}{note}")
    click.echo("\nFP16 TF: dense FP16/BF16 tensor TFLOP/s with FP32 accumulation (no sparsity).")


if __name__ == "__main__":
    main()
