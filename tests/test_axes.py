"""The setting axes, declared once (diffbench/axes.py): every view derived from the declarations
is what the package had by hand before, and a throwaway axis reaches every view, the suite model
and the plan, without changing the id of any existing cell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from diffbench.intake.plan import expand
from diffbench.intake.suite import AxisValues, load_suite
from diffbench.rules import axes

# The hand-kept lists of the package before the registry (issue #23): derived, they must not move.
BEFORE = {
    "LOAD_KEYS": {"model", "device", "gpu", "dtype", "offload", "attention", "compile", "vram_limit", "task", "quantize"},
    "UNUSED_SETTINGS": {"cache": "none", "lora": "none", "quantize": "none", "task": "text-to-image"},
    "NAMED_IN_LABELS": {"batch_size", "guidance_scale", "seed", "compile", "vae_tiling", "vae_slicing", "offload",
                        "strength", "frames", "fps", "init_image", "mask_image", "vram_limit", "attention", "cache",
                        "lora", "quantize"},
    "QUIET_VALUES": {"cache": "none", "lora": "none", "quantize": "none", "task": "text-to-image", "offload": "none",
                     "attention": "default", "compile": "False", "vae_tiling": "False", "vae_slicing": "False",
                     "sampler": "default"},
    "COST_COLUMNS": {"model", "recipe", "hardware", "resolution", "batch_size", "runtime_dtype", "offload", "sampler",
                     "attention", "compile", "vae_tiling", "vae_slicing", "vram_limit", "guidance_scale", "lora",
                     "cache", "quantize", "task", "strength", "frames"},
    "PICTURE_COLUMNS": {"model", "source", "lora", "sampler", "prompt", "seed", "resolution", "hardware",
                        "runtime_dtype", "guidance_scale", "batch_size", "offload", "attention", "compile",
                        "vae_tiling", "vae_slicing",
                        # another task, strength, clip length or input makes another picture (or clip)
                        "task", "strength", "frames", "fps", "init_image", "mask_image", "negative_prompt"},
    "INSTANCE_COLUMNS": {"prompt", "seed", "negative_prompt"},  # compare.PICTURE_AXES before
}
SETTING_COLUMNS_BEFORE = (  # with "recipe", added since
    "model", "source", "hostname", "hardware", "recipe", "runtime_device", "runtime_dtype", "sampler", "steps", "resolution",
    "batch_size", "guidance_scale", "offload", "attention", "compile", "vae_tiling", "vae_slicing", "vram_limit",
    "lora", "cache", "quantize", "task", "strength", "frames", "fps", "init_image", "mask_image", "seed", "prompt",
    "negative_prompt")
BUILTIN_DEFAULTS_BEFORE = {
    "recipe": None,  # added since, unset by default: no cell id changes
    "device": "auto", "gpu": None, "steps": 20, "sampler": "default", "offload": "none", "resolution": None,
    "batch_size": 1, "dtype": "auto", "guidance_scale": None, "seed": 0,
    "prompt": "a photograph of an astronaut riding a horse", "negative_prompt": None, "attention": "default",
    "compile": False, "vae_tiling": False, "vae_slicing": False, "vram_limit": None, "cache": "none", "lora": "none",
    "quantize": "none", "task": None, "strength": None, "frames": None, "fps": None, "init_image": None,
    "mask_image": None}


def test_the_derived_views_are_the_lists_kept_by_hand_before() -> None:
    for name, before in BEFORE.items():
        view = getattr(axes, name)
        assert (dict(view) if isinstance(view, dict) else set(view)) == before, name
    assert axes.SETTING_COLUMNS == SETTING_COLUMNS_BEFORE  # the order labels follow
    assert axes.builtin_defaults() == BUILTIN_DEFAULTS_BEFORE
    assert set(AxisValues.model_fields) == set(axes.AXIS_NAMES) and set(axes.SHOWN_AXES) == set(axes.AXIS_NAMES) - {
        "negative_prompt"}


def test_no_module_but_the_suite_schema_keeps_a_copy_of_a_view() -> None:
    """A module-level name bound to a view (`X = axes.SETTING_COLUMNS`, or imported from one that
    does) would miss an axis registered after its import: every view is read where it is used."""
    import ast

    views = set(axes.views(axes.AXES)) | {"AXES", "builtin_defaults"}
    found = []
    for path in sorted(Path(axes.__file__).parents[1].rglob("*.py")):
        if path.name == "axes.py" and path.parent.name == "rules":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("axes"):
                found += [f"{path.name}: imports {a.name}" for a in node.names if a.name in views]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                    isinstance(n, ast.Attribute) and n.attr in views for n in ast.walk(node)):
                found.append(f"{path.name}:{node.lineno}")
    # the suite's pydantic schema is a class built at import; registering after it is refused
    assert found == ["suitemodel.py: imports AXES", "suitemodel.py: imports AXIS_NAMES"], found


THROWAWAY = r'''
import json, sys
import pandas as pd
import diffbench.rules.axes as axes
# every module that reads a view, imported before the axis exists: none of them keeps a copy
from diffbench.intake import plan
from diffbench.analysis import analyse, compare, costmodel, quality, tradeoff, values
from diffbench.analysis import tables as frames
from diffbench.report import html

axes.register(axes.Axis("channels_last", bool, False, "run the denoiser in channels-last layout", unused=False,
                        reloads=True, cost=True, quiet="False", named=True))
from diffbench.intake import suite
from diffbench.report import live as console

found = {"suite": "channels_last" in suite.AxisValues.model_fields and "channels_last" in suite.AXES}
try:
    suite.AxisValues.model_validate({"channels_last": "maybe"})
    found["refuses"] = False
except Exception:
    found["refuses"] = True
cells = plan.expand(suite.load_suite(sys.argv[1]))
found["ids"] = [c.cell_id for c in cells]
found["settings"] = [c.settings["channels_last"] for c in cells]
on = sys.argv[1].replace(".yaml", "-on.yaml")
with open(sys.argv[1]) as f:
    text = f.read()
with open(on, "w") as f:
    f.write(text.replace("matrix:", "matrix:\n  channels_last: [false, true]"))
both = plan.expand(suite.load_suite(on))
found["with_axis"] = [c.cell_id for c in both]
found["loads"] = len({c.load_key for c in both})  # reloads: one load per value
found["shown"] = "channels_last" in console.varying_axes(both)
found["column"] = "channels_last" in frames.with_metrics(pd.DataFrame({"wall_s": [1.0]})).columns
found["labels"] = [frames.setting_label({"model": "t", "channels_last": v}, ["model", "channels_last"])
                   for v in (False, True)]
found["nameable"] = "channels_last" in values.axis_names()
found["cost"] = "channels_last" in axes.COST_COLUMNS and "channels_last" in costmodel._ordinary()
found["picture"] = "channels_last" in axes.PICTURE_COLUMNS
print(json.dumps(found))
'''


def test_a_throwaway_axis_reaches_every_view_and_keeps_every_existing_id(tmp_path: Path) -> None:
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text("name: ids\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu}\n"
                          "matrix:\n  steps: [2, 4]\n  sampler: [euler, heun]\n  cache: [none]\n")
    before = [c.cell_id for c in expand(load_suite(suite_file))]
    script = tmp_path / "throwaway.py"
    script.write_text(THROWAWAY)
    result = subprocess.run([sys.executable, str(script), str(suite_file)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found.pop("ids") == before  # results measured before the axis keep their ids (resume, merging)
    assert found.pop("settings") == [False] * len(before)
    with_axis = found.pop("with_axis")
    assert set(before) <= set(with_axis)  # the axis off: the old ids; on: new ones
    assert len(set(with_axis)) == 2 * len(before)
    assert found == {"suite": True, "refuses": True, "loads": 2, "shown": True, "column": True,
                     "labels": ["t", "t · channels_last=True"], "nameable": True, "cost": True, "picture": False}


PER_CELL_MODULE = '''
from diffbench.execute.axes import Applied


def apply(pipe, settings, applied, loaded):
    """A per-cell axis from outside the package: it hands its state on and says what it saw."""
    return Applied(state=settings["sharpen"], runtime={"sharpen": settings["sharpen"], "sharpen_before": applied})
'''

PER_CELL_SCRIPT = r'''
import json, sys
import diffbench.rules.axes as axes

extra = axes.Axis("sharpen", bool, False, "a throwaway per-cell axis", unused=False, named=True,
                  worker="throwaway_sharpen")
axes.AXES = axes.AXES + (extra,)
vars(axes).update(axes.views(axes.AXES))

if __name__ == "__main__":  # a worker process imports this file again (multiprocessing's rule)
    from diffbench.execute.runner import run_suite
    from diffbench.intake.suite import load_suite

    outcome = run_suite(load_suite(sys.argv[1]), sys.argv[2])
    print(json.dumps([[r["cell"]["sharpen"], r["status"], r.get("runtime") or {}] for r in outcome.records]))
'''


def _run_with_axis_from_outside(tmp_path: Path, axis: str, module_name: str, module_text: str, script: str) -> Any:
    """Run a 2-cell tiny suite over `axis` (false, true) with the axis declared by `script` and its
    worker module written beside it (on the PYTHONPATH the run and its workers see); what the
    script prints last, as JSON."""
    import os

    (tmp_path / f"{module_name}.py").write_text(module_text)
    (tmp_path / "run_with_axis.py").write_text(script)
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(f"name: {axis}\nmodels:\n  t: {{source: 'builtin:tiny-sd'}}\n"
                          f"defaults: {{device: cpu, steps: 1}}\nmatrix:\n  {axis}: [false, true]\nwarmup: 0\nrepeats: 1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(tmp_path / "run_with_axis.py"), str(suite_file), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_per_cell_axis_is_one_declaration_and_its_worker_module(tmp_path: Path) -> None:
    """The worker finds a per-cell axis's module from the declaration alone (made in the run's
    process and carried by the job), calls it before each cell and hands it what it left applied."""
    rows = _run_with_axis_from_outside(tmp_path, "sharpen", "throwaway_sharpen", PER_CELL_MODULE, PER_CELL_SCRIPT)
    assert [(value, status) for value, status, _ in rows] == [(False, "ok"), (True, "ok")]
    assert [(r["sharpen"], r["sharpen_before"]) for _, _, r in rows] == [(False, None), (True, False)]
    assert all(r["scheduler"] for _, _, r in rows)  # the shipped per-cell axes ran as well


def test_every_declared_worker_module_exists_and_per_cell_ones_apply() -> None:
    from diffbench.execute.axes import module, worker_modules

    declared = {axis.name: axis.worker for axis in axes.AXES if axis.worker}
    assert set(declared) >= {"sampler", "offload", "attention", "compile", "vae_tiling", "vae_slicing", "vram_limit",
                             "lora", "cache", "quantize", "task", "frames"}
    for name in set(declared.values()):
        assert module(name).__name__ == f"diffbench.execute.axes.{name}"
    per_cell = worker_modules(at_load=False)
    assert per_cell == ("sampler", "vae", "lora", "cache", "frames")  # in declaration order, each once
    assert all(callable(module(name).apply) for name in per_cell)
    # in load order: the card capped before the pipeline exists, built, its task, quantized, placed, ...
    load_time = worker_modules(at_load=True)
    assert load_time == ("vram_limit", "model", "task", "quantize", "offload", "attention", "compile")
    assert all(callable(module(name).at_load) for name in load_time)


LOAD_TIME_MODULE = '''
import torch

from diffbench.measure.probe import denoiser_of


def at_load(loading):
    """A load-time axis from outside the package: it changes the loaded denoiser and says so."""
    if loading.settings["channels_last"]:
        denoiser_of(loading.pipe).to(memory_format=torch.channels_last)
    weight = next(p for p in denoiser_of(loading.pipe).parameters() if p.dim() == 4)
    return {"denoiser_channels_last": weight.is_contiguous(memory_format=torch.channels_last)}
'''

LOAD_TIME_SCRIPT = r'''
import json, sys
import diffbench.rules.axes as axes

extra = axes.Axis("channels_last", bool, False, "a throwaway load-time axis", unused=False, reloads=True,
                  named=True, worker="throwaway_layout")
axes.AXES = axes.AXES + (extra,)
vars(axes).update(axes.views(axes.AXES))

if __name__ == "__main__":  # a worker process imports this file again (multiprocessing's rule)
    from diffbench.contract.results import read_records
    from diffbench.execute.runner import run_suite
    from diffbench.intake.suite import load_suite

    outcome = run_suite(load_suite(sys.argv[1]), sys.argv[2])
    lines = read_records(outcome.results_path)
    print(json.dumps({"loads": [r["runtime"]["denoiser_channels_last"] for r in lines if r["type"] == "load"],
                      "cells": [[r["cell"]["channels_last"], r["status"], r["runtime"]["denoiser_channels_last"]]
                                for r in outcome.records]}))
'''


def test_a_load_time_axis_is_one_declaration_and_its_worker_module(tmp_path: Path) -> None:
    """A load-time axis from outside the package: the plan loads once per value, and the worker
    calls its module's at_load on each load, after the shipped ones, whose answer reaches the load
    and its lines."""
    found = _run_with_axis_from_outside(tmp_path, "channels_last", "throwaway_layout", LOAD_TIME_MODULE,
                                        LOAD_TIME_SCRIPT)
    assert found["loads"] == [False, True]  # two loads: the axis reloads
    assert found["cells"] == [[False, "ok", False], [True, "ok", True]]
