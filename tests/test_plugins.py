"""One front door for extensions: a throwaway package, installed with pip (into a folder, offline),
adds a setting axis, a metric and a model family through the `diffbench.plugins` entry point, and
each works end to end through the CLI without a line of diffbench changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = '''
"""A throwaway diffbench plugin: one axis, one metric, one family."""


def register():
    from diffbench.analysis.metrics import Metric, register as add_metric
    from diffbench.rules.axes import Axis, register as add_axis
    from diffbench.rules.families import FamilySpec, register as add_family

    add_axis(Axis("lighting", str, "day", "the lighting a prompt asks for", named=True, quiet="day", cost=True))
    add_metric(Metric("images_per_minute", "images per minute", "1/min", "higher",
                      lambda frame: 60.0 / frame["s_per_image"]))
    add_family(FamilySpec("throwaway", "ddpm", "StableDiffusionPipeline", "unet", "640x640", 6.0, "fp16",
                          (r"throwaway-diffusion",)))
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "diffbench-throwaway"
version = "0.1"

[project.entry-points."diffbench.plugins"]
throwaway = "diffbench_throwaway:register"

[tool.setuptools]
py-modules = ["diffbench_throwaway"]
'''

SUITE = """name: plugged
models:
  tiny: {source: 'builtin:tiny-sd'}
  custom: {source: 'someone/throwaway-diffusion-v1', family: throwaway}
defaults: {device: cpu, steps: 2, resolution: 64x64}
matrix:
  model: [tiny]
  lighting: [day, night]
warmup: 0
repeats: 2
"""


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "diffbench.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _install(tmp_path: Path) -> Path:
    source, site = tmp_path / "plugin", tmp_path / "site"
    source.mkdir()
    (source / "diffbench_throwaway.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(PYPROJECT)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True, text=True, timeout=300)
    assert any(site.glob("diffbench_throwaway-0.1.dist-info/entry_points.txt"))
    return site


def test_a_pip_installed_plugin_adds_an_axis_a_metric_and_a_family(tmp_path: Path) -> None:
    site = _install(tmp_path)
    suite = tmp_path / "plugged.yaml"
    suite.write_text(SUITE)

    # the family: a model naming it plans with its defaults (its native resolution, its guidance)
    (tmp_path / "family.yaml").write_text(SUITE.replace("model: [tiny]", "model: [tiny, custom]")
                                          .replace("steps: 2, resolution: 64x64", "steps: 2"))
    planned = _cli(site, "plan", str(tmp_path / "family.yaml"), "--json")
    assert planned.returncode == 0, planned.stderr
    cells = json.loads(planned.stdout)["cells"]
    custom = [c["settings"] for c in cells if c["settings"]["model"] == "custom"]
    assert custom and all(s["family"] == "throwaway" and s["resolution"] == "640x640" and s["guidance_scale"] == 6.0
                          for s in custom)

    # the axis: in the schema's checks, the cell ids and the results; the metric: compared by name
    checked = _cli(site, "validate", str(suite))
    assert checked.returncode == 0, checked.stderr
    (tmp_path / "bad.yaml").write_text(SUITE.replace("[day, night]", "[day, 7]"))
    refused = _cli(site, "validate", str(tmp_path / "bad.yaml"))
    assert refused.returncode == 2 and "lighting" in refused.stderr
    out = tmp_path / "out"
    ran = _cli(site, "run", str(suite), "--out", str(out))
    assert ran.returncode == 0, ran.stderr[-2000:]
    [results] = list(out.glob("*.jsonl"))
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    lighting = {line["cell"]["lighting"] for line in lines if line.get("type") == "generation"}
    assert lighting == {"day", "night"}
    compared = _cli(site, "compare", str(results), "--by", "lighting", "--metric", "images_per_minute")
    assert compared.returncode == 0, compared.stderr
    assert "images per minute" in compared.stdout and "night" in compared.stdout

    # without the plugin the same files are plain diffbench's: the axis and the metric are unknown
    bare = subprocess.run([sys.executable, "-m", "diffbench.cli", "compare", str(results), "--by", "lighting",
                           "--metric", "images_per_minute"], capture_output=True, text=True, timeout=300)
    assert bare.returncode == 2 and "images_per_minute" in bare.stderr


def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path) -> None:
    site = _install(tmp_path)
    module = site / "diffbench_throwaway.py"
    module.write_text(module.read_text().replace("def register():", "def register():\n    raise RuntimeError('boom')"))
    result = _cli(site, "--help")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("error: plugin 'throwaway' (diffbench_throwaway:register) failed: "
                                     "RuntimeError: boom")


def test_an_axis_registered_late_or_twice_is_refused_naming_why() -> None:
    """Registering after a module copied the axes would leave it out of that copy: refused, naming the
    module, and the registry unchanged; a taken name is refused too."""
    import diffbench.intake.suitemodel  # noqa: F401  (copies the axes into the suite's model)
    from diffbench.rules import axes

    before = axes.AXES
    with pytest.raises(axes.AxisRegistrationError, match="diffbench.intake.suitemodel"):
        axes.register(axes.Axis("lighting", str, "day"))
    with pytest.raises(axes.AxisRegistrationError, match="axis 'steps' is already declared"):
        axes.register(axes.Axis("steps", int, 4))
    assert axes.AXES is before and "lighting" not in axes.BY_NAME
